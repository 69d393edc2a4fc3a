"""Decode KTH videos to small grayscale frames: a PNG tree, an in-memory cache and an index.

    python -m src.data prepare --raw DIR --out data/kth [--size 64] [--workers N] [--no-png] [--allow-failures]

Every KTH-named ``.avi``/``.mp4`` anywhere under ``DIR`` is decoded with PyAV, converted
to grayscale and resized (bilinear, antialiased) to ``size x size``. The output::

    out/<action>/<video_id>/image-0001.png ...  grayscale PNGs, 1-based (the course layout)
    out/cache/<video_id>.npy                    uint8 (T, size, size): every frame of the video
    out/index.json                              one entry per video, written last

``index.json`` is ``{"version": 1, "size", "synthetic", ["synthetic_preset",] "videos": [{"video_id", "person",
"action", "label", "scenario", "num_frames", "sequences": [[start, end], ...]}, ...], "failed": [{"video_id",
"file", "error"}, ...]}``, sorted by video id; ``sequences`` are the 0-based, end-exclusive ranges of
``00sequences.txt`` clipped to the video, or ``[[0, num_frames]]`` for a video it lacks; ``failed``
lists the videos that could not be decoded (only ever non-empty with ``--allow-failures``).

The arguments are checked before any work. Videos are decoded into a temporary folder in
``out`` and moved into place when every video was decoded (or, with ``--allow-failures``, at
least one), then ``index.json`` is written. A run that fails, or is killed, leaves ``out`` as
it was (a killed run's temporary folder is removed by the next run); a rerun skips the videos
already prepared at the same size.
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

from src.data.sources.kth import ACTIONS, parse_sequences, parse_video_name
from src.files import atomic_write

INDEX_VERSION = 1
VIDEO_SUFFIXES = (".avi", ".mp4")
KNOWN_FILES = ("00sequences.txt", "synthetic.json")  # expected in a raw folder besides the videos
MAX_SIZE = 1024  # frame side in pixels: KTH's frames are 160x120, a larger side only upsamples
HOW_TO_GET_DATA = ("get KTH with 'python -m src.data download --root data/kth_raw', or make the "
                   "synthetic twin with 'python -m src.data.synthetic --out data/synth_raw'")


class PrepareError(ValueError):
    """No video could be prepared, or some could not (without ``allow_failures``); one line."""


def decode_video(path: str | Path, channels: int = 1) -> np.ndarray:
    """Every frame of the first video stream of ``path``: uint8 (T, H, W) grayscale for ``channels`` 1,
    (T, H, W, 3) RGB for 3."""
    if channels not in (1, 3):
        raise ValueError(f"decode_video: channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="gray" if channels == 1 else "rgb24") for frame in container.decode(stream)]
    if not frames:
        raise ValueError(f"{path}: no frame could be decoded")
    return np.stack(frames)


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (T, H, W) -> uint8 (T, size, size), or RGB (T, H, W, 3) -> (T, size, size, 3); bilinear with
    antialiasing (PIL)."""
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
    except (ValueError, OSError, EOFError):
        return None
    if len(shape) != 3 or shape[1:] != (size, size):
        return None
    if write_png:
        folder = out / info["action"] / info["video_id"]
        if not folder.is_dir() or len(list(folder.glob("image-*.png"))) != shape[0]:
            return None
    return shape[0]


def prepare_video(path: Path, out: Path, staging: Path, size: int, write_png: bool) -> dict:
    """Prepare one video into ``staging`` (same layout as ``out``), or skip it when ``out`` holds it
    done. Returns ``{'video_id', 'status', 'num_frames'}`` with status 'prepared' or 'skipped', or
    ``{'status': 'failed', 'error': str}`` when the video cannot be decoded (a bad video cannot stop a
    pool); an error writing the frames (disk full, no permission) is raised."""
    info = parse_video_name(path.name)
    num_frames = _done_num_frames(out, info, size, write_png)
    if num_frames is not None:
        return {"video_id": info["video_id"], "status": "skipped", "num_frames": num_frames}
    try:
        frames = resize_frames(decode_video(path), size)  # (T, size, size)
    except Exception as e:  # a corrupt or unreadable video: reported by the caller, the rest go on
        return {"video_id": info["video_id"], "status": "failed", "error": f"{type(e).__name__}: {e}"}
    if write_png:
        folder = staging / info["action"] / info["video_id"]
        folder.mkdir(parents=True)
        for t, frame in enumerate(frames):
            Image.fromarray(frame).save(png_path(staging, info, t))
    (staging / "cache").mkdir(exist_ok=True)
    np.save(staging / "cache" / f"{info['video_id']}.npy", frames)
    return {"video_id": info["video_id"], "status": "prepared", "num_frames": len(frames)}


