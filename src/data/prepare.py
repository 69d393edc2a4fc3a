"""Decode the videos of a raw folder to small frames: an in-memory cache, an index and a PNG tree.

    python -m src.data prepare --raw DIR --out data/kth [--layout auto|kth|folder|ucf101|hmdb51] [--splits DIR]
                               [--channels 1|3] [--size 64] [--workers N] [--no-png] [--allow-failures]

The videos of ``DIR`` (video files, and frame folders: a folder of images is one video) are listed by
their layout's reader (:mod:`src.data.sources`: KTH, a folder of class subfolders, UCF101, HMDB51;
``--layout auto`` tells which), decoded with PyAV frame by frame, each frame made grayscale (``--channels
1``, KTH's) or colour (``--channels 3``, RGB) and resized (bilinear, antialiased) to ``size x size`` as it
is decoded (:mod:`src.data.decode`: memory O(frames x size x size)). A listing of fewer than 2 classes is
refused before any work (:func:`check_classes`). The output::

    out/cache/<video_id>.npy           uint8 (T, size, size), or (T, size, size, 3): every frame of the video
    out/index.json                     the classes, and one entry per video, written last
    out/<class>/<video_id>/image-0001.png ...   KTH: the course's PNG tree (1-based), unless --no-png
    out/<video_id>/image-0001.png ...           the other layouts (their video_id starts with the class folder)

``index.json`` (version 2)::

    {"version": 2, "source": "kth" | "folder" | "ucf101" | "hmdb51", "size", "channels", "synthetic",
     ["synthetic_preset",] "classes": [...], "group_kind": str, "folds": ["1", ...],
     "videos": [{"video_id", "file", "label", "class", "group", "num_frames", "sequences": [[start, end], ...],
                 ["split": {fold: "train" | "test"},] [KTH: "person", "action", "scenario"]}, ...],
     "failed": [{"video_id", "file", "error"}, ...]}

sorted by video id: ``label`` indexes ``classes``; ``group`` is what splits keep together (KTH: the
person); ``file`` is the raw file under ``DIR``; ``sequences`` are the annotated ranges (KTH's
``00sequences.txt``), 0-based and end-exclusive, clipped to the video, or ``[[0, num_frames]]``;
``split`` is the video's side in each fold the dataset ships (a video unused by a fold is absent);
``failed`` lists the videos that could not be decoded (only ever non-empty with ``--allow-failures``; a
class whose every video failed is then dropped from ``classes``, KTH's actions aside:
:func:`drop_failed_classes`).
:func:`src.data.index.read_index` reads it.

The arguments are checked before any work. Videos are decoded into a temporary folder in
``out`` and moved into place when every video was decoded (or, with ``--allow-failures``, at
least one), then ``index.json`` is written. A run that fails, or is killed, leaves ``out`` as
it was (a killed run's temporary folder is removed by the next run); a rerun skips the videos
already prepared at the same size and channels.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from src.data.decode import CHANNELS, check_channels, iter_frames, read_small_frames, small_frame
from src.data.sources import Listing, VideoRecord, check_layout, scan
from src.files import atomic_write, check_output_file

logger = logging.getLogger(__name__)

INDEX_VERSION = 2
MAX_SIZE = 1024  # frame side in pixels: KTH's frames are 160x120, a larger side only upsamples


class PrepareError(ValueError):
    """No video could be prepared, or some could not (without ``allow_failures``); one line."""


def decode_video(path: str | Path, channels: int = 1) -> np.ndarray:
    """Every frame of the first video stream of ``path`` at full size: uint8 (T, H, W) grayscale for ``channels``
    1, (T, H, W, 3) RGB for 3. Memory O(T x H x W): prepare reads each frame made small instead
    (:func:`src.data.decode.read_small_frames`)."""
    check_channels(channels, "decode_video")
    frames = list(iter_frames(path, channels))
    if not frames:
        raise ValueError(f"{path}: no frame could be decoded")
    return np.stack(frames)


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (T, H, W) or (T, H, W, 3) -> (T, size, size) or (T, size, size, 3), bilinear with antialiasing (PIL)."""
    return np.stack([small_frame(f, size) for f in frames])


