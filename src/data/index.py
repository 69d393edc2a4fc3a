"""A prepared dataset folder: its ``index.json`` (:func:`read_index`, the one reader of it) and which
folder to work on (:func:`resolve_data_root`: the real KTH when it has been prepared, else the
synthetic twin, made on first use).

A prepared dataset is a folder with ``index.json`` and ``cache/``, written by
``python -m src.data prepare`` (see :mod:`src.data.prepare`).
"""
from __future__ import annotations

import copy
import functools
import json
import logging
from pathlib import Path

from src.config import ConfigError
from src.data.prepare import INDEX_VERSION, prepare
from src.data.synthetic import generate

logger = logging.getLogger(__name__)

REAL_ROOT = Path("data/kth")              # prepared real KTH
SYNTHETIC_RAW_ROOT = Path("data/synth_raw")  # raw synthetic twin (KTH layout, AVI)
SYNTHETIC_ROOT = Path("data/synth")       # prepared synthetic twin


INDEX_ENTRY_KEYS = ("video_id", "file", "label", "class", "group", "num_frames", "sequences")
"""The keys of every video entry of ``index.json`` (version :data:`src.data.prepare.INDEX_VERSION`, see
:mod:`src.data.prepare`)."""
V1_ENTRY_KEYS = ("video_id", "person", "action", "label", "scenario", "num_frames", "sequences")
"""The keys a KTH video entry had in ``index.json`` version 1 (before classes), which every KTH entry still
holds: the fingerprint of grayscale KTH data describes its videos by them, so that it stays the one results
recorded before (:func:`src.training.provenance.data_fingerprint`)."""


def prepare_command(out: str | Path) -> str:
    """What to do about a missing or broken prepared dataset in ``out``: prepare it (again)."""
    return f"re-run 'python -m src.data prepare --raw DIR --out {out}'"


def is_prepared(root: str | Path) -> bool:
    """True when ``root`` holds a prepared dataset (its ``index.json`` exists)."""
    return (Path(root) / "index.json").is_file()


def read_index(root: str | Path) -> dict:
    """``root/index.json``, checked.

    Checked: JSON, an object of version :data:`src.data.prepare.INDEX_VERSION` with an int ``size`` >= 1,
    ``channels`` 1 or 3, ``classes`` (distinct names), ``folds`` and a ``videos`` list whose entries hold every
    key of :data:`INDEX_ENTRY_KEYS`, a ``label`` that indexes
    ``classes`` with ``class == classes[label]``, a group, ``num_frames`` >= 1 and a ``split`` of known folds.
    Raises FileNotFoundError (no index.json) or ValueError, one line naming the file."""
    path = Path(root) / "index.json"
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
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
    version = index.get("version")
    if version != INDEX_VERSION:
        raise broken(f"version {version!r}, not {INDEX_VERSION}, the version this code reads")
    for key in ("source", "size", "channels", "classes", "folds", "videos"):
        if key not in index:
            raise broken(f"no key {key!r}")
    if not isinstance(index["size"], int) or index["size"] < 1:
        raise broken(f"size is {index['size']!r}, not a frame side in pixels")
    if not isinstance(index["videos"], list):
        raise broken(f"videos is a {type(index['videos']).__name__}, not a list")
    for number, entry in enumerate(index["videos"]):
        if not isinstance(entry, dict):
            raise broken(f"video {number} is a {type(entry).__name__}, not an object")
        if missing := [key for key in INDEX_ENTRY_KEYS if key not in entry]:
            raise broken(f"{entry.get('video_id', f'video {number}')} lacks the key {missing[0]!r}")
    if index["channels"] not in (1, 3) or isinstance(index["channels"], bool):
        raise broken(f"channels is {index['channels']!r}, not 1 or 3")
    classes = index["classes"]
    if (not isinstance(classes, list) or not all(isinstance(c, str) and c for c in classes)
            or len(set(classes)) != len(classes)):
        raise broken(f"classes is {classes!r}, not a list of distinct names")
    folds = index["folds"]
    if not isinstance(folds, list) or not all(isinstance(fold, str) for fold in folds):
        raise broken(f"folds is {folds!r}, not a list of fold names")
    for entry in index["videos"]:
        name, label = entry["video_id"], entry["label"]
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(classes):
            raise broken(f"{name}: label {label!r} is not a class number 0..{len(classes) - 1}")
        if entry["class"] != classes[label]:
            raise broken(f"{name}: class {entry['class']!r} is not classes[{label}] = {classes[label]!r}")
        if isinstance(entry["group"], bool) or not isinstance(entry["group"], (int, str)):
            raise broken(f"{name}: group {entry['group']!r} is not a number or a name")
        if not isinstance(entry["num_frames"], int) or entry["num_frames"] < 1:
            raise broken(f"{name}: num_frames is {entry['num_frames']!r}, not a number of frames >= 1")
        split = entry.get("split", {})
        if not isinstance(split, dict) or any(fold not in folds or side not in ("train", "test")
                                              for fold, side in split.items()):
            raise broken(f"{name}: split {split!r} is not {{fold: 'train' | 'test'}} of the folds {folds}")
    return index


