"""Where the data comes from: the real KTH when it has been prepared, else the synthetic
twin, made on first use; and the command line that fetches and prepares it.

    python -m src.data download --root data/kth_raw [--base-url URL]
    python -m src.data prepare  --raw data/kth_raw --out data/kth

A prepared dataset is a folder with ``index.json`` and ``cache/`` (see ``src.prepare``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REAL_ROOT = Path("data/kth")              # prepared real KTH
SYNTHETIC_RAW_ROOT = Path("data/synth_raw")  # raw synthetic twin (KTH layout, AVI)
SYNTHETIC_ROOT = Path("data/synth")       # prepared synthetic twin


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
                f"'python -m src.data prepare --raw DIR --out {root}', or make the synthetic twin with "
                f"'python -m src.synthetic --out {SYNTHETIC_RAW_ROOT}' then prepare it.")
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
    parser = argparse.ArgumentParser(prog="python -m src.data", description=__doc__.split("\n\n")[0])
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