def png_folder(source: str, record: VideoRecord) -> str:
    """Where a video's PNGs go under ``out``: ``<class>/<video_id>`` for KTH (the course's tree),
    ``<video_id>`` for the other layouts (their id starts with the class folder)."""
    return f"{record.class_name}/{record.video_id}" if source == "kth" else record.video_id


def _cache_path(root: Path, video_id: str) -> Path:
    return root / "cache" / f"{video_id}.npy"


def _frame_shape(size: int, channels: int) -> tuple[int, ...]:
    """The shape of one cached frame: (size, size) or (size, size, 3)."""
    return (size, size) if channels == 1 else (size, size, channels)


def _done_num_frames(out: Path, video_id: str, folder: str | None, size: int, channels: int) -> int | None:
    """The frame count of a video already prepared at ``size`` and ``channels`` in ``out`` (with its PNG
    ``folder`` when one is asked for), else None."""
    cache = _cache_path(out, video_id)
    if not cache.is_file():
        return None
    try:
        shape = np.load(cache, mmap_mode="r").shape
    except (ValueError, OSError, EOFError):
        return None
    if len(shape) < 3 or shape[1:] != _frame_shape(size, channels):
        return None
    if folder is not None and (not (out / folder).is_dir()
                               or len(list((out / folder).glob("image-*.png"))) != shape[0]):
        return None
    return shape[0]


def prepare_video(path: Path, video_id: str, folder: str | None, out: Path, staging: Path, size: int,
                  channels: int) -> dict:
    """Prepare one video into ``staging`` (same layout as ``out``): its cache file, and its PNGs in ``folder``
    (under ``out``) unless None; or skip it when ``out`` holds it done. Returns ``{'video_id', 'status',
    'num_frames'}`` with status 'prepared' or 'skipped', or ``{'status': 'failed', 'error': str}`` when the
    video cannot be decoded (a bad video cannot stop a pool); an error writing the frames (disk full, no
    permission) is raised."""
    num_frames = _done_num_frames(out, video_id, folder, size, channels)
    if num_frames is not None:
        return {"video_id": video_id, "status": "skipped", "num_frames": num_frames}
    if path.is_file() and path.stat().st_size == 0:  # the wording of src.predict
        return {"video_id": video_id, "status": "failed", "error": "empty file"}
    try:
        frames = read_small_frames(path, size, channels)  # (T, size, size[, 3]), each frame resized as decoded
    except Exception as e:  # a corrupt or unreadable video: reported by the caller, the rest go on
        return {"video_id": video_id, "status": "failed", "error": f"{type(e).__name__}: {e}"}
    if folder is not None:
        (staging / folder).mkdir(parents=True)
        for t, frame in enumerate(frames):
            Image.fromarray(frame).save(staging / folder / f"image-{t + 1:04d}.png")
    _cache_path(staging, video_id).parent.mkdir(parents=True, exist_ok=True)
    np.save(_cache_path(staging, video_id), frames)
    return {"video_id": video_id, "status": "prepared", "num_frames": len(frames)}


def clip_sequences(ranges: list[tuple[int, int]], num_frames: int) -> list[list[int]]:
    """Ranges clipped to ``[0, num_frames]``, empty ones dropped."""
    clipped = [[max(0, min(a, num_frames)), min(b, num_frames)] for a, b in ranges]
    return [[a, b] for a, b in clipped if a < b]


def _listing(paths: list[Path], shown: int = 5) -> str:
    """``'a.avi, b.avi, ... (3 more)'``: the first ``shown`` paths."""
    more = f", ... ({len(paths) - shown} more)" if len(paths) > shown else ""
    return ", ".join(map(str, paths[:shown])) + more


