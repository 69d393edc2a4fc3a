"""UCF101's layout (Soomro, Zamir, Shah, 2012): class folders and the official split lists.

The layout (as the dataset's two archives unpack, anywhere under the raw folder)::

    <root>/UCF-101/<Class>/v_<Class>_g<NN>_c<MM>.avi     the videos; the class is the video's folder
    <root>/ucfTrainTestlist/trainlist0<K>.txt            'Class/v_Class_gNN_cMM.avi <label>' per line
    <root>/ucfTrainTestlist/testlist0<K>.txt             'Class/v_Class_gNN_cMM.avi' per line
    <root>/ucfTrainTestlist/classInd.txt                 '1 ApplyEyeMakeup' per line (optional)

The split lists may instead lie in the folder given as ``--splits DIR`` (at any depth under it); none
found is an error (FileNotFoundError naming the folder searched). Fold K is every K with both a
``trainlist0K.txt`` and a ``testlist0K.txt``; a video listed in neither is unused by that fold, a listed
video that is not there is left out (a note counts them). Lines match videos by ``Class/file``, in any
case, the video suffix aside (a frame folder ``Class/v_Class_g01_c01/`` is the line's ``v_Class_g01_c01.avi``).
The group of a video is its ``gNN`` (the 25 groups of UCF101: clips of one group come from one long
video, and the official splits keep each group on one side); a name without ``_gNN_`` makes its own
group (a warning counts them). Classes: ``classInd.txt``'s order when present (those with videos), else
sorted.
"""
from __future__ import annotations

import re
from pathlib import Path

from src.data.sources.common import (
    Listing,
    VideoRecord,
    class_folder_videos,
    find_split_files,
    is_video,
    one_per_id,
    path_video_id,
    shown,
    video_files,
)

_GROUP = re.compile(r"_(g\d+)_c\d+$")
_LIST = re.compile(r"^(train|test)list(\d+)\.txt$")
KNOWN_FILES = ("classInd.txt", "synthetic.json")


def read_class_index(path: Path) -> list[str]:
    """The classes of ``classInd.txt`` (``'1 ApplyEyeMakeup'`` lines) in the order of their numbers."""
    numbered = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[0].isdigit():
            raise ValueError(f"{path}: line {number} is {line.strip()!r}, not '<number> <class>'; fix the line")
        numbered.append((int(fields[0]), fields[1]))
    return [name for _, name in sorted(numbered)]


def read_list(path: Path) -> list[tuple[int, str]]:
    """``[(line number, 'Class/file' as the line writes it), ...]`` of a train or test list."""
    entries = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if "/" not in fields[0] or len(fields) > 2:
            raise ValueError(f"{path}: line {number} is {line.strip()!r}, not 'Class/v_Class_gNN_cMM.avi [label]'; "
                             f"fix the line")
        entries.append((number, fields[0]))
    return entries


def list_key(name: str) -> str:
    """How a list line's ``Class/v_Class_gNN_cMM.avi`` meets a video: in lower case, without a video suffix, so
    that a frame folder ``Class/v_Class_gNN_cMM/`` (UCF101's frames, extracted) is the video the line names."""
    name = name.lower()
    return name[:-len(Path(name).suffix)] if is_video(Path(name)) else name


def scan(raw: Path, notes: list[str], splits: Path | None = None) -> Listing:
    """The videos of the class folders of ``raw`` with their ``gNN`` groups and the folds of the split
    lists (see the module docstring)."""
    videos = video_files(raw, notes, known=lambda p: p.name in KNOWN_FILES or _LIST.match(p.name) is not None)
    classed = class_folder_videos(raw, videos, notes, first_folder=False)
    by_key = {list_key(f"{p.parent.name}/{p.name}"): p for p in classed}

    ungrouped = [p.name for p in classed if _GROUP.search(p.stem) is None]
    if ungrouped:
        notes.append(f"warning: {raw}: {len(ungrouped)} video(s) without a UCF101 group in their name "
                     f"(v_<Class>_gNN_cMM): each is its own group: {shown(ungrouped)}")
    records = {p: VideoRecord(path=p, video_id=path_video_id(raw, p), class_name=name,
                              group=match[1] if (match := _GROUP.search(p.stem)) else path_video_id(raw, p),
                              sequences=None)
               for p, name in classed.items()}

    lists = {(m[1], m[2].lstrip("0") or "0"): p for p in reversed(find_split_files(raw, splits, "*list*.txt"))
             if (m := _LIST.match(p.name))}
    folds = sorted({fold for kind, fold in lists if kind == "train"}, key=int)
    where = f"splits {splits}" if splits is not None else str(raw)
    if not folds:
        raise FileNotFoundError(f"{where}: no trainlist0K.txt at any depth, so layout ucf101 has no split lists to "
                                f"read; give splits=DIR, the folder that holds UCF101's trainlist01.txt and "
                                f"testlist01.txt (ucfTrainTestlist/), or layout='folder' to read the class folders "
                                f"without given folds")
    for fold in folds:
        if ("test", fold) not in lists:
            raise FileNotFoundError(f"{lists['train', fold]}: no testlist0{fold}.txt beside it; put both lists of "
                                    f"fold {fold} in one folder")
        absent = []
        for kind in ("train", "test"):
            for number, name in read_list(lists[kind, fold]):
                if list_key(name) not in by_key:
                    absent.append(name)
                    continue
                record = records[by_key[list_key(name)]]
                if record.split.get(fold, kind) != kind:
                    raise ValueError(f"{lists[kind, fold]}: line {number}: {name} is in trainlist0{fold}.txt too; a "
                                     f"video is train or test in one fold, not both")
                record.split[fold] = kind
        if absent:
            notes.append(f"note: {where}: {len(absent)} video(s) of fold {fold}'s lists are not under {raw}, left "
                         f"out: {shown(absent, 3)}")

    present = sorted({r.class_name for r in records.values()})
    classes = present
    class_index = find_split_files(raw, splits, "classInd.txt")
    if class_index:
        listed = read_class_index(class_index[0])
        if unlisted := [name for name in present if name not in listed]:
            raise ValueError(f"{class_index[0]}: lists no class {unlisted[0]!r} (a class folder under {raw}); add "
                             f"it, or remove the folder")
        classes = [name for name in listed if name in present]
    return Listing(source="ucf101", classes=classes, videos=one_per_id(list(records.values()), raw, notes),
                   group_kind="ucf101 group (_gNN_)", folds=folds)
