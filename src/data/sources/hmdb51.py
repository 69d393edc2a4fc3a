"""HMDB51's layout (Kuehne et al., ICCV 2011): class folders and the official split files.

The layout (as the dataset's archives unpack, anywhere under the raw folder)::

    <root>/<class>/<file>.avi                           the videos; the class is the video's folder
    <root>/testTrainMulti_7030_splits/<class>_test_split<K>.txt   '<file> <0|1|2>' per line

The split files may instead lie in the folder given as ``--splits DIR`` (at any depth under it); none
found is an error (FileNotFoundError naming the folder searched). In fold K a video is 'train'
(1), 'test' (2) or unused (0, or not listed); a listed video that is not there is left out (a note
counts them). The group of a video is its source film: the part of the file name before
``_<class>_`` (``April_09_brush_hair_u_nm_np1_ba_goo_0.avi`` -> ``April_09``), else the whole stem.
HMDB51's split files are made class by class, so one film may be training data in one class and test
data in another: the ``given`` protocol keeps the files' sides as they are. Classes: sorted folder names.
"""
from __future__ import annotations

import re
from pathlib import Path

from src.data.sources.common import (
    Listing,
    VideoRecord,
    class_folder_videos,
    find_split_files,
    one_per_id,
    path_video_id,
    shown,
    video_files,
)

_SPLIT_FILE = re.compile(r"^(?P<class_name>.+)_test_split(?P<fold>\d+)\.txt$")
SIDES = {"1": "train", "2": "test", "0": None}
KNOWN_FILES = ("synthetic.json",)


def source_film(stem: str, class_name: str) -> str:
    """The group of an HMDB51 video: the file name's part before ``_<class>_``, else the stem."""
    at = stem.find(f"_{class_name}_")
    return stem[:at] if at > 0 else stem


def scan(raw: Path, notes: list[str], splits: Path | None = None) -> Listing:
    """The videos of the class folders of ``raw`` with their source films as groups and the folds of the
    split files (see the module docstring)."""
    videos = video_files(raw, notes, known=lambda p: p.name in KNOWN_FILES or _SPLIT_FILE.match(p.name) is not None)
    classed = class_folder_videos(raw, videos, notes, first_folder=False)
    records = {(name, p.name): VideoRecord(path=p, video_id=path_video_id(raw, p), class_name=name,
                                           group=source_film(p.stem, name), sequences=None)
               for p, name in classed.items()}

    folds, absent = set(), []
    for path in find_split_files(raw, splits, "*_test_split*.txt"):
        match = _SPLIT_FILE.match(path.name)
        if match is None:
            continue
        fold, class_name = match["fold"].lstrip("0") or "0", match["class_name"]
        folds.add(fold)
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or fields[1] not in SIDES:
                raise ValueError(f"{path}: line {number} is {line.strip()!r}, not '<file> <0|1|2>' (1 train, 2 test, "
                                 f"0 unused); fix the line")
            record = records.get((class_name, fields[0]))
            if record is None:
                absent.append(f"{class_name}/{fields[0]}")
            elif SIDES[fields[1]] is not None:
                record.split[fold] = SIDES[fields[1]]
    where = f"splits {splits}" if splits is not None else str(raw)
    if absent:
        notes.append(f"note: {where}: {len(absent)} video(s) of the split files are not under {raw}, left out: "
                     f"{shown(absent, 3)}")
    if not folds:
        raise FileNotFoundError(f"{where}: no <class>_test_split<K>.txt at any depth, so layout hmdb51 has no split "
                                f"files to read; give splits=DIR, the folder that holds HMDB51's split files "
                                f"(testTrainMulti_7030_splits/ or a folder above it), or layout='folder' to read "
                                f"the class folders without given folds")
    listed = one_per_id(list(records.values()), raw, notes)
    return Listing(source="hmdb51", classes=sorted({r.class_name for r in listed}), videos=listed,
                   group_kind="hmdb51 source film", folds=sorted(folds, key=int))
