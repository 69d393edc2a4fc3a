"""ClipBatches: the trainer's batches of clips, made by index arithmetic on one frame tensor.

:class:`src.data.dataset.VideoClipDataset` makes one clip per ``__getitem__`` call in
Python, which is what the course's code and a ``DataLoader`` expect. The trainer instead
takes whole batches from :class:`ClipBatches`, built on such a dataset:

- every frame of the split is one uint8 tensor ``(N_frames, C, H, W)``, on the training
  device when it fits (all of KTH at 64x64 is about 1.2 GB);
- which frames make a clip is the dataset's :class:`src.data.dataset.ClipTable`, the one
  its ``__getitem__`` reads: a batch's starts are drawn at once from it (uniformly among all
  starts that fit in the video's annotated subsequences), or are its fixed windows, and
  :meth:`src.data.dataset.ClipTable.frame_indices` gives every clip's frames; one gather,
  offset by where each video begins in the frame tensor, takes the batch;
- the augmentations (:class:`src.data.augment.ClipBatchAugmentation`) transform the
  whole batch at once; its temporal reversal is done in the gather (a reversed clip's frame
  indices are taken in reverse order), the same batch as reversing the float clips, without their copy.

The epoch's order comes from torch's ``DistributedSampler`` + ``BatchSampler`` over the
dataset's items (``rank``/``world_size`` give each process a disjoint share, ``batch_size``
is the global batch) and every random draw of an epoch (starts, flips, angles, reversals)
from a generator seeded by ``(seed, epoch, rank)``: :meth:`ClipBatches.set_epoch` makes an
epoch reproducible on its own, so a resumed run gets the same batches as an uninterrupted one.

    >>> train_set = VideoClipDataset("data/synth", "train", slicing_step=3, random_clips=True, clips_per_video=2)
    >>> batches = ClipBatches(train_set, batch_size=32, augmentation=ClipBatchAugmentation())
    >>> batches.set_epoch(1)
    >>> for clips, labels in batches:   # float32 (32, 10, 1, 64, 64) in [0, 1], int64 (32,)
    ...     ...

(C is the dataset's ``channels``: 1, or 3 for colour.)
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch.utils.data import BatchSampler, DistributedSampler
from torchvision.transforms import v2

from src.data.augment import ClipBatchAugmentation
from src.data.dataset import VideoClipDataset


def fits_on(device: torch.device, nbytes: int, share: float = 0.5) -> bool:
    """Whether ``nbytes`` fit in ``share`` of the device's free memory (always True on the CPU)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return nbytes <= share * free
    return True


