"""Decode KTH videos to small grayscale frames: a PNG tree, an in-memory cache and an index.

    python -m src.data prepare --raw DIR --out data/kth [--size 64] [--workers N] [--no-png]

Every KTH-named ``.avi``/``.mp4`` anywhere under ``DIR`` is decoded with PyAV, converted
to grayscale and resized (bilinear, antialiased) to ``size x size``. The output::

    out/<action>/<video_id>/image-0001.png ...  grayscale PNGs, 1-based (the course layout)
    out/cache/<video_id>.npy                    uint8 (T, size, size): every frame of the video
    out/index.json                              one entry per video, written last

``index.json`` is ``{"version": 1, "size", "synthetic", ["synthetic_preset",] "videos": [{"video_id", "person",
"action", "label", "scenario", "num_frames", "sequences": [[start, end], ...]}, ...]}``,
sorted by video id; ``sequences`` are the 0-based, end-exclusive ranges of
``00sequences.txt`` clipped to the video, or ``[[0, num_frames]]`` for a video it lacks.

Every file is written under a temporary name and renamed, so a video whose cache (and
PNG folder) exists is complete, and a rerun skips it.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import av
import numpy as np
from PIL import Image
from tqdm import tqdm

from src.kth import ACTIONS, parse_sequences, parse_video_name

INDEX_VERSION = 1
VIDEO_SUFFIXES = (".avi", ".mp4")
KNOWN_FILES = ("00sequences.txt", "synthetic.json")  # expected in a raw folder besides the videos
HOW_TO_GET_DATA = ("get KTH with 'python -m src.data download --root data/kth_raw', or make the "
                   "synthetic twin with 'python -m src.synthetic --out data/synth_raw'")


def decode_video(path: str | Path) -> np.ndarray:
    """Every frame of the first video stream of ``path``, grayscale: uint8 (T, H, W)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="gray") for frame in container.decode(stream)]
    if not frames:
        raise ValueError(f"{path}: no frame could be decoded")
    return np.stack(frames)


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (T, H, W) -> uint8 (T, size, size), bilinear with antialiasing (PIL)."""
    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.BILINEAR))
                     for f in frames])


def png_path(out: Path, info: dict, frame_index: int) -> Path:
    """``out/<action>/<video_id>/image-0001.png`` for the 0-based ``frame_index``."""
    return out / info["action"] / info["video_id"] / f"image-{frame_index + 1:04d}.png"


def _done_num_frames(out: Path, info: dict, size: int, write_png: bool) -> int | None:
    """The frame count of a video already prepared at ``size`` in ``out``, else None."""
    cache = out / "cache" / f"{info['video_id']}.npy"
    if not cache.is_file():
        return None
    try:
        shape = np.load(cache, mmap_mode="r").shape
    except (ValueError, OSError):
        return None
    if len(shape) != 3 or shape[1:] != (size, size):
        return None
    if write_png:
        folder = out / info["action"] / info["video_id"]
        if not folder.is_dir() or len(list(folder.glob("image-*.png"))) != shape[0]:
            return None
    return shape[0]


def prepare_video(path: Path, out: Path, size: int, write_png: bool) -> dict:
    """Prepare one video (or skip it when done). Returns ``{'video_id', 'status', 'num_frames'}``
    with status 'prepared' or 'skipped', or ``{'status': 'failed', 'error': str}``;
    it never raises, so a bad video cannot stop a pool."""
    info = parse_video_name(path.name)
    try:
        num_frames = _done_num_frames(out, info, size, write_png)
        if num_frames is not None:
            return {"video_id": info["video_id"], "status": "skipped", "num_frames": num_frames}
        frames = resize_frames(decode_video(path), size)  # (T, size, size)

        if write_png:
            folder = out / info["action"] / info["video_id"]
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{info['video_id']}.", suffix=".tmp", dir=folder.parent))
            try:
                for t, frame in enumerate(frames):
                    Image.fromarray(frame).save(tmp / png_path(out, info, t).name)
                if folder.exists():  # left by a run at another size
                    shutil.rmtree(folder)
                os.replace(tmp, folder)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise

        cache = out / "cache" / f"{info['video_id']}.npy"
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp_cache = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
        try:
            with open(tmp_cache, "wb") as f:
                np.save(f, frames)
            os.replace(tmp_cache, cache)
        except BaseException:
            tmp_cache.unlink(missing_ok=True)
            raise
        return {"video_id": info["video_id"], "status": "prepared", "num_frames": len(frames)}
    except Exception as e:  # a corrupt or unreadable video: reported by the caller, the rest go on
        return {"video_id": info["video_id"], "status": "failed", "error": f"{type(e).__name__}: {e}"}


def find_videos(raw: Path) -> list[Path]:
    """The KTH-named videos under ``raw`` (one per video id, sorted), noting what is left out."""
    if not raw.is_dir():
        raise FileNotFoundError(f"{raw}: no such folder; {HOW_TO_GET_DATA}")
    files = sorted(p for p in raw.rglob("*") if p.is_file() and not p.name.startswith("."))
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    stray = [p for p in files if p.suffix.lower() not in VIDEO_SUFFIXES and p.name not in KNOWN_FILES]
    if stray:
        print(f"note: {raw}: ignored {len(stray)} non-video file(s), e.g. {stray[0].relative_to(raw)}",
              file=sys.stderr)
    unnamed = [p for p in videos if parse_video_name(p.name) is None]
    if unnamed:
        print(f"warning: {raw}: skipped {len(unnamed)} video(s) without a KTH name "
              f"(personXX_<action>_dY_uncomp.avi): {', '.join(str(p.relative_to(raw)) for p in unnamed[:5])}"
              f"{' ...' if len(unnamed) > 5 else ''}", file=sys.stderr)
    by_id: dict[str, Path] = {}
    for p in videos:
        info = parse_video_name(p.name)
        if info is None:
            continue
        if info["video_id"] in by_id:
            print(f"warning: {p}: a second file for {info['video_id']}, ignored; "
                  f"using {by_id[info['video_id']]}", file=sys.stderr)
            continue
        by_id[info["video_id"]] = p
    if not by_id:
        raise FileNotFoundError(f"{raw}: holds no KTH-named .avi/.mp4 video; {HOW_TO_GET_DATA}")
    present = {parse_video_name(p.name)["action"] for p in by_id.values()}
    if missing := [a for a in ACTIONS if a not in present]:
        print(f"warning: {raw}: no video of {', '.join(missing)} (missing class folder?); only "
              f"{len(present)} of the {len(ACTIONS)} actions will be prepared; {HOW_TO_GET_DATA}",
              file=sys.stderr)
    return [by_id[v] for v in sorted(by_id)]


def find_sequences(raw: Path) -> dict[str, list[tuple[int, int]]]:
    """The annotations of the first ``00sequences.txt`` under ``raw``, or {} when there is none."""
    found = sorted(raw.rglob("00sequences.txt"))
    if not found:
        print(f"warning: {raw}: no 00sequences.txt; every video gets one sequence spanning it",
              file=sys.stderr)
        return {}
    return parse_sequences(found[0])


def clip_sequences(ranges: list[tuple[int, int]], num_frames: int) -> list[list[int]]:
    """Ranges clipped to ``[0, num_frames]``, empty ones dropped."""
    clipped = [[max(0, min(a, num_frames)), min(b, num_frames)] for a, b in ranges]
    return [[a, b] for a, b in clipped if a < b]


def prepare(raw: str | Path, out: str | Path, size: int = 64, workers: int | None = None,
            write_png: bool = True) -> dict:
    """Prepare every KTH video under ``raw`` into ``out`` (see the module docstring).

    ``workers`` processes decode in parallel (default: all cores; 1 runs in this process).
    Returns the index written to ``out/index.json``.
    """
    raw, out = Path(raw), Path(out)
    videos = find_videos(raw)
    sequences = find_sequences(raw)
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob(".*.tmp"), *out.glob("*/.*.tmp")]:  # left by a killed run
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    workers = max(1, min(workers or os.cpu_count() or 1, len(videos)))

    results, bar = {}, tqdm(total=len(videos), desc=f"prepare {out}", unit="video")
    if workers == 1:
        for path in videos:
            results[path] = prepare_video(path, out, size, write_png)
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(prepare_video, path, out, size, write_png): path for path in videos}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                bar.update()
    bar.close()

    entries, failed, unannotated = [], [], 0
    for path in videos:
        result = results[path]
        if result["status"] == "failed":
            failed.append(path)
            print(f"error: {path}: cannot be decoded ({result['error']}), skipped; "
                  f"replace the file (e.g. download it again) and rerun", file=sys.stderr)
            continue
        info = parse_video_name(path.name)
        ranges = clip_sequences(sequences.get(info["video_id"], []), result["num_frames"])
        if not ranges:
            unannotated += 1
            ranges = [[0, result["num_frames"]]]
        entries.append({**info, "num_frames": result["num_frames"], "sequences": ranges})

    synthetic = (raw / "synthetic.json").is_file()
    preset = {"synthetic_preset": json.loads((raw / "synthetic.json").read_text()).get("preset")} if synthetic else {}
    index = {"version": INDEX_VERSION, "size": size, "synthetic": synthetic, **preset,
             "videos": sorted(entries, key=lambda e: e["video_id"])}
    index_path = out / "index.json"
    tmp_index = index_path.with_name(f".index.json.{os.getpid()}.tmp")
    tmp_index.write_text(json.dumps(index, indent=1))
    os.replace(tmp_index, index_path)

    counts = {s: sum(r["status"] == s for r in results.values()) for s in ("prepared", "skipped", "failed")}
    print(f"{out}: prepared {counts['prepared']}, skipped {counts['skipped']} (already done), "
          f"failed {counts['failed']}; {len(entries)} videos, {sum(e['num_frames'] for e in entries)} frames "
          f"in index.json; {unannotated} without annotation (one sequence spanning the video)")
    return index
