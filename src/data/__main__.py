"""The command line that fetches and prepares the data.

    python -m src.data download --root data/kth_raw [--base-url URL] [--deadline SECONDS]
    python -m src.data prepare  --raw data/kth_raw --out data/kth [--layout auto|kth|folder|ucf101|hmdb51]
                                [--splits DIR] [--channels 1|3] [--allow-failures]

``download`` fetches KTH-Actions (:mod:`src.data.download`); ``prepare`` decodes the videos of a
raw folder (KTH, a folder of class subfolders, UCF101 or HMDB51: :mod:`src.data.sources`) into a
prepared dataset, ``index.json`` and ``cache/`` (:mod:`src.data.prepare`), which
:func:`src.data.index.resolve_data_root` finds.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import re
import sys
from pathlib import Path

from tqdm.contrib.logging import logging_redirect_tqdm

from src.data.download import DEFAULT_BASE_URL, DEFAULT_DEADLINE, SEQUENCES_FILE, DownloadError, download
from src.data.index import REAL_ROOT
from src.data.prepare import prepare
from src.data.sources import LAYOUTS, detect_layout
from src.data.sources.kth import ACTIONS

FLAGS = {"raw": "--raw", "out": "--out", "layout": "--layout", "splits": "--splits", "channels": "--channels",
         "size": "--size", "workers": "--workers", "allow_failures": "--allow-failures", "root": "--root"}
"""The arguments of the library calls (src.data.prepare.prepare, src.data.sources.scan) and their flags here."""
_KEYWORD = re.compile(r"\b(" + "|".join(FLAGS) + r")=('?)([^',;)\s]*)\2")
_LEADING = re.compile(r"^((?:note|warning|failed): )?(" + "|".join(FLAGS) + r")(?=[: ])")


def as_flags(message: str) -> str:
    """A library message worded in this command's flags: a leading argument name (``size: 0 is not ...``,
    ``splits DIR: ...``, after a ``note:`` or ``warning:``) becomes its flag, and ``name=value`` in a hint
    (``layout='kth'``, ``allow_failures=True``) becomes ``--name value`` (``--name`` for True)."""
    message = _LEADING.sub(lambda m: (m[1] or "") + FLAGS[m[2]], message)
    return _KEYWORD.sub(lambda m: FLAGS[m[1]] + ("" if m[3] == "True" else f" {m[3]}"), message)


class ConsoleHandler(logging.Handler):
    """The library's log lines as this command shows them: info on stdout, warnings on stderr, in flags."""

    def emit(self, record: logging.LogRecord) -> None:
        stream = sys.stdout if record.levelno < logging.WARNING else sys.stderr
        stream.write(as_flags(self.format(record)) + "\n")


@contextlib.contextmanager
def console_logging():
    """Show the log lines of ``src`` (info and up) while the command runs (:class:`ConsoleHandler`)."""
    logger, handler = logging.getLogger("src"), ConsoleHandler()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def default_out(raw: str, layout: str, splits: str | None) -> Path:
    """``data/kth`` for KTH, which ``auto`` then finds; ValueError for another layout, whose prepared folder
    would otherwise pass for the real KTH."""
    if layout == "auto" and Path(raw).is_dir():
        layout = detect_layout(Path(raw), splits)
    if layout in ("auto", "kth"):  # a raw folder that is not there: prepare says so
        return REAL_ROOT
    raise ValueError(f"--out: {raw} holds a {layout} dataset; name its prepared folder, e.g. --out "
                     f"data/{Path(raw).resolve().name}_prepared ({REAL_ROOT} is where the real KTH goes)")


@contextlib.contextmanager
def printed_log(name: str = "src"):
    """Print the records of logger ``name`` of level INFO and up on stderr, one a line
    (``ERROR: ...``), above any tqdm progress bar; as it was afterwards."""
    logger = logging.getLogger(name)
    console, level = logging.StreamHandler(sys.stderr), logger.level
    console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.addHandler(console)
    logger.setLevel(logging.INFO)
    try:
        with logging_redirect_tqdm(loggers=[logger]):
            yield
    finally:
        logger.removeHandler(console)
        logger.setLevel(level)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m src.data", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("download", help="fetch the six zips and 00sequences.txt, then extract them")
    d.add_argument("--root", default="data/kth_raw", help="where the videos go (default: data/kth_raw)")
    d.add_argument("--base-url", default=None, help=f"a mirror of {DEFAULT_BASE_URL} (http://, https://, or "
                                                    f"file:///path/ for a local folder)")
    d.add_argument("--deadline", type=float, default=DEFAULT_DEADLINE, metavar="SECONDS",
                   help=f"give up a file not complete after this many seconds, all its attempts together (default: "
                        f"{DEFAULT_DEADLINE:g}); its partial bytes are kept, a rerun resumes them")
    p = sub.add_parser("prepare", help="decode the videos of a raw folder to 64x64 frames and a cache")
    p.add_argument("--raw", required=True, help="the raw folder: KTH-named videos, class subfolders, UCF101 or HMDB51")
    p.add_argument("--layout", default="auto", metavar="|".join(LAYOUTS),
                   help="how --raw is laid out (default: auto: kth when every video has a KTH name and no class "
                        "folder disagrees with it, ucf101 when a trainlist01.txt is found, hmdb51 when a "
                        "*_test_split1.txt is, else folder; a folder of images is one video)")
    p.add_argument("--splits", default=None, help="the folder of the split files, searched at any depth (ucf101: "
                                                  "trainlist0K.txt ...; hmdb51: <class>_test_splitK.txt) when they "
                                                  "are not under --raw")
    p.add_argument("--channels", type=int, default=1, metavar="1|3",
                   help="1: grayscale (default, KTH's), 3: colour (RGB)")
    p.add_argument("--out", default=None, help=f"prepared dataset folder (default for KTH: {REAL_ROOT}, the folder "
                                               f"every command finds; another layout must name its own)")
    p.add_argument("--size", type=int, default=64, help="frame side in pixels (default: 64)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: all cores)")
    p.add_argument("--no-png", action="store_true", help="write only the cache, not the image-XXXX.png tree")
    p.add_argument("--allow-failures", action="store_true",
                   help="when some videos cannot be decoded, prepare the others (index.json lists the failed ones) "
                        "and exit 0; by default nothing is written and the exit status is 1")
    args = parser.parse_args(argv)
    try:
        run(args)
    except (FileNotFoundError, ValueError, DownloadError) as error:
        parser.exit(1, f"error: {as_flags(str(error))}\n")
    except OSError as error:  # of the environment: disk full, no permission
        where = error.filename or getattr(args, "out", None) or args.root
        parser.exit(1, f"error: {where}: {error.strerror or error}; free space or fix the permissions, then rerun\n")


def run(args: argparse.Namespace) -> None:
    """Do the command ``args`` name, showing the library's log lines."""
    if args.command == "download":
        with printed_log():
            root = download(args.root, base_url=args.base_url or DEFAULT_BASE_URL, deadline=args.deadline)
        print(f"KTH-Actions is in {root}: {len(ACTIONS)} action folders and {SEQUENCES_FILE}")
        return
    out = args.out or default_out(args.raw, args.layout, args.splits)
    with console_logging():
        prepare(args.raw, out, size=args.size, workers=args.workers, write_png=not args.no_png,
                allow_failures=args.allow_failures, layout=args.layout, splits=args.splits, channels=args.channels)


if __name__ == "__main__":
    main()