class ClipBatches:
    """Batches ``(clips, labels)`` of a :class:`VideoClipDataset`'s items, made per batch.

    Args:
        dataset: the split; only its ``clip_table`` (which frames make each item's clip,
            random or fixed), ``video_frames`` and ``labels`` are read (its transform is not used).
        batch_size: clips per batch over all ranks (each rank gets ``batch_size // world_size``).
        augmentation: applied to each batch (training), or None.
        shuffle: a new random order of the items each epoch (default: the dataset's
            clips are random).
        device: where the frames live and the batches are made; the frames stay on the
            CPU (batches moved per step) when they do not fit in half the free memory.
        rank, world_size: this process's share of every epoch, as ``DistributedSampler``.
        seed: with the epoch and the rank, seeds every draw.
        drop_last: drop the last, smaller batch.
        prefetch: make the next batch in a background thread while the current one is in
            use (torch's kernels release the GIL), as a DataLoader's worker would; the thread's
            kernels run on one core. The batches are the same either way.
        items: only these items, in this order (then no shuffling and no rank split).

    Yields per batch: ``clips`` float32 ``(B, max_frames, C, H, W)`` in [0, 1] and ``labels``
    int64 ``(B,)``, both on ``device``. Fixed clips are exactly the dataset's items; a random
    item drawn with the same generator state is the dataset's item too.
    """

    def __init__(self, dataset: VideoClipDataset, batch_size: int, augmentation: ClipBatchAugmentation | None = None,
                 shuffle: bool | None = None, device: str | torch.device = "cpu", rank: int = 0, world_size: int = 1,
                 seed: int = 0, drop_last: bool = False, prefetch: bool = False, items=None):
        if batch_size < 1 or batch_size % world_size:
            raise ValueError(f"ClipBatches: batch_size {batch_size} must be a positive multiple of "
                             f"world_size {world_size}")
        self.augmentation = augmentation
        self.device = torch.device(device)
        self.seed, self.rank, self.world_size, self.epoch = seed, rank, world_size, 0
        self.prefetch = prefetch
        self.table = dataset.clip_table
        self.random_clips = self.table.random
        shuffle = self.random_clips if shuffle is None else shuffle

        lengths = torch.tensor([len(f) for f in dataset.video_frames])
        self.video_offset = torch.cumsum(lengths, 0) - lengths  # global index of each video's frame 0
        frames = torch.cat(list(dataset.video_frames))  # uint8 (N, C, H, W)
        if not fits_on(self.device, frames.nbytes):
            frames = frames.pin_memory() if self.device.type == "cuda" else frames
        else:
            frames = frames.to(self.device)
        self.frames = frames
        self.item_labels = torch.tensor(dataset.labels)[self.table.item_video]

        self.sampler = DistributedSampler(range(len(self.item_labels)), num_replicas=world_size, rank=rank,
                                          shuffle=shuffle, seed=seed, drop_last=False)
        if items is not None:
            self.sampler = list(items)
        self.batch_sampler = BatchSampler(self.sampler, batch_size // world_size, drop_last=drop_last)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration epoch ``epoch``'s: its order and all its draws."""
        self.epoch = epoch
        if isinstance(self.sampler, DistributedSampler):
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def generator(self) -> torch.Generator:
        """The CPU generator of this epoch and rank, seeded from ``(seed, epoch, rank)``."""
        state = np.random.SeedSequence([self.seed, self.epoch, self.rank]).generate_state(2, dtype=np.uint32)
        return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))

    def frame_indices(self, items: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Global frame indices ``(B, max_frames)`` of the clips of ``items`` (item indices, (B,));
        random clips draw their starts from ``generator`` (:meth:`src.data.dataset.ClipTable.frame_indices`)."""
        video, indices = self.table.frame_indices(items, generator)
        return self.video_offset[video][:, None] + indices

    def make_batch(self, batch: list[int], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """The clips ``(B, T, C, H, W)`` and labels ``(B,)`` of the items ``batch``."""
        items = torch.tensor(batch)
        index = self.frame_indices(items, generator)  # (B, T)
        if self.augmentation is not None:
            params = self.augmentation.draw(len(items), generator)
            # the temporal reversal is the order of the frames gathered, not a reversed float copy of the batch
            index = torch.where(params["reverse"][:, None], index.flip(1), index)
            params["reverse"] = torch.zeros_like(params["reverse"])
        index = index.to(self.frames.device)
        clips = self.frames.index_select(0, index.flatten()).view(*index.shape, *self.frames.shape[1:])
        clips = v2.functional.to_dtype(clips, torch.float32, scale=True)  # (B, T, C, H, W)
        clips = clips.to(self.device, non_blocking=True)
        if self.augmentation is not None:
            clips = self.augmentation.apply(clips, params)
        return clips, self.item_labels[items].to(self.device, non_blocking=True)

    def __iter__(self):
        generator = self.generator()
        if not self.prefetch:
            for batch in self.batch_sampler:
                yield self.make_batch(batch, generator)
            return
        # one worker, so the draws stay in order, with one intra-op thread (torch.set_num_threads is per thread):
        # its kernels then take one core from the model's, not all of them
        with ThreadPoolExecutor(max_workers=1, initializer=torch.set_num_threads, initargs=(1,)) as worker:
            pending = None
            for batch in self.batch_sampler:
                future = worker.submit(self.make_batch, batch, generator)
                if pending is not None:
                    yield pending.result()
                pending = future
            if pending is not None:
                yield pending.result()

    def __repr__(self) -> str:
        kind = "random" if self.random_clips else "fixed"
        return (f"{type(self).__name__}({len(self.item_labels)} {kind} clips of {len(self.video_offset)} videos, "
                f"{len(self)} batches, rank {self.rank}/{self.world_size}, frames on {self.frames.device}, "
                f"augmentation={self.augmentation})")