def resolve_channels(setting: str | int, stored: int, index_path: str | Path) -> int:
    """The channels frames are read in: ``setting`` (the config's ``data.channels``: ``auto``, 1 or 3) of data whose
    ``index.json`` (``index_path``) holds frames of ``stored`` channels. ``auto``: ``stored``. 3 of grayscale
    data: :class:`src.config.ConfigError` (a ValueError), one line naming the key, the value and the data's
    channels; 1 of colour data: 1, the frames converted to grayscale at load, said once in a warning."""
    if setting == "auto" or setting == stored:
        return stored
    if setting == 3:  # a ConfigError: the suite's refusals of a run that fails the same way each time
        raise ConfigError(f"data.channels: 3 (colour), but {index_path} holds grayscale frames (channels 1); use "
                         f"data.channels auto (the data's channels), or prepare the data again in colour "
                         f"('python -m src.data prepare --raw DIR --out {Path(index_path).parent} --channels 3')")
    _warn_converted(str(index_path))
    return setting


@functools.lru_cache(maxsize=None)
def _warn_converted(index_path: str) -> None:
    """One warning per dataset that colour frames are read in grayscale (data.channels 1)."""
    logger.warning(f"warning: data.channels: 1 (grayscale), but {index_path} holds colour frames (channels 3): "
                   f"converted to grayscale at load; data.channels auto keeps the colour")


def config_for_data(config: dict, root: str | Path) -> dict:
    """``config`` with ``data.channels`` the channels the prepared dataset at ``root`` is read in
    (:func:`resolve_channels`: ``auto`` becomes its ``index.json``'s), so that a checkpoint, a results.json and
    a comparison of configs record the number; a copy, ``config`` is unchanged. ValueError as
    :func:`resolve_channels`."""
    index_path = Path(root) / "index.json"
    channels = resolve_channels(config["data"]["channels"], read_index(root)["channels"], index_path)
    return with_channels(config, channels)


def with_channels(config: dict, channels: int) -> dict:
    """A copy of ``config`` whose ``data.channels`` is ``channels`` where it is ``auto`` (as it is otherwise)."""
    resolved = copy.deepcopy(config)
    if resolved["data"]["channels"] == "auto":
        resolved["data"]["channels"] = channels
    return resolved


def auto_root(preset: str = "full") -> tuple[Path, bool]:
    """Where ``data.root: auto`` leads, without making anything: ``(data/kth, False)`` when the real KTH is prepared
    there with videos, else ``(the synthetic twin's prepared folder for preset, True)``, which
    :func:`resolve_data_root` makes when it is not prepared yet."""
    if is_prepared(REAL_ROOT) and read_index(REAL_ROOT)["videos"]:
        return REAL_ROOT, False
    return (SYNTHETIC_ROOT if preset == "full" else SYNTHETIC_ROOT.with_name(f"synth_{preset}")), True


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
    synthetic_root, synthetic = auto_root(preset)
    if not synthetic:
        return REAL_ROOT, False
    if is_prepared(REAL_ROOT):
        logger.warning(f"note: {REAL_ROOT / 'index.json'} lists no videos (left by a failed prepare): {REAL_ROOT} is "
                       f"not a prepared dataset; using the synthetic twin")
    if not is_prepared(synthetic_root) or not read_index(synthetic_root)["videos"]:
        raw = SYNTHETIC_RAW_ROOT if preset == "full" else SYNTHETIC_RAW_ROOT.with_name(f"synth_raw_{preset}")
        if verbose:
            logger.warning(f"No prepared real KTH under {REAL_ROOT}: making the synthetic twin "
                           f"(preset {preset!r}) in {raw} -> {synthetic_root}")
        generate(raw, preset=preset, seed=seed)
        prepare(raw, synthetic_root)
    return synthetic_root, True