def _move_into_place(staging: Path, out: Path, video_id: str, folder: str | None) -> None:
    """Rename one staged video (its cache file and PNG folder) to its place in ``out``."""
    if folder is not None:
        (out / folder).parent.mkdir(parents=True, exist_ok=True)
        if (out / folder).exists():  # left by a run at another size
            shutil.rmtree(out / folder)
        os.replace(staging / folder, out / folder)
    _cache_path(out, video_id).parent.mkdir(parents=True, exist_ok=True)
    os.replace(_cache_path(staging, video_id), _cache_path(out, video_id))


def index_entry(raw: Path, listing: Listing, record: VideoRecord, num_frames: int) -> tuple[dict, bool]:
    """The ``index.json`` entry of a prepared video, and whether it has annotated sequences."""
    ranges = clip_sequences(record.sequences or [], num_frames)
    entry = {"video_id": record.video_id, "file": record.path.relative_to(raw).as_posix(),
             "label": listing.classes.index(record.class_name), "class": record.class_name, "group": record.group,
             **record.extra, "num_frames": num_frames, "sequences": ranges or [[0, num_frames]]}
    if listing.folds:
        entry["split"] = dict(record.split)
    return entry, bool(ranges)


def check_arguments(out: Path, size: int, workers: int | None, layout: str, channels: int) -> None:
    """Refuse, before any work, the arguments of :func:`prepare` that cannot work (ValueError, one line naming
    the argument)."""
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_SIZE:
        raise ValueError(f"size: {size!r} is not a frame side; use 1 to {MAX_SIZE} pixels (KTH's frames are "
                         f"160x120; default 64)")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers: {workers!r} is not a number of processes; use 1 or more, or None for one per "
                         f"core")
    check_layout(layout)
    if isinstance(channels, bool) or channels not in CHANNELS:
        raise ValueError(f"channels: {channels!r} is not a number of channels; use 1 (grayscale) or 3 (colour, RGB)")
    check_output_file(out / "index.json", "out")


def decode_all(jobs: dict[str, tuple], workers: int, out: Path) -> dict[str, dict]:
    """``{video_id: prepare_video(*job)}`` of every job, in ``workers`` processes (1: in this one), with a
    progress bar. A write error or Ctrl-C starts no other video and is raised."""
    results = {}
    with tqdm(total=len(jobs), desc=f"prepare {out}", unit="video") as bar:
        if workers == 1:
            for video_id, job in jobs.items():
                results[video_id] = prepare_video(*job)
                bar.update()
            return results
        # forkserver, not fork: a process that has run torch (a notebook, a test session) holds OpenMP threads, and a
        # forked child can wait forever on a lock one of them held
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
            futures = {pool.submit(prepare_video, *job): video_id for video_id, job in jobs.items()}
            try:
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.update()
            except BaseException:  # a write error, or Ctrl-C: start no other video
                pool.shutdown(cancel_futures=True)
                raise
    return results


def check_failures(raw: Path, out: Path, videos: list[VideoRecord], results: dict[str, dict],
                   allow_failures: bool) -> list[VideoRecord]:
    """The videos that could not be decoded, each reported (a warning); :class:`PrepareError` when that is all
    of them, or any of them without ``allow_failures``."""
    failed = [r for r in videos if results[r.video_id]["status"] == "failed"]
    failed_paths = [r.path for r in failed]
    for record in failed:
        logger.warning(f"failed: {record.path}: cannot be decoded ({results[record.video_id]['error']})")
    if len(failed) == len(videos):
        raise PrepareError(f"{raw}: none of the {len(videos)} videos could be decoded ({_listing(failed_paths)}); "
                           f"nothing was written to {out}; replace the files (e.g. download them again) "
                           f"and rerun")
    if failed and not allow_failures:
        raise PrepareError(f"{raw}: {len(failed)} of {len(videos)} videos could not be decoded "
                           f"({_listing(failed_paths)}); nothing was written to {out}; replace them (e.g. "
                           f"download them again) and rerun, or pass allow_failures=True to prepare the other "
                           f"{len(videos) - len(failed)}")
    if failed:
        logger.warning(f"warning: {raw}: {len(failed)} of {len(videos)} videos could not be decoded and are left out "
                       f"of {out / 'index.json'} (its 'failed' list): {_listing(failed_paths)}")
    return failed


