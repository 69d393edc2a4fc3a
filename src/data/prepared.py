"""A prepared dataset folder: its ``index.json`` (:func:`read_index`, the one reader of it) and which
folder to work on (:func:`resolve_data_root`: the real KTH when it has been prepared, else the
synthetic twin, made on first use).

A prepared dataset is a folder with ``index.json`` and ``cache/``, written by
``python -m src.data prepare`` (see :mod:`src.data.prepare`).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from src.data.sources.kth import ACTIONS

REAL_ROOT = Path("data/kth")              # prepared real KTH
SYNTHETIC_RAW_ROOT = Path("data/synth_raw")  # raw synthetic twin (KTH layout, AVI)
SYNTHETIC_ROOT = Path("data/synth")       # prepared synthetic twin


INDEX_ENTRY_KEYS = ("video_id", "person", "action", "label", "scenario", "num_frames", "sequences")
"""The keys of every video entry of ``index.json`` (see :mod:`src.data.prepare`)."""


def prepare_command(out: str | Path) -> str:
    """What to do about a missing or broken prepared dataset in ``out``: prepare it (again)."""
    return f"re-run 'python -m src.data prepare --raw DIR --out {out}'"


def is_prepared(root: str | Path) -> bool:
    """True when ``root`` holds a prepared dataset (its ``index.json`` exists)."""
    return (Path(root) / "index.json").is_file()


def read_index(root: str | Path) -> dict:
    """``root/index.json``, checked: JSON, an object with an int ``size`` >= 1 and a ``videos`` list whose
    entries hold every key of :data:`INDEX_ENTRY_KEYS`, a known action and ``num_frames`` >= 1.
    Raises FileNotFoundError (no index.json) or ValueError, one line naming the file."""
    path = Path(root) / "index.json"
    try:
        index = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file (not a prepared dataset); {prepare_command(root)}") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot be read ({e.strerror or e}); {prepare_command(root)}") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError: truncated or overwritten
        raise ValueError(f"{path}: not a prepared-dataset index (invalid JSON, truncated or corrupt: {e}); "
                         f"{prepare_command(root)}") from None

    def broken(what: str) -> ValueError:
        return ValueError(f"{path}: not a prepared-dataset index ({what}); {prepare_command(root)}")

    if not isinstance(index, dict):
        raise broken(f"a JSON {type(index).__name__}, not an object")
    for key in ("size", "videos"):
        if key not in index:
            raise broken(f"no key {key!r}")
    if not isinstance(index["size"], int) or index["size"] < 1:
        raise broken(f"size is {index['size']!r}, not a frame side in pixels")
    if not isinstance(index["videos"], list):
        raise broken(f"videos is a {type(index['videos']).__name__}, not a list")
    for number, entry in enumerate(index["videos"]):
        if not isinstance(entry, dict):
            raise broken(f"video {number} is a {type(entry).__name__}, not an object")
        name = entry.get("video_id", f"video {number}")
        if missing := [key for key in INDEX_ENTRY_KEYS if key not in entry]:
            raise broken(f"{name} lacks the key {missing[0]!r}")
        if entry["action"] not in ACTIONS:
            raise broken(f"{name}: unknown action {entry['action']!r}")
        if not isinstance(entry["num_frames"], int) or entry["num_frames"] < 1:
            raise broken(f"{name}: num_frames is {entry['num_frames']!r}, not a number of frames >= 1")
    return index


def resolve_data_root(root: str | Path = "auto", preset: str = "full", seed: int = 0,
                      verbose: bool = True) -> tuple[Path, bool]:
    """Find the data to work on. Returns ``(prepared_root, is_synthetic)``.

    ``root='auto'``: the prepared real KTH under ``data/kth`` when it exists, otherwise
    the synthetic twin under ``data/synth``, generated (``preset``, ``seed``) and
    prepared first if needed. An ``index.json`` that lists no videos (left by a failed
    prepare of older code) does not count as prepared: ``auto`` says so in one line and
    takes the synthetic twin. Any other ``root`` must already be prepared, with videos.
    A broken ``index.json`` raises ValueError naming it (see :func:`read_index`).
    """
    if str(root) != "auto":
        root = Path(root)
        if not is_prepared(root):
            raise FileNotFoundError(
                f"{root}: no prepared dataset (index.json missing). Prepare one with "
                f"'python -m src.data prepare --raw DIR --out {root}', or make the synthetic twin with "
                f"'python -m src.data.synthetic --out {SYNTHETIC_RAW_ROOT}' then prepare it.")
        index = read_index(root)
        if not index["videos"]:
            raise FileNotFoundError(f"{root / 'index.json'}: lists no videos (left by a failed prepare); "
                                    f"{prepare_command(root)}")
        return root, bool(index.get("synthetic", False))
    if is_prepared(REAL_ROOT):
        if read_index(REAL_ROOT)["videos"]:
            return REAL_ROOT, False
        print(f"note: {REAL_ROOT / 'index.json'} lists no videos (left by a failed prepare): {REAL_ROOT} is not "
              f"a prepared dataset; using the synthetic twin", file=sys.stderr)
    synthetic_root = SYNTHETIC_ROOT if preset == "full" else SYNTHETIC_ROOT.with_name(f"synth_{preset}")
    if not is_prepared(synthetic_root) or not read_index(synthetic_root)["videos"]:
        from src.data.prepare import prepare
        from src.data.synthetic import generate
        raw = SYNTHETIC_RAW_ROOT if preset == "full" else SYNTHETIC_RAW_ROOT.with_name(f"synth_raw_{preset}")
        if verbose:
            print(f"No prepared real KTH under {REAL_ROOT}: making the synthetic twin "
                  f"(preset {preset!r}) in {raw} -> {synthetic_root}", file=sys.stderr)
        generate(raw, preset=preset, seed=seed)
        prepare(raw, synthetic_root)
    return synthetic_root, True
