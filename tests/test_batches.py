"""Tests for src/data/batches.py: the trainer's batches against KTHActionDataset's clips.

The fabricated dataset of tests/test_dataset.py has every pixel of frame t equal to t,
so a clip tells which frames it holds.
"""
from collections import Counter
from types import SimpleNamespace

import pytest
import torch
from torchvision.transforms import v2

from src.data.augment import ClipBatchAugmentation, get_test_transforms, get_train_transforms
from src.data.batches import ClipBatches
from src.data.dataset import KTHActionDataset
from tests.test_dataset import SEQUENCES, frame_indices, inside_one_sequence, standard_videos, write_prepared

STEP, FRAMES = 3, 5
SPAN = (FRAMES - 1) * STEP + 1


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return write_prepared(tmp_path_factory.mktemp("prepared"), standard_videos())


def train_set(prepared, clips_per_video=4):
    return KTHActionDataset(prepared, "train", get_train_transforms(STEP), max_frames=FRAMES, img_size=16,
                            clips_per_video=clips_per_video)


def test_fixed_clips_are_exactly_the_datasets_items(prepared):
    val = KTHActionDataset(prepared, "val", get_test_transforms(STEP), max_frames=FRAMES, img_size=16,
                           clips_per_video=5)
    batches = ClipBatches(val, batch_size=7)
    clips, labels = map(torch.cat, zip(*batches))
    assert clips.shape == (len(val), FRAMES, 1, 16, 16) and clips.dtype == torch.float32
    for index in range(len(val)):
        frames, label = val[index]
        assert torch.equal(clips[index], frames) and labels[index] == label
    assert len(batches) == -(-len(val) // 7)


def test_random_starts_lie_in_the_subsequences_and_are_uniform(prepared):
    batches = ClipBatches(train_set(prepared, clips_per_video=50), batch_size=100)
    starts = Counter()
    for epoch in range(4):
        batches.set_epoch(epoch)
        for clips, _ in batches:
            for clip in clips:
                indices = frame_indices(clip)
                assert inside_one_sequence(indices)
                assert indices == list(range(indices[0], indices[0] + SPAN, STEP))
                starts[indices[0]] += 1
    possible = [s for start, end in SEQUENCES for s in range(start, end - SPAN + 1)]
    assert sorted(starts) == possible  # every start that fits, and only those
    # chi-square against uniform over the possible starts (0.1 % critical value for 46 dof: 81.4)
    expected = sum(starts.values()) / len(possible)
    chi2 = sum((count - expected) ** 2 / expected for count in starts.values())
    assert chi2 < 81.4


def test_a_random_item_is_the_datasets_for_the_same_draw(prepared):
    """Both paths take item i's clip from the dataset's ClipTable: with the global generator in
    the state of the batches' generator, dataset[i] one after the other gives the batches' clips."""
    dataset = KTHActionDataset(prepared, "train", get_test_transforms(STEP), random_clips=True, max_frames=FRAMES,
                               img_size=16, clips_per_video=3)
    items = [5, 0, 17, 17, 2, 40, 33, 9]
    batches = ClipBatches(dataset, batch_size=3, items=items, seed=4)
    batches.set_epoch(2)
    clips, labels = map(torch.cat, zip(*batches))
    torch.default_generator.set_state(batches.generator().get_state())
    for clip, label, index in zip(clips, labels, items):
        frames, expected_label = dataset[index]
        assert torch.equal(clip, frames) and label == expected_label
    assert frame_indices(clips[2]) != frame_indices(clips[3])  # item 17 twice: two draws


def test_batches_read_only_the_table_the_frames_and_the_labels(prepared):
    """ClipBatches needs nothing of a dataset but ``clip_table``, ``video_frames`` and ``labels``, and
    no single channel: 3-channel frames give (B, T, 3, H, W) clips."""
    dataset = train_set(prepared)
    bare = SimpleNamespace(clip_table=dataset.clip_table, labels=dataset.labels,
                           video_frames=[f.expand(-1, 3, -1, -1) for f in dataset.video_frames])
    augmentation = ClipBatchAugmentation(rotation=0.0)
    one, three = (ClipBatches(d, batch_size=8, augmentation=augmentation, seed=2) for d in (dataset, bare))
    for (a, la), (b, lb) in zip(one, three, strict=True):
        assert b.shape == (8, FRAMES, 3, 16, 16) and torch.equal(la, lb)
        assert torch.equal(b, a.expand(-1, -1, 3, -1, -1))


def test_short_subsequences_repeat_the_last_frame_taken(tmp_path):
    videos = {vid: {"num_frames": 30, "sequences": [[2, 9]]} for vid in standard_videos(persons=(1,), scenarios=(1,))}
    root = write_prepared(tmp_path, videos)
    with pytest.warns(UserWarning, match="padded"):
        dataset = KTHActionDataset(root, "train", get_train_transforms(STEP), max_frames=FRAMES, img_size=16)
    clips, _ = next(iter(ClipBatches(dataset, batch_size=6)))
    for clip in clips:
        assert frame_indices(clip) == [2, 5, 8, 8, 8]  # as the dataset pads


def test_ranks_share_an_epoch_disjointly_and_epochs_are_reproducible(prepared):
    dataset = train_set(prepared)
    def epoch_clips(rank, world_size, epoch):
        batches = ClipBatches(dataset, batch_size=8, rank=rank, world_size=world_size, seed=5)
        batches.set_epoch(epoch)
        return [(tuple(frame_indices(clip)), int(label)) for clips, labels in batches
                for clip, label in zip(clips, labels)]
    whole = epoch_clips(0, 1, epoch=1)
    assert len(whole) == len(dataset)
    assert epoch_clips(0, 1, epoch=1) == whole              # an epoch is reproducible on its own
    assert epoch_clips(0, 1, epoch=2) != whole              # and the next one differs
    rank0, rank1 = epoch_clips(0, 2, epoch=1), epoch_clips(1, 2, epoch=1)
    assert len(rank0) == len(rank1) == len(dataset) // 2
    # the ranks' items are disjoint: together every item once (each video's clips counted by label)
    batches = [ClipBatches(dataset, batch_size=8, rank=r, world_size=2, seed=5) for r in (0, 1)]
    for b in batches:
        b.set_epoch(1)
    items = [i for b in batches for batch in b.batch_sampler for i in batch]
    assert sorted(items) == list(range(len(dataset)))
    assert all(len(batch) == 4 for b in batches for batch in b.batch_sampler)  # global batch 8 over 2 ranks
    with pytest.raises(ValueError, match="multiple of world_size"):
        ClipBatches(dataset, batch_size=7, world_size=2)


def test_augmented_batches(prepared):
    batches = ClipBatches(train_set(prepared), batch_size=16, augmentation=ClipBatchAugmentation(), seed=1)
    batches.set_epoch(3)
    clips, labels = next(iter(batches))
    assert clips.shape == (16, FRAMES, 1, 16, 16) and clips.dtype == torch.float32
    assert labels.dtype == torch.int64 and 0.0 <= clips.min() and clips.max() <= 1.0
    again = next(iter(batches))[0]
    assert torch.equal(clips, again)  # the same epoch's draws


def test_reversal_in_the_gather_gives_the_batch_of_augmenting_the_gathered_clips(prepared):
    """make_batch reverses a clip by the order of the frames it gathers (uint8 indices), not by a reversed
    float copy: the batch is bit for bit the augmentation's own, on the clips gathered in order, with the
    same draws from the epoch's generator."""
    augmentation = ClipBatchAugmentation(reverse_p=0.5)
    batches = ClipBatches(train_set(prepared), batch_size=16, augmentation=augmentation, seed=2)
    batches.set_epoch(1)
    clips, _ = next(iter(batches))
    generator, items = batches.generator(), next(iter(batches.batch_sampler))
    index = batches.frame_indices(torch.tensor(items), generator)
    in_order = v2.functional.to_dtype(batches.frames[index], torch.float32, scale=True)  # (B, T, C, H, W)
    params = augmentation.draw(len(items), generator)
    assert params["reverse"].any() and not params["reverse"].all()
    assert torch.equal(clips, augmentation.apply(in_order, params))


def test_prefetching_gives_the_same_batches(prepared):
    dataset = train_set(prepared)
    plain, prefetched = (ClipBatches(dataset, batch_size=8, augmentation=ClipBatchAugmentation(), prefetch=p)
                         for p in (False, True))
    for batches in (plain, prefetched):
        batches.set_epoch(2)
    threads, made_with = torch.get_num_threads(), []
    make_batch = prefetched.make_batch
    prefetched.make_batch = lambda *args: made_with.append(torch.get_num_threads()) or make_batch(*args)
    for (a, la), (b, lb) in zip(plain, prefetched, strict=True):
        assert torch.equal(a, b) and torch.equal(la, lb)
    assert made_with == [1] * len(prefetched)  # the worker's kernels on one core
    assert torch.get_num_threads() == threads  # the model's untouched


def test_colour_clips_are_the_datasets_items(tmp_path):
    val = KTHActionDataset(write_prepared(tmp_path, standard_videos(persons=(15,), scenarios=(1,)), channels=3),
                           "val", get_test_transforms(STEP), max_frames=FRAMES, img_size=16, clips_per_video=2,
                           channels=3)
    batches = ClipBatches(val, batch_size=4, augmentation=None)
    assert batches.frames.shape[1:] == (3, 16, 16)  # (N, C, H, W)
    clips, labels = map(torch.cat, zip(*batches))
    assert clips.shape == (len(val), FRAMES, 3, 16, 16)
    for index in range(len(val)):
        assert torch.equal(clips[index], val[index][0])
    augmented = ClipBatches(val, batch_size=4, augmentation=ClipBatchAugmentation())
    assert next(iter(augmented))[0].shape == (4, FRAMES, 3, 16, 16)
