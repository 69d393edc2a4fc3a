"""Dataset sources: one small reader per layout of raw videos, holding what that layout's names, labels,
groups, annotations and split files say. :func:`scan` lists a raw folder as a :class:`Listing`, which
:func:`src.data.prepare.prepare` turns into a prepared dataset (``index.json`` version 2).

  kth      KTH-Actions: ``personXX_<action>_dY_uncomp.avi`` anywhere, ``00sequences.txt``; groups: persons
  folder   ``<root>/<class>/<any name>.<suffix>``, optional ``groups.csv``; groups: its rows, else each video
  ucf101   class folders + ``trainlist0K.txt``/``testlist0K.txt`` (+ ``classInd.txt``); groups: ``_gNN_``
  hmdb51   class folders + ``<class>_test_split<K>.txt``; groups: the source film of the file name

``auto`` (:func:`detect_layout`): kth when every video has a KTH name; ucf101 when a ``trainlist01.txt``
is found; hmdb51 when a ``*_test_split1.txt`` is found; else folder. Adding a dataset is adding a module
here with a ``scan(raw, notes, splits)`` function, and its name to :data:`LAYOUTS`.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

LAYOUTS = ("auto", "kth", "folder", "ucf101", "hmdb51")
"""The ``--layout`` choices: a module of this package each, but ``auto``."""
SPLIT_LAYOUTS = ("ucf101", "hmdb51")
"""The layouts that read split files (``--splits DIR``)."""
VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".ogv")
"""The file suffixes (any case) read as videos; PyAV decodes each."""
HOW_TO_GET_DATA = ("get KTH with 'python -m src.data download --root data/kth_raw', make the synthetic twin with "
                   "'python -m src.data.synthetic --out data/synth_raw', or give a folder of class subfolders "
                   "(<class>/<video>.avi)")


@dataclass
class VideoRecord:
    """One video of a raw folder, as its layout describes it."""
    path: Path                                # the file
    video_id: str                             # unique; KTH: person01_boxing_d1; others: path under raw, no suffix
    class_name: str
    group: int | str                          # what a split keeps together (KTH: the person)
    sequences: list[tuple[int, int]] | None   # annotated ranges, 0-based end-exclusive; None: the whole video
    split: dict[str, str] = field(default_factory=dict)  # fold -> 'train' | 'test'; {} when none is shipped
    extra: dict = field(default_factory=dict)             # kept in the index entry (KTH: person, action, scenario)


@dataclass
class Listing:
    """What :func:`scan` found in a raw folder."""
    source: str             # the layout: kth, folder, ucf101, hmdb51
    classes: list[str]      # label i is classes[i]
    videos: list[VideoRecord]  # sorted by video_id, one per id
    group_kind: str         # what a group is: person, groups.csv, video, ...
    folds: list[str]        # the split folds the dataset ships ([] when none)


def check_raw(raw: Path) -> None:
    """Refuse a ``raw`` that is not a folder (FileNotFoundError, one line)."""
    if raw.exists() and not raw.is_dir():
        raise FileNotFoundError(f"{raw}: a file, not a folder of videos; {HOW_TO_GET_DATA}")
    if not raw.is_dir():
        raise FileNotFoundError(f"{raw}: no such folder; {HOW_TO_GET_DATA}")


def raw_files(raw: Path) -> list[Path]:
    """Every file under ``raw`` that is not hidden (no part of its path under ``raw`` starts with '.'), sorted."""
    return sorted(p for p in raw.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(raw).parts))


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def video_files(raw: Path, notes: list[str], known=lambda path: False) -> list[Path]:
    """The video files under ``raw`` (sorted); a line about the other files, but those ``known(path)``
    says the layout reads, is added to ``notes``."""
    files = raw_files(raw)
    stray = [p for p in files if not is_video(p) and not known(p)]
    if stray:
        notes.append(f"note: {raw}: ignored {len(stray)} non-video file(s), e.g. {stray[0].relative_to(raw)}")
    return [p for p in files if is_video(p)]


def shown(items: list, count: int = 5) -> str:
    """``'a, b, c ...'``: the first ``count`` items."""
    return ", ".join(map(str, items[:count])) + (" ..." if len(items) > count else "")


def class_folder_videos(raw: Path, videos: list[Path], notes: list[str], first_folder: bool) -> dict[Path, str]:
    """``{video: class}`` of the videos in a class folder: the first folder under ``raw`` (``first_folder``)
    or the video's own folder. Videos directly in ``raw`` are left out, and a line says so in ``notes``;
    none in a class folder is a FileNotFoundError naming ``raw``."""
    classed = {p: (p.relative_to(raw).parts[0] if first_folder else p.parent.name)
               for p in videos if p.parent != raw}
    loose = [p.name for p in videos if p.parent == raw]
    if loose:
        notes.append(f"warning: {raw}: skipped {len(loose)} video(s) outside a class folder (<class>/<video>): "
                     f"{shown(loose)}")
    if not classed:
        hint = f" (only videos outside one: {shown(loose, 3)})" if loose else ""
        raise FileNotFoundError(f"{raw}: holds no video in a class folder ({'/'.join(VIDEO_SUFFIXES)} files in "
                                f"<class>/ subfolders){hint}; put each class's videos in a folder named after "
                                f"the class")
    return classed


def path_video_id(raw: Path, path: Path) -> str:
    """The id of a video of a class-folder layout: its path under ``raw`` without the suffix, posix."""
    return path.relative_to(raw).with_suffix("").as_posix()


def one_per_id(records: list[VideoRecord], raw: Path, notes: list[str]) -> list[VideoRecord]:
    """``records`` sorted by video id, the first file of each id kept (a line in ``notes`` per other)."""
    kept: dict[str, VideoRecord] = {}
    for record in records:
        if record.video_id in kept:
            notes.append(f"warning: {record.path}: a second file for {record.video_id}, ignored; using "
                         f"{kept[record.video_id].path}")
            continue
        kept[record.video_id] = record
    return [kept[video_id] for video_id in sorted(kept)]


def find_split_files(raw: Path, splits: Path | None, pattern: str) -> list[Path]:
    """The files named like ``pattern`` (a glob) in ``splits`` when given, else anywhere under ``raw``."""
    if splits is not None:
        return sorted(splits.glob(pattern))
    return [p for p in raw_files(raw) if p.match(pattern)]


def detect_layout(raw: str | Path, splits: str | Path | None = None) -> str:
    """The layout ``auto`` takes for ``raw`` (see the module docstring); ``splits``: where the split files
    are, when not under ``raw``."""
    from src.data.sources.kth import parse_video_name

    raw = Path(raw)
    splits = Path(splits) if splits is not None else None
    check_raw(raw)
    if all(parse_video_name(p.name) is not None for p in raw_files(raw) if is_video(p)):
        return "kth"
    if find_split_files(raw, splits, "trainlist01.txt"):
        return "ucf101"
    if find_split_files(raw, splits, "*_test_split1.txt"):
        return "hmdb51"
    return "folder"


def scan(raw: str | Path, layout: str = "auto", notes: list[str] | None = None,
         splits: str | Path | None = None) -> Listing:
    """List the videos of ``raw`` as ``layout`` (one of :data:`LAYOUTS`) reads them. ``splits``: the folder
    of the split files (ucf101, hmdb51) when they are not under ``raw``. Lines for stderr (what was
    skipped, what is missing) are added to ``notes``, for the caller to print once every argument has
    been checked. Raises ValueError or FileNotFoundError, one line naming the argument or file."""
    raw = Path(raw)
    notes = [] if notes is None else notes
    if layout not in LAYOUTS:
        raise ValueError(f"--layout: {layout!r} is not a layout; use one of {', '.join(LAYOUTS)}")
    if splits is not None:
        splits = Path(splits)
        if not splits.is_dir():
            raise FileNotFoundError(f"--splits {splits}: no such folder; give the folder that holds the split files "
                                    f"(UCF101: trainlist01.txt ...; HMDB51: <class>_test_split1.txt ...)")
    check_raw(raw)
    if layout == "auto":
        layout = detect_layout(raw, splits)
        if layout != "kth":
            from src.data.sources.kth import parse_video_name
            named = [p.name for p in raw_files(raw) if is_video(p) and parse_video_name(p.name) is not None]
            if named:
                notes.append(f"note: {raw}: read as layout {layout}, since not every video has a KTH name "
                             f"({len(named)} do, e.g. {named[0]}); pass --layout kth to read only those")
    if splits is not None and layout not in SPLIT_LAYOUTS:
        raise ValueError(f"--splits {splits}: layout {layout} reads no split files; leave --splits out, or use "
                         f"--layout {' or '.join(SPLIT_LAYOUTS)}")
    reader = importlib.import_module(f"{__name__}.{layout}")
    return reader.scan(raw, notes, splits) if layout in SPLIT_LAYOUTS else reader.scan(raw, notes)
