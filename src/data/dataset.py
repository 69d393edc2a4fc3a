"""KTHActionDataset: clips of KTH-Actions videos, all held in memory.

It reads a prepared dataset (``python -m src.data prepare``)::

    root/index.json                   {"version": 1, "size": 64, "synthetic": bool, "videos": [
                                        {"video_id", "person", "action", "label", "scenario",
                                         "num_frames", "sequences": [[start, end], ...]}, ...]}
    root/cache/<video_id>.npy         uint8 [T, size, size]
    root/<action>/<video_id>/image-0001.png ...

or, without index.json, only the PNG tree (the course's layout; then a video's only
"subsequence" is the whole video). Every frame of the split's videos is loaded once at
init, so ``__getitem__`` never touches a file. Before that, ``index.json`` and the header of
every cache file are checked (:func:`src.data.prepared.read_index`; dtype uint8, ``[num_frames, size,
size]`` as the index says): a broken or disagreeing file stops the load in one line naming it.

Clips: which frames make one. This module is their one home; the transform of
:mod:`src.data.augment` only changes how the chosen frames look. A clip is
``max_frames`` frames taken every ``slicing_step``-th (:class:`TemporalSampling`), all
inside one annotated subsequence of the video (``use_sequences``) or anywhere in it.

- Random clips (``random_clips=True``, training): for each item the dataset picks one
  subsequence of the video (weighted by its number of possible starts, so every clip is
  equally likely) and draws the start uniformly among the starts that fit in it.
- Fixed clips (evaluation): ``clips_per_video`` evenly spaced windows over the usable
  frames of each video (:func:`evenly_spaced`); the same item always gives the same frames.
- Subsequences shorter than a clip are used only when a video has no longer one; those
  clips are padded by repeating the last frame taken, and counted in ``num_padded``.

The course's call. ``slicing_step``, ``max_frames`` and ``random_clips`` are the
dataset's arguments; the course instead gives them to the transform
(``transform=get_train_transforms(slicing_step=2)``), which carries them as plain
attributes of the same names (:class:`src.data.augment.ClipTransform`). The dataset
reads them from its transform once, at init: ``slicing_step`` and ``max_frames`` when
the transform gives them (a different value from the dataset's own is an error),
``random_clips`` when the dataset is not told (``get_train_transforms``: random clips,
``get_test_transforms``: fixed ones; no transform: fixed). Both forms give the same clips
and the same random draws.

Example (the course's call)::

    dataset = KTHActionDataset(root_dir='data/kth', split='train',
                               transform=get_train_transforms(slicing_step=2),
                               max_frames=10, img_size=(64, 64))
    frames, label = dataset[0]   # float32 [10, 1, 64, 64] in [0, 1], int in 0..5

and the same, said on the data side::

    dataset = KTHActionDataset(root_dir='data/kth', split='train', slicing_step=2, random_clips=True,
                               transform=get_train_transforms(), max_frames=10, img_size=(64, 64))
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2
from tqdm import tqdm

from src.data.prepared import SYNTHETIC_RAW_ROOT, prepare_command, read_index
from src.data.sources.kth import ACTIONS, DEFAULT_VAL_PERSONS, TEST_PERSONS, TRAIN_PERSONS, parse_video_name

SPLITS = ("train", "val", "test", "trainval")
"""'train': persons 1-16 minus the validation persons; 'val': the validation persons;
'test': persons 17-25; 'trainval': persons 1-16 (the course's training split)."""


def split_persons(split: str, val_persons=DEFAULT_VAL_PERSONS) -> tuple[int, ...]:
    """The persons of a split, e.g. ``split_persons('val') -> (15, 16)``."""
    val_persons = tuple(sorted(val_persons))
    if not set(val_persons) <= set(TRAIN_PERSONS):
        raise ValueError(f"val_persons {list(val_persons)} must be training persons (1-16)")
    persons = {
        "train": tuple(p for p in TRAIN_PERSONS if p not in val_persons),
        "val": val_persons,
        "test": TEST_PERSONS,
        "trainval": TRAIN_PERSONS,
    }
    if split not in persons:
        raise ValueError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    return persons[split]


class TemporalSampling:
    """Which frames of a window make a clip: ``num_frames`` frames, every ``step``-th.

    Args:
        step: distance between two frames taken (the config's ``slicing_step``).
        num_frames: frames per clip (the dataset's ``max_frames``).
        random_start: draw the first frame uniformly among the starts whose clip fits in
            the window (random clips); otherwise start at the window's first frame.

    ``sampling(window)``: uint8 ``[T_window, ...]`` -> ``[num_frames, ...]``; the window is
    not modified. A window shorter than :attr:`span` starts at its first frame and is
    padded by repeating the last frame taken. :meth:`offsets` is the same rule as index
    arithmetic, for whole batches (:class:`src.data.batches.ClipBatches`).
    """

    def __init__(self, step: int, num_frames: int, random_start: bool = False):
        if step < 1:
            raise ValueError(f"slicing_step must be >= 1, got {step}")
        if num_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {num_frames}")
        self.step, self.num_frames, self.random_start = int(step), int(num_frames), bool(random_start)

    @property
    def span(self) -> int:
        """Frames of the video one clip covers: ``(num_frames - 1) * step + 1``."""
        return (self.num_frames - 1) * self.step + 1

    def offsets(self, window_len: torch.Tensor) -> torch.Tensor:
        """The frames a clip takes from the start of windows of ``window_len`` frames (int64 (B,)
        -> int64 ``(B, num_frames)``): ``step * k``, the last frame taken repeated where the
        window is shorter than :attr:`span`."""
        k = torch.arange(self.num_frames)
        return self.step * torch.minimum(k, ((window_len - 1) // self.step)[:, None])

    def __call__(self, window: torch.Tensor) -> torch.Tensor:
        if window.shape[0] == 0:
            raise ValueError("TemporalSampling: got an empty window (0 frames)")
        start, length = 0, window.shape[0]
        if self.random_start and length > self.span:
            start = int(torch.randint(0, length - self.span + 1, ()))
        window_len = torch.tensor([min(length - start, self.span)])
        return window[start + self.offsets(window_len)[0]]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(step={self.step}, num_frames={self.num_frames}, "
                f"random_start={self.random_start})")


def evenly_spaced(num_starts: int, count: int) -> list[int]:
    """``count`` positions among ``num_starts`` possible starts, evenly spaced and centred
    (one position takes the middle): ``(2k + 1) * num_starts // (2 * count)``, ``k < count``.
    Where the fixed clips of a video start, counting its usable starts in order."""
    return [(2 * k + 1) * num_starts // (2 * count) for k in range(count)]


def clip_request(transform, slicing_step: int | None, max_frames: int,
                 random_clips: bool | None) -> tuple[int, bool]:
    """The dataset's ``(slicing_step, random_clips)`` from its own arguments and those its
    transform carries (the course's call; see the module docstring). Raises ValueError when
    the two disagree on the step or the frames per clip."""
    carried_step = getattr(transform, "slicing_step", None)
    if slicing_step is None:
        slicing_step = 1 if carried_step is None else carried_step
    elif carried_step is not None and carried_step != slicing_step:
        raise ValueError(f"the transform asks for slicing_step={carried_step} but the dataset got "
                         f"slicing_step={slicing_step}: give one of them, or the same number")
    carried_frames = getattr(transform, "max_frames", None)
    if carried_frames is not None and carried_frames != max_frames:
        raise ValueError(f"the transform asks for clips of {carried_frames} frames but max_frames={max_frames}: "
                         f"give the transform max_frames=None or the same number")
    if random_clips is None:
        random_clips = bool(getattr(transform, "random_clips", False))
    return slicing_step, random_clips


def _missing_root_message(root: Path, what: str) -> str:
    return (f"{root}: {what}. Get the real KTH with 'python -m src.data download --root data/kth_raw' "
            f"then 'python -m src.data prepare --raw data/kth_raw --out {root}', or make the synthetic twin "
            f"with 'python -m src.data.synthetic --out {SYNTHETIC_RAW_ROOT}' then "
            f"'python -m src.data prepare --raw {SYNTHETIC_RAW_ROOT} --out {root}'")


def _read_png(path: Path) -> np.ndarray:
    """One frame of the PNG tree, grayscale uint8 (H, W); ValueError naming ``path`` when it is unreadable."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("L"))
    except (OSError, ValueError) as e:  # truncated or not an image
        raise ValueError(f"{path}: not a readable image ({e}); replace it or prepare the dataset again") from None


class KTHActionDataset(Dataset):
    """Clips of the KTH-Actions videos of one split.

    Args:
        root_dir: a prepared dataset (index.json + cache/), or a course-style PNG tree.
        split: 'train', 'val', 'test' or 'trainval' (see :data:`SPLITS`).
        transform: how a clip looks, uint8 ``[T, 1, H, W]`` -> ``[T, 1, H, W]``
            (see :mod:`src.data.augment`), or None (only the conversion to float).
            A :class:`src.data.augment.ClipTransform` also carries the course's
            ``slicing_step``, ``max_frames`` and ``random_clips`` (module docstring).
        max_frames: frames per clip, T.
        img_size: ``(H, W)`` or an int; frames are resized once at load when the data
            has another size.
        clips_per_video: items per video (random clips, or evenly spaced fixed clips).
        persons: the persons to use, overriding the split's.
        val_persons: the validation persons, carved from persons 1-16.
        use_sequences: take clips within the annotated subsequences of 00sequences.txt
            (default) rather than anywhere in the video.
        return_meta: items are ``(frames, label, meta)`` with
            ``meta = {"video_id": str, "person": int, "scenario": int, "clip": int}``.
        slicing_step: a clip takes every ``slicing_step``-th frame (default: the
            transform's, else 1).
        random_clips: random clips (training) or fixed, evenly spaced ones (evaluation)
            (default: the transform's, else fixed).

    Items: ``frames`` float32 ``[max_frames, 1, H, W]`` in [0, 1] and ``label`` int in
    0..5 (index in :data:`src.data.sources.kth.ACTIONS`).

    Attributes:
        videos: the index entries (dicts) of the split's videos, sorted by video id.
        labels: the label of every video (``labels[video_index]``).
        video_frames: the frames of every video, uint8 ``[T_video, 1, H, W]``.
        clips: ``(video_index, clip_index)`` of every item.
        num_padded: how many items are padded by repeating the last frame.
        sampler: the :class:`TemporalSampling` of the clips (``sampler.step`` is the
            slicing step).
        random_clips: True when items are random clips.
        span: frames of the video one clip covers, ``(max_frames - 1) * step + 1``.
        segments: per video, the ``(start, end)`` frame ranges clips come from;
            ``segment_weights``: their number of possible starts (random clips).
        windows: for fixed clips, the ``(start, end)`` frame range of every item.
    """

    def __init__(self, root_dir, split: str = "train", transform=None, max_frames: int = 10,
                 img_size=(64, 64), clips_per_video: int = 1, persons=None,
                 val_persons=DEFAULT_VAL_PERSONS, use_sequences: bool = True, return_meta: bool = False,
                 slicing_step: int | None = None, random_clips: bool | None = None):
        self.root_dir = Path(root_dir)
        self.split = split
        self.persons = split_persons(split, val_persons)  # checks the split name even when persons= is given
        if persons is not None:
            self.persons = tuple(sorted(persons))
        if max_frames < 1 or clips_per_video < 1:
            raise ValueError(f"max_frames and clips_per_video must be >= 1, got {max_frames} and {clips_per_video}")
        self.max_frames = max_frames
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.clips_per_video = clips_per_video
        self.use_sequences = use_sequences
        self.return_meta = return_meta

        # Which frames make a clip: decided here, once (the transform may carry the course's request).
        self.transform = transform
        slicing_step, self.random_clips = clip_request(transform, slicing_step, max_frames, random_clips)
        self.sampler = TemporalSampling(slicing_step, max_frames, random_start=self.random_clips)
        self.span = self.sampler.span  # frames of the video one clip covers

        # All frames of the split, in memory: uint8 [T, 1, H, W] per video.
        if (self.root_dir / "index.json").is_file():
            self.videos, self.video_frames = self._load_cache()
        else:
            self.videos, self.video_frames = self._load_png_tree()
        self.labels = [ACTIONS.index(v["action"]) for v in self.videos]
        self.classes = list(ACTIONS)
        self.channels = 1

        # Where clips may lie: per video, the (start, end) segments, and whether they are short.
        self.segments, padded = [], []
        for video, frames in zip(self.videos, self.video_frames):
            segments, short = self._usable_segments(video, len(frames))
            self.segments.append(segments)
            padded.append(short)
        self.segment_weights = [
            torch.tensor([float(end - start - self.span + 1 if not short else end - start)
                          for start, end in segments])
            for segments, short in zip(self.segments, padded)]
        self.clips = [(v, k) for v in range(len(self.videos)) for k in range(clips_per_video)]
        if not self.random_clips:
            self.windows = [self._fixed_window(v, k) for v, k in self.clips]
        self.num_padded = sum(padded) * clips_per_video
        if any(padded):
            where = " within an annotated subsequence" if use_sequences else ""
            warnings.warn(f"{self.root_dir}: {sum(padded)} of {len(self.videos)} videos of split '{split}' have no "
                          f"{self.span} frames in a row{where} (a clip of {max_frames} frames, one every "
                          f"{self.sampler.step}); their {self.num_padded} clips are padded by repeating the last "
                          f"frame", stacklevel=2)

    # ---------------------------------------------------------------- loading

    def _select(self, entries: list[dict], found: str) -> list[dict]:
        """The entries of this split's persons; a clear error when there are none."""
        if not entries:
            raise FileNotFoundError(_missing_root_message(self.root_dir, f"no videos in {found}"))
        selected = [e for e in entries if e["person"] in self.persons]
        if not selected:
            have = sorted({e["person"] for e in entries})
            raise ValueError(f"{self.root_dir}: no videos of persons {list(self.persons)} (split '{self.split}'); "
                             f"the data holds persons {have}: choose another split or persons=")
        return sorted(selected, key=lambda e: e["video_id"])

    def _resize(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 ``[T, 1, h, w]`` -> ``[T, 1, H, W]`` at ``img_size`` (unchanged when equal)."""
        if tuple(frames.shape[-2:]) == self.img_size:
            return frames
        return v2.functional.resize(frames, list(self.img_size), antialias=True)

    def _load_cache(self) -> tuple[list[dict], list[torch.Tensor]]:
        """The split's index entries and frames, uint8 ``[T, 1, H, W]`` per video. Every cache file is
        checked against its entry (uint8, ``[num_frames, size, size]``) from its header, before any
        is read; a missing, truncated or disagreeing file is a one-line error naming it."""
        index = read_index(self.root_dir)  # checks the file; raises naming it
        index_path = self.root_dir / "index.json"
        videos = self._select(index["videos"], str(index_path))
        cache_dir = self.root_dir / "cache"
        missing = [v["video_id"] for v in videos if not (cache_dir / f"{v['video_id']}.npy").is_file()]
        if missing:
            raise FileNotFoundError(
                f"{cache_dir}: {len(missing)} cached videos of the index are missing (e.g. {missing[0]}.npy); "
                f"{prepare_command(self.root_dir)}")
        size = index["size"]
        paths = [cache_dir / f"{video['video_id']}.npy" for video in videos]
        for video, path in zip(videos, paths):  # memory-mapped: only the header is read, the length checked
            try:
                array = np.load(path, mmap_mode="r")
            except (ValueError, OSError, EOFError) as e:
                raise ValueError(f"{path}: not a readable .npy file (truncated or corrupt: {e}); "
                                 f"{prepare_command(self.root_dir)}") from None
            expected = (video["num_frames"], size, size)
            if array.dtype != np.uint8 or array.shape != expected:
                raise ValueError(f"{path}: holds {array.dtype} {list(array.shape)} where {index_path} says "
                                 f"uint8 {list(expected)} ({video['num_frames']} frames of {size}x{size}); the "
                                 f"cache and the index disagree: {prepare_command(self.root_dir)}")
            del array
        frames = [self._resize(torch.from_numpy(np.load(path)).unsqueeze(1)).contiguous()
                  for path in tqdm(paths, desc=f"loading {self.split}", unit="video", leave=False)]
        return videos, frames

    def _load_png_tree(self) -> tuple[list[dict], list[torch.Tensor]]:
        root = self.root_dir
        if not root.is_dir() or not any(root.iterdir()):
            raise FileNotFoundError(_missing_root_message(root, "missing or empty"))
        if not any((root / action).is_dir() for action in ACTIONS):
            raise FileNotFoundError(_missing_root_message(
                root, "neither a prepared dataset (index.json) nor a KTH PNG tree (<action>/<video>/image-0001.png)"))
        for action in ACTIONS:
            if not (root / action).is_dir():
                raise FileNotFoundError(f"{root / action}: class folder missing; the PNG tree needs one folder "
                                        f"per action ({', '.join(ACTIONS)}): re-run prepare or restore it")
        stray = [p.name for p in root.iterdir() if p.name not in ACTIONS]
        entries, image_paths = [], {}
        for action in ACTIONS:
            for folder in sorted((root / action).iterdir()):
                info = parse_video_name(folder.name)
                images = sorted(folder.glob("image-*.png")) if folder.is_dir() else []
                if info is None or info["action"] != action or not images:
                    stray.append(f"{action}/{folder.name}")
                    continue
                entries.append({**info, "num_frames": len(images), "sequences": [[0, len(images)]]})
                image_paths[info["video_id"]] = images
        if stray:
            warnings.warn(f"{root}: ignored {len(stray)} entries that are not KTH video folders "
                          f"({', '.join(stray[:3])}{', ...' if len(stray) > 3 else ''})", stacklevel=3)
        videos = self._select(entries, f"{root} (PNG tree)")
        frames = []
        for video in tqdm(videos, desc=f"loading {self.split} (PNG)", unit="video", leave=False):
            images = [_read_png(path) for path in image_paths[video["video_id"]]]
            if len({image.shape for image in images}) > 1:
                raise ValueError(f"{root / video['action'] / video['video_id']}: its images differ in size "
                                 f"({sorted({image.shape for image in images})}); {prepare_command(root)}")
            frames.append(self._resize(torch.from_numpy(np.stack(images)).unsqueeze(1)).contiguous())
        return videos, frames

    # ---------------------------------------------------------------- clips

    def _usable_segments(self, video: dict, num_frames: int) -> tuple[list[tuple[int, int]], bool]:
        """The ``(start, end)`` frame ranges clips of ``video`` come from, and whether
        they are all shorter than a clip (then clips are padded)."""
        segments = []
        if self.use_sequences:
            for start, end in video.get("sequences") or ():
                start, end = max(0, int(start)), min(int(end), num_frames)
                if end > start:
                    segments.append((start, end))
        if not segments:
            segments = [(0, num_frames)]
        long_enough = [(start, end) for start, end in segments if end - start >= self.span]
        return (long_enough, False) if long_enough else (segments, True)

    def _fixed_window(self, video_index: int, clip_index: int) -> tuple[int, int]:
        """The window of fixed clip ``clip_index``: starts evenly spaced over all
        possible starts of the video's segments (centred: one clip takes the middle)."""
        starts = [range(start, start + max(end - start - self.span, 0) + 1)
                  for start, end in self.segments[video_index]]
        position = evenly_spaced(sum(map(len, starts)), self.clips_per_video)[clip_index]
        for candidates, (_, end) in zip(starts, self.segments[video_index]):
            if position < len(candidates):
                start = candidates[position]
                return start, min(start + self.span, end)
            position -= len(candidates)
        raise AssertionError("unreachable")

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int):
        video_index, clip_index = self.clips[index]
        if self.random_clips:
            segments = self.segments[video_index]
            choice = 0 if len(segments) == 1 else int(torch.multinomial(self.segment_weights[video_index], 1))
            start, end = segments[choice]
        else:
            start, end = self.windows[index]
        frames = self.sampler(self.video_frames[video_index][start:end])  # uint8 [max_frames, 1, H, W]
        if self.transform is not None:
            frames = self.transform(frames)
        if frames.dtype != torch.float32:
            frames = v2.functional.to_dtype(frames, torch.float32, scale=True)
        label = self.labels[video_index]
        if not self.return_meta:
            return frames, label
        video = self.videos[video_index]
        meta = {"video_id": video["video_id"], "person": int(video["person"]),
                "scenario": int(video["scenario"]), "clip": clip_index}
        return frames, label, meta

    def __repr__(self) -> str:
        kind = "random" if self.random_clips else "fixed"
        return (f"{type(self).__name__}(root_dir='{self.root_dir}', split='{self.split}', "
                f"videos={len(self.videos)}, clips={len(self)} ({kind}), max_frames={self.max_frames}, "
                f"step={self.sampler.step}, img_size={self.img_size})")
