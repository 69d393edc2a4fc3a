"""Facts about the KTH-Actions dataset, and its command line.

KTH-Actions (Schuldt, Laptev, Caputo, ICPR 2004): 6 actions x 25 persons x 4 scenarios,
599 videos (person13_handclapping_d3 does not exist), 160x120 grayscale at 25 fps,
named like ``person01_boxing_d1_uncomp.avi``. ``00sequences.txt`` gives, for every
video, the 1-based inclusive frame ranges of the four subsequences in which the
action is performed.

Command line::

    python -m src.kth download --root data/kth_raw [--base-url URL]
    python -m src.kth prepare  --raw data/kth_raw --out data/kth
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ACTIONS = ("walking", "jogging", "running", "boxing", "handwaving", "handclapping")
"""Class names; a label is the index in this tuple."""

PERSONS = tuple(range(1, 26))
TRAIN_PERSONS = tuple(range(1, 17))  # the course split: persons 1-16 train ...
TEST_PERSONS = tuple(range(17, 26))  # ... and 17-25 test
DEFAULT_VAL_PERSONS = (15, 16)       # carved from the training persons for model selection
SCENARIOS = (1, 2, 3, 4)             # d1 outdoors, d2 scale variation, d3 other clothes, d4 indoors
MISSING_VIDEOS = ("person13_handclapping_d3",)

REAL_ROOT = Path("data/kth")              # prepared real KTH
SYNTHETIC_RAW_ROOT = Path("data/synth_raw")  # raw synthetic twin (KTH layout, AVI)
SYNTHETIC_ROOT = Path("data/synth")       # prepared synthetic twin

_VIDEO_NAME = re.compile(
    r"^person(?P<person>\d{2})_(?P<action>" + "|".join(ACTIONS) + r")_d(?P<scenario>[1-4])(?:_uncomp)?$"
)


def video_id(person: int, action: str, scenario: int) -> str:
    """``video_id(1, 'boxing', 2) -> 'person01_boxing_d2'``."""
    return f"person{person:02d}_{action}_d{scenario}"


def parse_video_name(name: str) -> dict | None:
    """Parse a KTH file or folder name (extension and ``_uncomp`` optional).

    Returns ``{'video_id', 'person', 'action', 'label', 'scenario'}`` or None when the
    name is not a KTH video name.
    """
    stem = Path(name).name.split(".")[0]
    m = _VIDEO_NAME.match(stem)
    if m is None:
        return None
    person, action, scenario = int(m["person"]), m["action"], int(m["scenario"])
    return {
        "video_id": video_id(person, action, scenario),
        "person": person,
        "action": action,
        "label": ACTIONS.index(action),
        "scenario": scenario,
    }


def all_video_ids() -> list[str]:
    """The 599 video ids of KTH, in person, action, scenario order."""
    return [video_id(p, a, d) for p in PERSONS for a in ACTIONS for d in SCENARIOS
            if video_id(p, a, d) not in MISSING_VIDEOS]


def parse_sequences(path: str | Path) -> dict[str, list[tuple[int, int]]]:
    """Read ``00sequences.txt``.

    Returns ``{video_id: [(start, end), ...]}`` with 0-based, end-exclusive frame ranges
    (the file's ranges are 1-based and inclusive). Videos marked ``*missing*`` and
    lines that are not annotations are left out.
    """
    path = Path(path)
    sequences: dict[str, list[tuple[int, int]]] = {}
    for line_no, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        fields = line.split()
        if len(fields) < 2 or parse_video_name(fields[0]) is None or "*missing*" in line:
            continue
        if fields[1] != "frames":
            raise ValueError(f"{path}:{line_no}: expected '<video> frames a-b, c-d, ...'; got {line!r}")
        ranges = []
        for part in "".join(fields[2:]).split(","):
            if not part:
                continue
            a, b = part.split("-")
            ranges.append((int(a) - 1, int(b)))
        sequences[parse_video_name(fields[0])["video_id"]] = ranges
    return sequences


def format_sequences(sequences: dict[str, list[tuple[int, int]]]) -> str:
    """Inverse of :func:`parse_sequences`: the text of a ``00sequences.txt`` file."""
    lines = []
    for vid, ranges in sequences.items():
        spans = ", ".join(f"{a + 1}-{b}" for a, b in ranges)
        lines.append(f"{vid}\t\tframes\t{spans}")
    return "\n".join(lines) + "\n"


def is_prepared(root: str | Path) -> bool:
    """True when ``root`` holds a prepared dataset (its ``index.json`` exists)."""
    return (Path(root) / "index.json").is_file()


def resolve_data_root(root: str | Path = "auto", preset: str = "full", seed: int = 0,
                      verbose: bool = True) -> tuple[Path, bool]:
    """Find the data to work on. Returns ``(prepared_root, is_synthetic)``.

    ``root='auto'``: the prepared real KTH under ``data/kth`` when it exists, otherwise
    the synthetic twin under ``data/synth``, generated (``preset``, ``seed``) and
    prepared first if needed. Any other ``root`` must already be prepared.
    """
    if str(root) != "auto":
        root = Path(root)
        if not is_prepared(root):
            raise FileNotFoundError(
                f"{root}: no prepared dataset (index.json missing). Prepare one with "
                f"'python -m src.kth prepare --raw DIR --out {root}', or make the synthetic twin with "
                f"'python -m src.synthetic --out {SYNTHETIC_RAW_ROOT}' then prepare it.")
        import json
        return root, bool(json.loads((root / "index.json").read_text()).get("synthetic", False))
    if is_prepared(REAL_ROOT):
        return REAL_ROOT, False
    synthetic_root = SYNTHETIC_ROOT if preset == "full" else SYNTHETIC_ROOT.with_name(f"synth_{preset}")
    if not is_prepared(synthetic_root):
        from src.prepare import prepare
        from src.synthetic import generate
        raw = SYNTHETIC_RAW_ROOT if preset == "full" else SYNTHETIC_RAW_ROOT.with_name(f"synth_raw_{preset}")
        if verbose:
            print(f"No prepared real KTH under {REAL_ROOT}: making the synthetic twin "
                  f"(preset {preset!r}) in {raw} -> {synthetic_root}", file=sys.stderr)
        generate(raw, preset=preset, seed=seed)
        prepare(raw, synthetic_root)
    return synthetic_root, True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m src.kth", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("download", help="fetch the six zips and 00sequences.txt, then extract them")
    d.add_argument("--root", default="data/kth_raw", help="where the videos go (default: data/kth_raw)")
    d.add_argument("--base-url", default=None, help="a mirror of https://www.csc.kth.se/cvap/actions/")
    p = sub.add_parser("prepare", help="decode KTH videos to 64x64 grayscale frames and a cache")
    p.add_argument("--raw", required=True, help="folder searched (recursively) for KTH-named .avi/.mp4 files")
    p.add_argument("--out", default=str(REAL_ROOT), help=f"prepared dataset folder (default: {REAL_ROOT})")
    p.add_argument("--size", type=int, default=64, help="frame side in pixels (default: 64)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all cores)")
    p.add_argument("--no-png", action="store_true", help="write only the cache, not the image-XXXX.png tree")
    args = parser.parse_args(argv)
    from src.download import DEFAULT_BASE_URL, DownloadError, download
    from src.prepare import prepare
    try:
        if args.command == "download":
            download(args.root, base_url=args.base_url or DEFAULT_BASE_URL)
        else:
            prepare(args.raw, args.out, size=args.size, workers=args.workers, write_png=not args.no_png)
    except (FileNotFoundError, ValueError, DownloadError) as error:
        parser.exit(1, f"error: {error}\n")


if __name__ == "__main__":
    main()