def check_classes(raw: Path, listing: Listing, after: str = "") -> None:
    """:class:`PrepareError` when ``listing`` has fewer than 2 classes (a classifier of one class scores 100 %),
    one line saying what layout it was read as, and the argument to give (``after``: what left it so)."""
    if len(listing.classes) >= 2:
        return
    only = listing.classes[0] if listing.classes else None
    looked = {"folder": f"a class folder whose only class is {only!r} (layout folder)",
              "ucf101": f"UCF101 whose only class is {only!r}", "hmdb51": f"HMDB51 whose only class is {only!r}",
              "kth": "KTH"}[listing.source]
    nested = listing.source == "folder" and all(len(r.path.relative_to(raw).parts) > 2 for r in listing.videos)
    if after:
        hint = "replace the videos that failed, and rerun"
    elif nested:  # UCF-101/<Class>/<video>: the class folders are one level down
        hint = (f"if {raw / only} holds the class folders, read it as UCF101 or HMDB51 with its split files "
                f"(layout='ucf101' splits=DIR, the folder of trainlist01.txt; layout='hmdb51' splits=DIR), or give "
                f"raw='{raw / only}' (layout folder)")
    else:
        hint = "add a folder of videos for each other class (<class>/<video>)"
    raise PrepareError(f"{raw}: read as {looked}{after}; a dataset needs 2 or more classes (one class trains to "
                       f"100 %); {hint}")


def drop_failed_classes(raw: Path, out: Path, listing: Listing, failed: list[VideoRecord]) -> Listing:
    """``listing`` without the classes whose every video failed (``failed``), each named in a warning, as a
    class folder without videos is no class; :func:`check_classes` then. KTH keeps its six labels (a label is
    the action's place in :data:`src.data.sources.kth.ACTIONS`), with a warning naming the empty action."""
    failed_ids = {r.video_id for r in failed}
    present = {r.class_name for r in listing.videos if r.video_id not in failed_ids}
    emptied = [name for name in listing.classes if name not in present and name in {r.class_name for r in failed}]
    if not emptied:
        return listing
    one = len(emptied) == 1
    names = ", ".join(map(repr, emptied))
    if listing.source == "kth":
        logger.warning(f"warning: {raw}: every video of {names} failed to decode, so "
                       f"{'it has' if one else 'they have'} no video in {out / 'index.json'} (KTH keeps its six "
                       f"labels; a split refuses a class without a training video); replace the failed videos and "
                       f"rerun")
        return listing
    kept = dataclasses.replace(listing, classes=[name for name in listing.classes if name in present])
    names = f"{'class' if one else 'classes'} {names}"
    logger.warning(f"warning: {raw}: every video of {names} failed to decode: dropped, {out / 'index.json'} "
                   f"holds the other {len(kept.classes)} classes; replace {'its' if one else 'their'} videos and "
                   f"rerun to keep {'it' if one else 'them'}")
    check_classes(raw, kept, after=f" once {names} {'was' if one else 'were'} dropped (every video failed to "
                                   f"decode)")
    return kept


def build_index(raw: Path, listing: Listing, entries: list[dict], failed: list[VideoRecord],
                results: dict[str, dict], size: int, channels: int) -> dict:
    """The ``index.json`` of a prepared dataset (see the module docstring): ``entries`` (:func:`index_entry`)
    sorted by video id, the ``failed`` videos with their errors."""
    synthetic = (raw / "synthetic.json").is_file()
    preset = ({"synthetic_preset": json.loads((raw / "synthetic.json").read_text()).get("preset")}
              if synthetic else {})
    return {"version": INDEX_VERSION, "source": listing.source, "size": size, "channels": channels,
            "synthetic": synthetic, **preset, "classes": listing.classes, "group_kind": listing.group_kind,
            "folds": listing.folds, "videos": sorted(entries, key=lambda e: e["video_id"]),
            "failed": [{"video_id": r.video_id, "file": str(r.path), "error": results[r.video_id]["error"]}
                       for r in failed]}


