"""What every layout's reader shares: the records a scan lists (:class:`VideoRecord`, :class:`Listing`),
the video files of a raw folder, class folders, one record per video id, split files."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".ogv")
"""The file suffixes (any case) read as videos; PyAV decodes each."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
"""The file suffixes (any case) of the images of a frame folder: a folder of images (and no video) is one video,
its frames the images in name order (:func:`frame_folders`; :mod:`src.data.decode` reads it)."""
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
    """A video file (by its suffix, :data:`VIDEO_SUFFIXES`); a frame folder is found by :func:`frame_folders`."""
    return path.suffix.lower() in VIDEO_SUFFIXES


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def frame_folders(raw: Path, files: list[Path]) -> list[Path]:
    """The frame folders among the folders of ``files`` (:func:`raw_files` of ``raw``): every folder below
    ``raw`` that holds images and no video file itself, sorted."""
    with_video = {p.parent for p in files if is_video(p)}
    return sorted({p.parent for p in files if is_image(p) and p.parent != raw and p.parent not in with_video})


def video_files(raw: Path, notes: list[str], known=lambda path: False) -> list[Path]:
    """The videos under ``raw`` (sorted): the video files, and the frame folders (:func:`frame_folders`: a
    folder of images is one video). A line about the other files, but those ``known(path)`` says the layout
    reads, and one saying how many frame folders are read as videos, are added to ``notes``."""
    files = raw_files(raw)
    folders = frame_folders(raw, files)
    in_folder = set(folders)
    stray = [p for p in files if not is_video(p) and not known(p) and p.parent not in in_folder]
    if stray:
        notes.append(f"note: {raw}: ignored {len(stray)} non-video file(s), e.g. {stray[0].relative_to(raw)}")
    if folders:
        notes.append(f"note: {raw}: read {len(folders)} frame folder(s) as videos, their images in name order "
                     f"(e.g. {folders[0].relative_to(raw)})")
    return sorted([p for p in files if is_video(p)] + folders)


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
    """The id of a video of a class-folder layout: its path under ``raw`` without the suffix (a frame folder's
    path as it is), posix."""
    relative = path.relative_to(raw)
    return (relative if path.is_dir() else relative.with_suffix("")).as_posix()


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
    """The files named like ``pattern`` (a glob of a file name) anywhere under ``splits`` when given (HMDB51's
    ``testTrainMulti_7030_splits/`` below the folder given, say), else anywhere under ``raw``; hidden ones left
    out, sorted."""
    return [p for p in raw_files(splits if splits is not None else raw) if p.match(pattern)]