def find_videos(raw: Path, notes: list[str]) -> list[Path]:
    """The KTH-named videos under ``raw`` (one per video id, sorted); what is left out is added to
    ``notes`` (lines for stderr, printed by the caller once every argument has been checked)."""
    if raw.exists() and not raw.is_dir():
        raise FileNotFoundError(f"{raw}: a file, not a folder of videos; {HOW_TO_GET_DATA}")
    if not raw.is_dir():
        raise FileNotFoundError(f"{raw}: no such folder; {HOW_TO_GET_DATA}")
    files = sorted(p for p in raw.rglob("*") if p.is_file() and not p.name.startswith("."))
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    stray = [p for p in files if p.suffix.lower() not in VIDEO_SUFFIXES and p.name not in KNOWN_FILES]
    if stray:
        notes.append(f"note: {raw}: ignored {len(stray)} non-video file(s), e.g. {stray[0].relative_to(raw)}")
    unnamed = [p for p in videos if parse_video_name(p.name) is None]
    if unnamed:
        notes.append(f"warning: {raw}: skipped {len(unnamed)} video(s) without a KTH name "
                     f"(personXX_<action>_dY_uncomp.avi): {', '.join(str(p.relative_to(raw)) for p in unnamed[:5])}"
                     f"{' ...' if len(unnamed) > 5 else ''}")
    by_id: dict[str, Path] = {}
    for p in videos:
        info = parse_video_name(p.name)
        if info is None:
            continue
        if info["video_id"] in by_id:
            notes.append(f"warning: {p}: a second file for {info['video_id']}, ignored; "
                         f"using {by_id[info['video_id']]}")
            continue
        by_id[info["video_id"]] = p
    if not by_id:
        unnamed_hint = (f" ({len(unnamed)} without a KTH name, e.g. {unnamed[0].relative_to(raw)}: KTH names them "
                        f"personXX_<action>_dY_uncomp.avi)" if unnamed else "")
        raise FileNotFoundError(f"{raw}: holds no KTH-named .avi/.mp4 video{unnamed_hint}; {HOW_TO_GET_DATA}")
    present = {parse_video_name(p.name)["action"] for p in by_id.values()}
    if missing := [a for a in ACTIONS if a not in present]:
        notes.append(f"warning: {raw}: no video of {', '.join(missing)} (missing class folder?); only "
                     f"{len(present)} of the {len(ACTIONS)} actions will be prepared; {HOW_TO_GET_DATA}")
    return [by_id[v] for v in sorted(by_id)]


def find_sequences(raw: Path, notes: list[str]) -> dict[str, list[tuple[int, int]]]:
    """The annotations of the first ``00sequences.txt`` under ``raw``, or {} when there is none (then
    a line is added to ``notes``)."""
    found = sorted(raw.rglob("00sequences.txt"))
    if not found:
        notes.append(f"warning: {raw}: no 00sequences.txt; every video gets one sequence spanning it")
        return {}
    try:
        return parse_sequences(found[0])
    except (OSError, ValueError) as e:  # a malformed range ('1-a', '5') does not name the file by itself
        message = str(e)
        raise ValueError(message if message.startswith(str(found[0])) else
                         f"{found[0]}: not a KTH 00sequences.txt ({message}); fix or delete it") from None


def clip_sequences(ranges: list[tuple[int, int]], num_frames: int) -> list[list[int]]:
    """Ranges clipped to ``[0, num_frames]``, empty ones dropped."""
    clipped = [[max(0, min(a, num_frames)), min(b, num_frames)] for a, b in ranges]
    return [[a, b] for a, b in clipped if a < b]


def check_out(out: Path) -> None:
    """Refuse, before any work, an ``out`` that cannot be a folder this process writes in."""
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        where = "is a file" if existing == out else f"lies under the file {existing}"
        raise ValueError(f"{out}: {where}, not a folder; choose another --out")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{out}: {existing} is not writable; choose another --out or fix its permissions")


def _listing(paths: list[Path], shown: int = 5) -> str:
    """``'a.avi, b.avi, ... (3 more)'``: the first ``shown`` paths."""
    more = f", ... ({len(paths) - shown} more)" if len(paths) > shown else ""
    return ", ".join(map(str, paths[:shown])) + more


def _move_into_place(staging: Path, out: Path, info: dict, write_png: bool) -> None:
    """Rename one staged video (its cache file and PNG folder) to its place in ``out``."""
    if write_png:
        folder = out / info["action"] / info["video_id"]
        folder.parent.mkdir(exist_ok=True)
        if folder.exists():  # left by a run at another size
            shutil.rmtree(folder)
        os.replace(staging / info["action"] / info["video_id"], folder)
    (out / "cache").mkdir(exist_ok=True)
    os.replace(staging / "cache" / f"{info['video_id']}.npy", out / "cache" / f"{info['video_id']}.npy")


