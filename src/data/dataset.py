"""VideoClipDataset: clips of the videos of one split of a prepared dataset, all held in memory.

(``KTHActionDataset`` is the same class, under the course's name.) It reads a prepared dataset
(``python -m src.data prepare``, any layout: KTH, a folder of class subfolders, UCF101, HMDB51)::

    root/index.json                   {"version": 2, "source", "size", "channels", "classes": [...], "folds",
                                        "videos": [{"video_id", "label", "class", "group", "num_frames",
                                                    "sequences": [[start, end], ...], ...}, ...], ...}
    root/cache/<video_id>.npy         uint8 [T, size, size] (1 channel) or [T, size, size, 3] (RGB)

(a version-1 KTH index too: :func:`src.data.index.read_index`), or, without index.json, only
KTH's PNG tree ``root/<action>/<video_id>/image-0001.png`` (the course's layout; then a video's only
"subsequence" is the whole video). Which videos make the split is the protocol's
(:func:`src.data.splits.split_videos`: ``protocol=`` the config's ``data`` section; by default the
course's persons on KTH). Every frame of the split's videos is loaded once at init, so
``__getitem__`` never touches a file. Before that, ``index.json`` and the header of every cache
file are checked (dtype uint8, the shape the index says): a broken or disagreeing file stops the
load in one line naming it. Frames are ``[T, C, H, W]`` with C = ``channels``, by default the data's
(``channels='auto'``); a colour cache read with ``channels=1`` is converted to grayscale at load
(torchvision's ``rgb_to_grayscale``), with a warning.

Clips: which frames make one. This module is their one home; the transform of
:mod:`src.data.augment` only changes how the chosen frames look. A clip is
``max_frames`` frames taken every ``slicing_step``-th (:class:`TemporalSampling`), all
inside one annotated subsequence of the video (``use_sequences``) or anywhere in it.

- Random clips (``random_clips=True``, training): for each item the start is drawn
  uniformly among all the starts that fit in the video's subsequences, so every clip is
  equally likely (from torch's global generator per item; from the batch source's generator
  in :class:`src.data.batches.ClipBatches`).
- Fixed clips (evaluation): ``clips_per_video`` evenly spaced windows over the usable
  frames of each video (:func:`evenly_spaced`); the same item always gives the same frames.
- Subsequences shorter than a clip are used only when a video has no longer one; those
  clips are padded by repeating the last frame taken, and counted in ``num_padded``.

The dataset works all this out once, at init, into its :class:`ClipTable` (every possible
start, every fixed window); ``__getitem__`` and :class:`src.data.batches.ClipBatches` both
take their clips from it, so item ``i`` is the same clip for the same draw on either path.

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

and the same, said on the data side; and a colour dataset under a protocol of the config::

    dataset = VideoClipDataset(root_dir='data/kth', split='train', slicing_step=2, random_clips=True,
                               transform=get_train_transforms(), max_frames=10, img_size=(64, 64))
    dataset = VideoClipDataset('data/ucf', split='val', protocol={"split": "given", "fold": 2}, channels=3)
    dataset[0][0].shape, dataset.classes   # [10, 3, 64, 64], ['ApplyEyeMakeup', ...]
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2
from tqdm import tqdm

from src.data.index import SYNTHETIC_RAW_ROOT, prepare_command, read_index, resolve_channels
from src.data.sources.kth import ACTIONS, DEFAULT_VAL_PERSONS, parse_video_name
from src.data.splits import KTH_PROTOCOLS, group_order, kth_persons, split_videos

SPLITS = ("train", "val", "test", "trainval")
"""The parts of a split (:mod:`src.data.splits`) a dataset loads; 'trainval' is train + val (on KTH under
the course's protocol: persons 1-16, the course's training split)."""


class TemporalSampling:
    """Which frames of a window make a clip: ``num_frames`` frames, every ``step``-th, from the
    window's first frame. Where a window starts is the dataset's :class:`ClipTable`.

    Args:
        step: distance between two frames taken (the config's ``slicing_step``).
        num_frames: frames per clip (the dataset's ``max_frames``).

    ``sampling(window)``: uint8 ``[T_window, ...]`` -> ``[num_frames, ...]``; the window is
    not modified. A window shorter than :attr:`span` is padded by repeating the last frame
    taken. :meth:`offsets` is the same rule as index arithmetic, for whole batches
    (:meth:`ClipTable.frame_indices`).
    """

    def __init__(self, step: int, num_frames: int):
        if step < 1:
            raise ValueError(f"slicing_step must be >= 1, got {step}")
        if num_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {num_frames}")
        self.step, self.num_frames = int(step), int(num_frames)

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
        window_len = torch.tensor([min(window.shape[0], self.span)])
        return window[self.offsets(window_len)[0]]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(step={self.step}, num_frames={self.num_frames})"


def evenly_spaced(num_starts: int, count: int) -> list[int]:
    """``count`` positions among ``num_starts`` possible starts, evenly spaced and centred
    (one position takes the middle): ``(2k + 1) * num_starts // (2 * count)``, ``k < count``.
    Where the fixed clips of a video start, counting its usable starts in order."""
    return [(2 * k + 1) * num_starts // (2 * count) for k in range(count)]


@dataclass(frozen=True)
class ClipTable:
    """Where the clips of a dataset lie, built once by the dataset (:meth:`build`) and read by its
    ``__getitem__`` and by :class:`src.data.batches.ClipBatches` alike: both take item ``i``'s
    clip from :meth:`frame_indices`. Frames are counted within each video (0-based, windows
    end-exclusive); N items, V videos, S possible starts of a random clip.

    Attributes:
        sampling: which frames of a window make a clip (its ``offsets``).
        random: True: items are random clips, their starts drawn by :meth:`draw`; False: fixed
            clips, the items' ``windows``.
        item_video: int64 (N,), the video of each item.
        starts: int64 (S,), every possible start of a random clip, video after video, in order. A
            subsequence shorter than a clip (padded clips) is listed once per frame it has, with its
            first frame: drawing uniformly among a video's starts then weighs its subsequences by
            their number of starts (of frames, short ones), so every clip is equally likely.
        ends: int64 (S,), the end of each start's subsequence.
        start_first: int64 (V,), where video v's starts begin in ``starts``.
        start_counts: int64 (V,), how many starts video v has (>= 1).
        windows: int64 (N, 2), each item's fixed ``(start, end)`` window: ``clips_per_video``
            starts evenly spaced over the video's distinct starts (:func:`evenly_spaced`; a short
            subsequence has one), each window one span long or up to its subsequence's end.
    """
    sampling: TemporalSampling
    random: bool
    item_video: torch.Tensor
    starts: torch.Tensor
    ends: torch.Tensor
    start_first: torch.Tensor
    start_counts: torch.Tensor
    windows: torch.Tensor

    @classmethod
    def build(cls, segments: list[list[tuple[int, int]]], sampling: TemporalSampling, clips_per_video: int,
              random: bool) -> ClipTable:
        """The table of ``clips_per_video`` items per video (item ``v * clips_per_video + k`` is clip
        ``k`` of video ``v``), from each video's ``(start, end)`` segments (non-empty, within the video;
        all at least one span long, or all shorter: then its clips are padded)."""
        span = sampling.span
        starts, ends, counts, windows = [], [], [], []
        for video_segments in segments:
            count, distinct = 0, []  # distinct: (first start, last start + 1, end) per segment
            for start, end in video_segments:
                fits = end - start >= span
                starts.append(torch.arange(start, end - span + 1) if fits else torch.full((end - start,), start))
                ends.append(torch.full((len(starts[-1]),), end))
                count += len(starts[-1])
                distinct.append((start, end - span + 1 if fits else start + 1, end))
            counts.append(count)
            total = sum(last - first for first, last, _ in distinct)
            for position in evenly_spaced(total, clips_per_video):
                for first, last, end in distinct:
                    if position < last - first:
                        windows.append((first + position, min(first + position + span, end)))
                        break
                    position -= last - first
        start_counts = torch.tensor(counts, dtype=torch.int64)
        return cls(sampling=sampling, random=bool(random),
                   item_video=torch.arange(len(segments)).repeat_interleave(clips_per_video),
                   starts=torch.cat(starts).long(), ends=torch.cat(ends).long(),
                   start_first=torch.cumsum(start_counts, 0) - start_counts, start_counts=start_counts,
                   windows=torch.tensor(windows, dtype=torch.int64).view(-1, 2))

    def draw(self, items: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The windows ``(start, end)``, int64 (B,) each, of the clips of ``items`` (int64 (B,)).

        Random clips: one draw per item, uniform among its video's ``starts``, from ``generator``
        (None: torch's global one; one float64 ``torch.rand`` of B values, so B items drawn at once
        get the starts they would get drawn one after the other), ``end`` its subsequence's end.
        Fixed clips: the items' ``windows``; nothing is drawn."""
        if not self.random:
            return self.windows[items, 0], self.windows[items, 1]
        video = self.item_video[items]
        draw = torch.rand(len(items), generator=generator, dtype=torch.float64)
        choice = self.start_first[video] + (draw * self.start_counts[video]).long()
        return self.starts[choice], self.ends[choice]

    def frame_indices(self, items: torch.Tensor,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(video, frames)``: the video of each item, int64 (B,), and the frames its clip takes in
        that video, int64 ``(B, num_frames)``: ``start + sampling.offsets(end - start)`` of the
        windows of :meth:`draw` (padding included)."""
        start, end = self.draw(items, generator)
        return self.item_video[items], start[:, None] + self.sampling.offsets(end - start)


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


def _read_png(path: Path, channels: int = 1) -> np.ndarray:
    """One frame of the PNG tree, uint8 (H, W) grayscale or (H, W, 3) RGB; ValueError naming ``path`` when it
    is unreadable."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("L" if channels == 1 else "RGB"))
    except (OSError, ValueError) as e:  # truncated or not an image
        raise ValueError(f"{path}: not a readable image ({e}); replace it or prepare the dataset again") from None


class VideoClipDataset(Dataset):
    """Clips of the videos of one split of a prepared dataset.

    Args:
        root_dir: a prepared dataset (index.json + cache/), or a course-style KTH PNG tree.
        split: 'train', 'val', 'test' or 'trainval' (see :data:`SPLITS`).
        transform: how a clip looks, uint8 ``[T, C, H, W]`` -> ``[T, C, H, W]``
            (see :mod:`src.data.augment`), or None (only the conversion to float).
            A :class:`src.data.augment.ClipTransform` also carries the course's
            ``slicing_step``, ``max_frames`` and ``random_clips`` (module docstring).
        max_frames: frames per clip, T.
        img_size: ``(H, W)`` or an int; frames are resized once at load when the data
            has another size.
        clips_per_video: items per video (random clips, or evenly spaced fixed clips).
        persons: the groups (KTH: persons) to use, overriding the split's.
        val_persons: the validation persons of the course's protocol, carved from persons 1-16 (used
            when ``protocol`` does not give ``val_persons``).
        use_sequences: take clips within the annotated subsequences of 00sequences.txt
            (default) rather than anywhere in the video.
        return_meta: items are ``(frames, label, meta)`` with ``meta = {"video_id": str, "group": int | str,
            "clip": int}``, plus ``"person": int, "scenario": int`` on KTH.
        slicing_step: a clip takes every ``slicing_step``-th frame (default: the
            transform's, else 1).
        random_clips: random clips (training) or fixed, evenly spaced ones (evaluation)
            (default: the transform's, else fixed).
        protocol: the config's ``data`` section (its split keys: ``split``, ``val_persons``, ``fold``,
            ``folds``, ``val_fraction``, ``test_fraction``, ``split_seed``, ``groups``; missing keys take
            configs/base.yaml's defaults): which videos make the split (:func:`src.data.splits.split_videos`),
            and every refusal of a split that cannot train or be measured. None: the defaults (``auto``:
            the course's persons on KTH), without those refusals, so that one part of a partial dataset
            loads (the course's call on a few persons).
        channels: ``auto`` (default): the data's (``index.json``'s ``channels``; a KTH PNG tree: 1); 1
            (grayscale; colour data is converted at load, with a warning) or 3 (RGB; needs data prepared with
            ``--channels 3``, else ValueError naming ``data.channels``): :func:`src.data.index.resolve_channels`.

    Items: ``frames`` float32 ``[max_frames, C, H, W]`` in [0, 1] and ``label`` int in
    ``0..len(classes) - 1`` (the index in :attr:`classes`).

    Attributes:
        classes: the class names, ``classes[label]``.
        channels: C, the channels of every frame.
        split_info: the :class:`src.data.splits.Split` the videos come from (protocol, fold, groups).
        videos: the index entries (dicts) of the split's videos, sorted by video id.
        labels: the label of every video (``labels[video_index]``).
        groups: the group of every video (``groups[video_index]``; KTH: the person).
        video_frames: the frames of every video, uint8 ``[T_video, C, H, W]``.
        clips: ``(video_index, clip_index)`` of every item.
        num_padded: how many items are padded by repeating the last frame.
        sampler: the :class:`TemporalSampling` of the clips (``sampler.step`` is the
            slicing step).
        random_clips: True when items are random clips.
        span: frames of the video one clip covers, ``(max_frames - 1) * step + 1``.
        segments: per video, the ``(start, end)`` frame ranges clips come from.
        clip_table: the :class:`ClipTable` of every item's clip (possible starts, fixed windows),
            which ``__getitem__`` and :class:`src.data.batches.ClipBatches` both read.
        windows: the fixed ``(start, end)`` window of every item (the clips of fixed-clip
            datasets; ``clip_table.windows`` as tuples).
    """

    def __init__(self, root_dir, split: str = "train", transform=None, max_frames: int = 10,
                 img_size=(64, 64), clips_per_video: int = 1, persons=None,
                 val_persons=DEFAULT_VAL_PERSONS, use_sequences: bool = True, return_meta: bool = False,
                 slicing_step: int | None = None, random_clips: bool | None = None, protocol: dict | None = None,
                 channels: int | str = "auto"):
        self.root_dir = Path(root_dir)
        self.split = split
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
        if max_frames < 1 or clips_per_video < 1:
            raise ValueError(f"max_frames and clips_per_video must be >= 1, got {max_frames} and {clips_per_video}")
        if channels != "auto" and (isinstance(channels, bool) or channels not in (1, 3)):
            raise ValueError(f"data.channels: {channels!r} is not a number of channels; use auto (the data's), 1 "
                             f"(grayscale) or 3 (RGB)")
        self.max_frames = max_frames
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.clips_per_video = clips_per_video
        self.use_sequences = use_sequences
        self.return_meta = return_meta

        # Which frames make a clip: decided here, once (the transform may carry the course's request).
        self.transform = transform
        slicing_step, self.random_clips = clip_request(transform, slicing_step, max_frames, random_clips)
        self.sampler = TemporalSampling(slicing_step, max_frames)
        self.span = self.sampler.span  # frames of the video one clip covers

        # The split's videos (the protocol's, or the groups of persons=), and all their frames in memory:
        # uint8 [T, C, H, W] per video.
        if (self.root_dir / "index.json").is_file():
            index, found, image_paths = read_index(self.root_dir), str(self.root_dir / "index.json"), None
            self.channels = resolve_channels(channels, index["channels"], found)
        else:
            self.channels = 1 if channels == "auto" else channels  # KTH's PNG tree: grayscale images
            index, image_paths = self._png_tree_index()
            found = f"{self.root_dir} (PNG tree)"
        if not index["videos"]:
            raise FileNotFoundError(_missing_root_message(self.root_dir, f"no videos in {found}"))
        self.classes = list(index["classes"])
        protocol_data = {"val_persons": list(val_persons), **(protocol or {})}
        self.split_info = split_videos(index, protocol_data, strict=protocol is not None)
        self.videos = self._select(index, persons, protocol_data)
        self.video_frames = (self._load_cache(index) if image_paths is None else
                             self._load_png_tree(image_paths))
        self.labels = [int(v["label"]) for v in self.videos]
        self.groups = [v["group"] for v in self.videos]

        # Where clips may lie: per video, the (start, end) segments, and whether they are short;
        # then the table of every item's clip, which __getitem__ and ClipBatches both read.
        self.segments, padded = [], []
        for video, frames in zip(self.videos, self.video_frames):
            segments, short = self._usable_segments(video, len(frames))
            self.segments.append(segments)
            padded.append(short)
        self.clips = [(v, k) for v in range(len(self.videos)) for k in range(clips_per_video)]
        self.clip_table = ClipTable.build(self.segments, self.sampler, clips_per_video, self.random_clips)
        self.windows = [tuple(window) for window in self.clip_table.windows.tolist()]
        self.num_padded = sum(padded) * clips_per_video
        if any(padded):
            where = " within an annotated subsequence" if use_sequences else ""
            warnings.warn(f"{self.root_dir}: {sum(padded)} of {len(self.videos)} videos of split '{split}' have no "
                          f"{self.span} frames in a row{where} (a clip of {max_frames} frames, one every "
                          f"{self.sampler.step}); their {self.num_padded} clips are padded by repeating the last "
                          f"frame", stacklevel=2)

    # ---------------------------------------------------------------- loading

    def _select(self, index: dict, persons, protocol_data: dict) -> list[dict]:
        """The index entries of this split (or of the groups ``persons``), sorted by video id; a clear error
        when there are none."""
        entries, kth = index["videos"], index["source"] == "kth"
        if persons is not None:
            wanted = {str(group) for group in persons}
            selected = [e for e in entries if str(e["group"]) in wanted]
            asked = f"of {'persons' if kth else 'groups'} {sorted(persons, key=group_order)}"
        else:
            parts = ("train", "val") if self.split == "trainval" else (self.split,)
            ids = {video_id for part in parts for video_id in self.split_info.video_ids[part]}
            selected = [e for e in entries if e["video_id"] in ids]
            protocol = self.split_info.protocol
            if protocol in KTH_PROTOCOLS:
                defined = kth_persons(protocol, protocol_data["val_persons"])
                asked = f"of persons {sorted(p for part in parts for p in defined[part])}"
            else:
                asked = f"in the {self.split} split of {protocol}"
        if not selected:
            word = "persons" if kth else "groups"
            have = sorted({e["group"] for e in entries}, key=group_order)
            raise ValueError(f"{self.root_dir}: no videos {asked} (split '{self.split}'); the data holds {word} "
                             f"{have}: choose another split or persons=")
        return sorted(selected, key=lambda e: e["video_id"])

    def _resize(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 ``[T, C, h, w]`` -> ``[T, C, H, W]`` at ``img_size`` (unchanged when equal)."""
        if tuple(frames.shape[-2:]) == self.img_size:
            return frames
        return v2.functional.resize(frames, list(self.img_size), antialias=True)

    def _load_cache(self, index: dict) -> list[torch.Tensor]:
        """The frames of the split's videos, uint8 ``[T, C, H, W]`` each. Every cache file is checked against
        its entry (uint8, ``[num_frames, size, size]`` or ``[num_frames, size, size, 3]``) from its header,
        before any is read; a missing, truncated or disagreeing file is a one-line error naming it."""
        index_path = self.root_dir / "index.json"
        stored = index["channels"]
        cache_dir = self.root_dir / "cache"
        paths = [cache_dir / f"{video['video_id']}.npy" for video in self.videos]
        missing = [video["video_id"] for video, path in zip(self.videos, paths) if not path.is_file()]
        if missing:
            raise FileNotFoundError(
                f"{cache_dir}: {len(missing)} cached videos of the index are missing (e.g. {missing[0]}.npy); "
                f"{prepare_command(self.root_dir)}")
        size = index["size"]
        for video, path in zip(self.videos, paths):  # memory-mapped: only the header is read, the length checked
            try:
                array = np.load(path, mmap_mode="r")
            except (ValueError, OSError, EOFError) as e:
                raise ValueError(f"{path}: not a readable .npy file (truncated or corrupt: {e}); "
                                 f"{prepare_command(self.root_dir)}") from None
            expected = (video["num_frames"], size, size, *((stored,) if stored != 1 else ()))
            if array.dtype != np.uint8 or array.shape != expected:
                raise ValueError(f"{path}: holds {array.dtype} {list(array.shape)} where {index_path} says "
                                 f"uint8 {list(expected)} ({video['num_frames']} frames of {size}x{size}"
                                 f"{', RGB' if stored == 3 else ''}); the cache and the index disagree: "
                                 f"{prepare_command(self.root_dir)}")
            del array
        frames = []
        for path in tqdm(paths, desc=f"loading {self.split}", unit="video", leave=False):
            video = torch.from_numpy(np.load(path))  # [T, H, W] or [T, H, W, 3]
            video = video.unsqueeze(1) if video.ndim == 3 else video.permute(0, 3, 1, 2)  # [T, C, H, W]
            if video.shape[1] != self.channels:  # colour read as gray
                video = v2.functional.rgb_to_grayscale(video)
            frames.append(self._resize(video).contiguous())
        return frames

    def _png_tree_index(self) -> tuple[dict, dict[str, list[Path]]]:
        """The course's KTH PNG tree (``root/<action>/<video_id>/image-0001.png``) as an index (version 2, KTH),
        and the image paths of every video."""
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
                entries.append({**info, "class": action, "group": info["person"], "file": "",
                                "num_frames": len(images), "sequences": [[0, len(images)]]})
                image_paths[info["video_id"]] = images
        if stray:
            warnings.warn(f"{root}: ignored {len(stray)} entries that are not KTH video folders "
                          f"({', '.join(stray[:3])}{', ...' if len(stray) > 3 else ''})", stacklevel=3)
        index = {"source": "kth", "channels": self.channels, "classes": list(ACTIONS), "folds": [],
                 "group_kind": "person", "videos": entries}
        return index, image_paths

    def _load_png_tree(self, image_paths: dict[str, list[Path]]) -> list[torch.Tensor]:
        """The frames of the split's videos from the PNG tree, uint8 ``[T, C, H, W]`` each."""
        frames = []
        for video in tqdm(self.videos, desc=f"loading {self.split} (PNG)", unit="video", leave=False):
            images = [_read_png(path, self.channels) for path in image_paths[video["video_id"]]]
            if len({image.shape for image in images}) > 1:
                raise ValueError(f"{self.root_dir / video['action'] / video['video_id']}: its images differ in size "
                                 f"({sorted({image.shape for image in images})}); {prepare_command(self.root_dir)}")
            stacked = torch.from_numpy(np.stack(images))  # [T, H, W] or [T, H, W, 3]
            stacked = stacked.unsqueeze(1) if stacked.ndim == 3 else stacked.permute(0, 3, 1, 2)
            frames.append(self._resize(stacked).contiguous())
        return frames

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

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int):
        video_index, clip_index = self.clips[index]
        # the clip's frames as ClipBatches takes them; a random start is drawn from torch's global generator
        _, frame_indices = self.clip_table.frame_indices(torch.tensor([index]))
        frames = self.video_frames[video_index][frame_indices[0]]  # uint8 [max_frames, C, H, W]
        if self.transform is not None:
            frames = self.transform(frames)
        if frames.dtype != torch.float32:
            frames = v2.functional.to_dtype(frames, torch.float32, scale=True)
        label = self.labels[video_index]
        if not self.return_meta:
            return frames, label
        video = self.videos[video_index]
        meta = {"video_id": video["video_id"], "group": video["group"], "clip": clip_index}
        if "person" in video:  # KTH
            meta.update(person=int(video["person"]), scenario=int(video["scenario"]))
        return frames, label, meta

    def __repr__(self) -> str:
        kind = "random" if self.random_clips else "fixed"
        return (f"{type(self).__name__}(root_dir='{self.root_dir}', split='{self.split}', "
                f"videos={len(self.videos)}, clips={len(self)} ({kind}), max_frames={self.max_frames}, "
                f"step={self.sampler.step}, img_size={self.img_size}, channels={self.channels}, "
                f"classes={len(self.classes)})")


KTHActionDataset = VideoClipDataset
"""The course's name of :class:`VideoClipDataset`."""
