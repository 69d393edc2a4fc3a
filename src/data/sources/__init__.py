"""Dataset sources: one small reader per layout of raw videos, holding what that layout's names, labels,
groups, annotations and split files say. :func:`scan` lists a raw folder as a :class:`Listing`, which
:func:`src.data.prepare.prepare` turns into a prepared dataset (``index.json`` version 2).

  kth      KTH-Actions: ``personXX_<action>_dY_uncomp.avi`` anywhere, ``00sequences.txt``; groups: persons
  folder   ``<root>/<class>/<any name>.<suffix>``, optional ``groups.csv``; groups: its rows, else each video
  ucf101   class folders + ``trainlist0K.txt``/``testlist0K.txt`` (+ ``classInd.txt``); groups: ``_gNN_``
  hmdb51   class folders + ``<class>_test_split<K>.txt``; groups: the source film of the file name

``auto`` (:func:`detect_layout`): kth when every video has a KTH name; ucf101 when a ``trainlist01.txt``
is found; hmdb51 when a ``*_test_split1.txt`` is found; else folder. Adding a dataset is adding a module
here with a ``scan(raw, notes, splits)`` function, and its name to :data:`LAYOUTS`; what the readers share
(:class:`VideoRecord`, :class:`Listing`, the video files of a folder ...) is in :mod:`src.data.sources.common`.
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
    is_video,
    raw_files,
)

__all__ = ["LAYOUTS", "SPLIT_LAYOUTS", "VIDEO_SUFFIXES", "HOW_TO_GET_DATA", "Listing", "VideoRecord", "check_layout",
           "detect_layout", "scan"]

LAYOUTS = ("auto", "kth", "folder", "ucf101", "hmdb51")
"""The ``layout`` choices: a module of this package each, but ``auto``."""
SPLIT_LAYOUTS = ("ucf101", "hmdb51")
"""The layouts that read split files (``splits``)."""


def detect_layout(raw: str | Path, splits: str | Path | None = None) -> str:
    """The layout ``auto`` takes for ``raw`` (see the module docstring); ``splits``: where the split files
    are, when not under ``raw``."""
    raw = Path(raw)
    splits = Path(splits) if splits is not None else None
    check_raw(raw)
    if all(kth.parse_video_name(p.name) is not None for p in raw_files(raw) if is_video(p)):
        return "kth"
    if find_split_files(raw, splits, "trainlist01.txt"):
        return "ucf101"
    if find_split_files(raw, splits, "*_test_split1.txt"):
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
        layout = detect_layout(raw, splits)
        if layout != "kth":
            named = [p.name for p in raw_files(raw) if is_video(p) and kth.parse_video_name(p.name) is not None]
            if named:
                notes.append(f"note: {raw}: read as layout {layout}, since not every video has a KTH name "
                             f"({len(named)} do, e.g. {named[0]}); pass layout='kth' to read only those")
    if splits is not None and layout not in SPLIT_LAYOUTS:
        raise ValueError(f"splits {splits}: layout {layout} reads no split files; give no splits folder, or "
                         f"{' or '.join(f'layout={name!r}' for name in SPLIT_LAYOUTS)}")
    reader = importlib.import_module(f"{__name__}.{layout}")
    return reader.scan(raw, notes, splits) if layout in SPLIT_LAYOUTS else reader.scan(raw, notes)
