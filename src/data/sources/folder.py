"""A folder of class subfolders: any labelled videos.

The layout::

    <root>/<class>/<any name>.<suffix>         suffix: one of VIDEO_SUFFIXES (.avi .mp4 .mkv .mov .webm ...)
    <root>/<class>/<sub>/.../<any name>.<suffix>   deeper folders too: the class is the first folder
    <root>/groups.csv                          optional: which videos belong together

Names may hold spaces and non-ASCII letters. A video's id is its path under the root without the suffix
(``wave/my clip é``); the classes are the folder names, sorted. ``groups.csv`` has the header
``video,group`` and one row per video: its path relative to the root, with its suffix, and its group (the
person or scene that splits must keep together)::

    video,group
    wave/clip0.avi,alice
    clap/clip4.avi,alice

A video without a row, or a row naming no video, is an error. Without ``groups.csv`` every video is its
own group, and a warning says that clips of one person may then fall into both training and test.
Videos directly in the root (no class folder) are skipped, with a warning. The layout ships no split folds.
"""
from __future__ import annotations

import csv
import unicodedata
from pathlib import Path

from src.data.sources.common import Listing, VideoRecord, class_folder_videos, one_per_id, path_video_id, video_files

GROUPS_FILE = "groups.csv"
KNOWN_FILES = (GROUPS_FILE, "synthetic.json")


def read_groups(path: Path, videos: list[Path], raw: Path) -> dict[Path, str]:
    """``{video: group}`` from ``groups.csv`` at ``path``, for every one of ``videos``. ValueError, one line
    naming the file and the row or video: a bad header or row, a row naming no video (or one named
    twice), a video without a row."""
    def key(name: str) -> str:  # a name typed in NFD (macOS) matches one in NFC, and back
        return unicodedata.normalize("NFC", name)

    by_name = {key(p.relative_to(raw).as_posix()): p for p in videos}
    example = next(iter(by_name))
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's byte-order mark
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{path}: cannot be read as CSV ({e}); write it as UTF-8 text, 'video,group' "
                         f"rows") from None
    header = [cell.strip() for cell in rows[0]] if rows else []
    if header != ["video", "group"]:
        raise ValueError(f"{path}: the first row is {','.join(header)!r}, not the header 'video,group'; start the "
                         f"file with 'video,group', then one row per video, e.g. '{example},alice'")
    groups: dict[Path, str] = {}
    rows_of: dict[str, int] = {}
    for number, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise ValueError(f"{path}: row {number} is {','.join(row)!r}, not 'video,group' (a video's path "
                             f"and a non-empty group); write e.g. '{example},alice'")
        name, group = key(row[0].strip()), key(row[1].strip())
        if name in rows_of:
            raise ValueError(f"{path}: row {number} names {name!r} again (first on row {rows_of[name]}); give "
                             f"each video one row")
        if name not in by_name:
            raise ValueError(f"{path}: row {number} names {name!r}, which is no video under {raw}; give the "
                             f"video's path relative to {raw}, with its suffix (e.g. '{example}'), or remove "
                             f"the row")
        rows_of[name] = number
        groups[by_name[name]] = group
    if missing := [name for name, p in by_name.items() if p not in groups]:
        raise ValueError(f"{path}: {len(missing)} video(s) have no row, e.g. {missing[0]!r}; add a row "
                         f"'{missing[0]},<group>' for each (every video needs its group), or delete {path.name} "
                         f"to make every video its own group")
    return groups


def scan(raw: Path, notes: list[str]) -> Listing:
    """The videos of the class folders of ``raw``, their classes and groups (see the module docstring)."""
    videos = video_files(raw, notes, known=lambda p: p.parent == raw and p.name in KNOWN_FILES)
    classed = class_folder_videos(raw, videos, notes, first_folder=True)
    groups_path = raw / GROUPS_FILE
    if groups_path.is_file():
        groups, group_kind = read_groups(groups_path, list(classed), raw), "groups.csv"
    else:
        groups, group_kind = {p: path_video_id(raw, p) for p in classed}, "video"
        notes.append(f"warning: {raw}: no {GROUPS_FILE}, so every video is its own group: clips of one person may "
                     f"then fall into both training and test; write {groups_path} ('video,group' rows) to keep "
                     f"them together")
    records = [VideoRecord(path=p, video_id=path_video_id(raw, p), class_name=name, group=groups[p], sequences=None)
               for p, name in classed.items()]
    records = one_per_id(records, raw, notes)
    return Listing(source="folder", classes=sorted({r.class_name for r in records}), videos=records,
                   group_kind=group_kind, folds=[])