def log_summary(out: Path, listing: Listing, results: dict[str, dict], entries: list[dict], unannotated: int) -> None:
    """Log (info) one line: how many videos were prepared, skipped and failed, and what ``index.json`` holds."""
    counts = {s: sum(r["status"] == s for r in results.values()) for s in ("prepared", "skipped", "failed")}
    logger.info(f"{out}: prepared {counts['prepared']}, skipped {counts['skipped']} (already done), "
                f"failed {counts['failed']}; {len(entries)} videos of {len(listing.classes)} classes "
                f"({listing.source}), {sum(e['num_frames'] for e in entries)} frames in index.json; {unannotated} "
                f"without annotation (one sequence spanning the video)")


def remove_stale_temporaries(out: Path) -> None:
    """Delete the temporary files and folders a killed run left in ``out``."""
    for stale in [*out.glob(".*.tmp"), *out.glob("*/.*.tmp")]:
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()


def prepare(raw: str | Path, out: str | Path, size: int = 64, workers: int | None = None,
            write_png: bool = True, allow_failures: bool = False, layout: str = "auto",
            splits: str | Path | None = None, channels: int = 1) -> dict:
    """Prepare every video of ``raw`` into ``out`` (see the module docstring).

    ``layout``: how ``raw`` is read (one of :data:`src.data.sources.LAYOUTS`; ``auto`` tells); ``splits``:
    the folder of the split files (ucf101, hmdb51) when they are not under ``raw``; ``channels``: 1
    (grayscale) or 3 (RGB). ``workers`` processes decode in parallel (default: all cores; 1 runs in this
    process). Returns the index written to ``out/index.json``.

    The arguments are checked before any work (ValueError naming the argument, or FileNotFoundError for a
    ``raw`` without videos). Videos are decoded into a temporary folder in ``out`` and moved into place
    only when the run succeeds, so a failed run leaves ``out`` as it was. When no video could
    be prepared, or some could not and ``allow_failures`` is False, :class:`PrepareError` is
    raised (each failed video was logged); with ``allow_failures`` the others are
    prepared and the index lists the failed ones under ``failed``. What was skipped and the summary are
    logged (``logging``, this module's logger: warnings and info).
    """
    raw, out = Path(raw), Path(out)
    check_arguments(out, size, workers, layout, channels)
    notes = []
    listing = scan(raw, layout, notes, splits=splits)
    for note in notes:
        logger.warning(note)
    check_classes(raw, listing)
    videos = listing.videos
    folders = {r.video_id: png_folder(listing.source, r) if write_png else None for r in videos}
    made = [p for p in (out, *out.parents) if not p.exists()]  # the folders this run makes, innermost first
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    staging = Path(tempfile.mkdtemp(prefix=".prepare.", suffix=".tmp", dir=out))
    written = False
    try:
        jobs = {r.video_id: (r.path, r.video_id, folders[r.video_id], out, staging, size, channels) for r in videos}
        results = decode_all(jobs, min(workers or os.cpu_count() or 1, len(videos)), out)
        failed = check_failures(raw, out, videos, results, allow_failures)
        listing = drop_failed_classes(raw, out, listing, failed)
        entries = []
        for record in videos:
            result = results[record.video_id]
            if result["status"] == "failed":
                continue
            if result["status"] == "prepared":
                _move_into_place(staging, out, record.video_id, folders[record.video_id])
                written = True
            entries.append(index_entry(raw, listing, record, result["num_frames"]))
        index = build_index(raw, listing, [entry for entry, _ in entries], failed, results, size, channels)
        with atomic_write(out / "index.json", "w") as f:
            f.write(json.dumps(index, indent=1))
        written = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not written:  # nothing new in out: remove the folders this run made
            for folder in made:
                try:
                    folder.rmdir()
                except OSError:
                    break

    log_summary(out, listing, results, index["videos"], unannotated=sum(not annotated for _, annotated in entries))
    return index
