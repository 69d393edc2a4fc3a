"""Dataset sources: one small reader per layout of raw videos, holding what that layout's names, labels,
groups, annotations and split files say. :func:`scan` lists a raw folder as a :class:`Listing`, which
:func:`src.data.prepare.prepare` turns into a prepared dataset (``index.json`` version 2).

  kth      KTH-Actions: ``personXX_<action>_dY_uncomp.avi`` anywhere, ``00sequences.txt``; groups: persons
  folder   ``<root>/<class>/<any name>.<suffix>``, optional ``groups.csv``; groups: its rows, else each video
  ucf101   class folders + ``trainlist0K.txt``/``testlist0K.txt`` (+ ``classInd.txt``); groups: ``_gNN_``
  hmdb51   class folders + ``<class>_test_split<K>.txt``; groups: the source film of the file name

``auto`` (:func:`detect_layout`): kth when every video has a KTH name, unless their class folders disagree
with the names (:func:`folders_disagree`: then the folders win); ucf101 when a ``trainlist01.txt`` is found;
hmdb51 when a ``*_test_split1.txt`` is found (under ``splits`` when given, at any depth); else folder. A video
is a video file or a frame folder (a folder of images: :func:`src.data.sources.common.frame_folders`).
Adding a dataset is adding a module here with a ``scan(raw, notes, splits)`` function, and its name to
:data:`LAYOUTS`; what the readers share (:class:`VideoRecord`, :class:`Listing`, the video files of a
folder ...) is in :mod:`src.data.sources.common`.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from src.data.sources import kth
from src.data.sources.common import (
    HOW_TO_GET_DATA,
    VIDEO_SUFFIXES,
    Listing,
    VideoRecord,
    check_raw,
    find_split_files,
    shown,
    video_files,
)

__all__ = ["LAYOUTS", "SPLIT_LAYOUTS", "VIDEO_SUFFIXES", "HOW_TO_GET_DATA", "Listing", "VideoRecord", "check_layout",
           "detect_layout", "scan"]

LAYOUTS = ("auto", "kth", "folder", "ucf101", "hmdb51")
"""The ``layout`` choices: a module of this package each, but ``auto``."""
SPLIT_LAYOUTS = ("ucf101", "hmdb51")
"""The layouts that read split files (``splits``)."""


def folders_disagree(raw: Path, videos: list[Path]) -> list[Path]:
    """The KTH-named ``videos`` whose class folder (the first folder under ``raw``, as layout folder reads
    it) is not their KTH action, when there are 2 or more class folders (``Punch/person01_boxing_d1.avi``);
    [] when the folders agree with the names, or hold them all in one folder (a folder of KTH's videos)."""
    classed = {p: p.relative_to(raw).parts[0] for p in videos if p.parent != raw}
    if len(set(classed.values())) < 2:
        return []
    return [p for p, folder in classed.items()
            if (info := kth.parse_video_name(p.name)) is not None and folder.lower() != info["action"]]


def detect_layout(raw: str | Path, splits: str | Path | None = None, notes: list[str] | None = None) -> str:
    """The layout ``auto`` takes for ``raw`` (see the module docstring); ``splits``: where the split files
    are, when not under ``raw``. Why the KTH names of the videos were not taken is added to ``notes``."""
    raw = Path(raw)
    splits = Path(splits) if splits is not None else None
    check_raw(raw)
    videos = video_files(raw, [])
    if all(kth.parse_video_name(p.name) is not None for p in videos):
        disagree = folders_disagree(raw, videos)
        if not disagree:
            return "kth"
        if notes is not None:
            notes.append(f"note: {raw}: read as layout folder: the class folders of {len(disagree)} KTH-named "
                         f"video(s) are not their KTH action ({shown([p.relative_to(raw) for p in disagree], 3)}), "
                         f"and class folders win over file names; pass layout='kth' to read the KTH names")
    elif find_split_files(raw, splits, "trainlist01.txt"):
        return "ucf101"
    elif find_split_files(raw, splits, "*_test_split1.txt"):
        return "hmdb51"
    return "folder"


def check_layout(layout: str) -> None:
    """Refuse a ``layout`` that is not one of :data:`LAYOUTS` (ValueError, one line naming the argument)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout: {layout!r} is not a layout; use one of {', '.join(LAYOUTS)}")


def scan(raw: str | Path, layout: str = "auto", notes: list[str] | None = None,
         splits: str | Path | None = None) -> Listing:
    """List the videos of ``raw`` as ``layout`` (one of :data:`LAYOUTS`) reads them. ``splits``: the folder
    of the split files (ucf101, hmdb51) when they are not under ``raw``. Lines for stderr (what was
    skipped, what is missing) are added to ``notes``, for the caller to report once every argument has
    been checked. Raises ValueError or FileNotFoundError, one line naming the argument (``layout``,
    ``splits``, written ``layout='kth'`` in a hint) or file."""
    raw = Path(raw)
    notes = [] if notes is None else notes
    check_layout(layout)
    if splits is not None:
        splits = Path(splits)
        if not splits.is_dir():
            raise FileNotFoundError(f"splits {splits}: no such folder; give the folder that holds the split files "
                                    f"(UCF101: trainlist01.txt ...; HMDB51: <class>_test_split1.txt ...)")
    check_raw(raw)
    if layout == "auto":
        said = len(notes)
        layout = detect_layout(raw, splits, notes)
        if layout != "kth" and len(notes) == said:
            named = [p.name for p in video_files(raw, []) if kth.parse_video_name(p.name) is not None]
            if named:
                notes.append(f"note: {raw}: read as layout {layout}, since not every video has a KTH name "
                             f"({len(named)} do, e.g. {named[0]}); pass layout='kth' to read only those")
    if splits is not None and layout not in SPLIT_LAYOUTS:
        raise ValueError(f"splits {splits}: layout {layout} reads no split files; give no splits folder, or "
                         f"{' or '.join(f'layout={name!r}' for name in SPLIT_LAYOUTS)}")
    reader = importlib.import_module(f"{__name__}.{layout}")
    return reader.scan(raw, notes, splits) if layout in SPLIT_LAYOUTS else reader.scan(raw, notes)