def prepare(raw: str | Path, out: str | Path, size: int = 64, workers: int | None = None,
            write_png: bool = True, allow_failures: bool = False) -> dict:
    """Prepare every KTH video under ``raw`` into ``out`` (see the module docstring).

    ``workers`` processes decode in parallel (default: all cores; 1 runs in this process).
    Returns the index written to ``out/index.json``.

    The arguments are checked before any work (ValueError, or FileNotFoundError for a ``raw``
    without videos). Videos are decoded into a temporary folder in ``out`` and moved into place
    only when the run succeeds, so a failed run leaves ``out`` as it was. When no video could
    be prepared, or some could not and ``allow_failures`` is False, :class:`PrepareError` is
    raised (each failed video was named on stderr); with ``allow_failures`` the others are
    prepared and the index lists the failed ones under ``failed``.
    """
    raw, out = Path(raw), Path(out)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_SIZE:
        raise ValueError(f"--size: {size!r} is not a frame side; use 1 to {MAX_SIZE} pixels (KTH's frames are "
                         f"160x120; default 64)")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"--workers: {workers!r} is not a number of processes; use 1 or more, or leave it out "
                         f"for one per core")
    check_out(out)
    notes = []
    videos = find_videos(raw, notes)
    sequences = find_sequences(raw, notes)
    for note in notes:
        print(note, file=sys.stderr)
    made = [p for p in (out, *out.parents) if not p.exists()]  # the folders this run makes, innermost first
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob(".*.tmp"), *out.glob("*/.*.tmp")]:  # left by a killed run
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    workers = min(workers or os.cpu_count() or 1, len(videos))
    staging = Path(tempfile.mkdtemp(prefix=".prepare.", suffix=".tmp", dir=out))
    written = False
    try:
        results, bar = {}, tqdm(total=len(videos), desc=f"prepare {out}", unit="video")
        if workers == 1:
            for path in videos:
                results[path] = prepare_video(path, out, staging, size, write_png)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(prepare_video, path, out, staging, size, write_png): path
                           for path in videos}
                try:
                    for future in as_completed(futures):
                        results[futures[future]] = future.result()
                        bar.update()
                except BaseException:  # a write error, or Ctrl-C: start no other video
                    pool.shutdown(cancel_futures=True)
                    raise
        bar.close()

        failed = [path for path in videos if results[path]["status"] == "failed"]
        for path in failed:
            print(f"failed: {path}: cannot be decoded ({results[path]['error']})", file=sys.stderr)
        if len(failed) == len(videos):
            raise PrepareError(f"{raw}: none of the {len(videos)} videos could be decoded ({_listing(failed)}); "
                               f"nothing was written to {out}; replace the files (e.g. download them again) "
                               f"and rerun")
        if failed and not allow_failures:
            raise PrepareError(f"{raw}: {len(failed)} of {len(videos)} videos could not be decoded "
                               f"({_listing(failed)}); nothing was written to {out}; replace them (e.g. download "
                               f"them again) and rerun, or pass --allow-failures to prepare the other "
                               f"{len(videos) - len(failed)}")
        if failed:
            print(f"warning: {raw}: {len(failed)} of {len(videos)} videos could not be decoded and are left out "
                  f"of {out / 'index.json'} (its 'failed' list): {_listing(failed)}", file=sys.stderr)

        entries, unannotated = [], 0
        for path in videos:
            result = results[path]
            if result["status"] == "failed":
                continue
            info = parse_video_name(path.name)
            if result["status"] == "prepared":
                _move_into_place(staging, out, info, write_png)
                written = True
            ranges = clip_sequences(sequences.get(info["video_id"], []), result["num_frames"])
            if not ranges:
                unannotated += 1
                ranges = [[0, result["num_frames"]]]
            entries.append({**info, "num_frames": result["num_frames"], "sequences": ranges})

        synthetic = (raw / "synthetic.json").is_file()
        preset = ({"synthetic_preset": json.loads((raw / "synthetic.json").read_text()).get("preset")}
                  if synthetic else {})
        index = {"version": INDEX_VERSION, "size": size, "synthetic": synthetic, **preset,
                 "videos": sorted(entries, key=lambda e: e["video_id"]),
                 "failed": [{"video_id": results[path]["video_id"], "file": str(path),
                             "error": results[path]["error"]} for path in failed]}
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

    counts = {s: sum(r["status"] == s for r in results.values()) for s in ("prepared", "skipped", "failed")}
    print(f"{out}: prepared {counts['prepared']}, skipped {counts['skipped']} (already done), "
          f"failed {counts['failed']}; {len(entries)} videos, {sum(e['num_frames'] for e in entries)} frames "
          f"in index.json; {unannotated} without annotation (one sequence spanning the video)")
    return index
