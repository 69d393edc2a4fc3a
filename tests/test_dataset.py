"""Tests for src/data/dataset.py: VideoClipDataset (the course's KTHActionDataset) on a fabricated prepared dataset,
and on each layout (tests/test_sources.py's folders, prepared).

Every fabricated frame has all its pixels equal to its own index in the video, so a
clip tells which frames it holds (see :func:`frame_indices`).
"""
import collections
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms import v2

from src.data.augment import get_test_transforms, get_train_transforms
from src.data.dataset import SPLITS, ClipTable, KTHActionDataset, TemporalSampling, VideoClipDataset, evenly_spaced
from src.data.sources.kth import ACTIONS, DEFAULT_VAL_PERSONS, TEST_PERSONS, TRAIN_PERSONS, video_id
from src.data.splits import SplitError, kth_persons

SIZE = 16
PERSONS = (1, 2, 15, 17)          # two train, one val, one test person
SEQUENCES = [[10, 40], [60, 100]]  # 0-based, end-exclusive
NUM_FRAMES = 120


def write_prepared(root: Path, videos: dict[str, dict], size: int = SIZE, png: bool = False,
                   index: bool = True, channels: int = 1) -> Path:
    """Fabricate a prepared KTH dataset in the format of src/data/prepare.py (index.json version 2), in gray
    or in colour.

    ``videos``: ``{video_id: {"num_frames": T, "sequences": [[start, end], ...]}}``.
    Frame t of every video is uint8 [size, size] filled with t; in colour, channel c holds t + 40 * c.
    """
    entries = []
    (root / "cache").mkdir(parents=True, exist_ok=True)
    for vid, spec in videos.items():
        person, action, scenario = int(vid[6:8]), vid.split("_")[1], int(vid[-1])
        frames = np.broadcast_to(np.arange(spec["num_frames"], dtype=np.uint8)[:, None, None],
                                 (spec["num_frames"], size, size))
        if channels == 3:
            frames = frames[..., None] + np.array([0, 40, 80], np.uint8)  # (T, size, size, 3)
        np.save(root / "cache" / f"{vid}.npy", np.ascontiguousarray(frames))
        entries.append({"video_id": vid, "person": person, "action": action, "label": ACTIONS.index(action),
                        "scenario": scenario, "num_frames": spec["num_frames"], "sequences": spec["sequences"]})
        entries[-1].update({"file": f"{action}/{vid}_uncomp.avi", "class": action, "group": person})
        if png:
            folder = root / action / vid
            folder.mkdir(parents=True)
            for t, frame in enumerate(frames, 1):
                Image.fromarray(frame).save(folder / f"image-{t:04d}.png")
    if index:
        (root / "index.json").write_text(json.dumps(
            {"version": 2, "source": "kth", "size": size, "channels": channels, "synthetic": True,
             "classes": list(ACTIONS),
             "group_kind": "person", "folds": [], "videos": entries}))
    return root


def standard_videos(persons=PERSONS, scenarios=(1, 2)) -> dict[str, dict]:
    return {video_id(p, a, d): {"num_frames": NUM_FRAMES, "sequences": SEQUENCES}
            for p in persons for a in ACTIONS for d in scenarios}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """4 persons (train 1, 2; val 15; test 17) x 6 actions x 2 scenarios, 120 frames each."""
    return write_prepared(tmp_path_factory.mktemp("prepared"), standard_videos())


def frame_indices(frames: torch.Tensor) -> list[int]:
    """The video frame indices a clip [T, 1, H, W] in [0, 1] holds, read from its centre pixel."""
    return (frames[:, 0, frames.shape[-2] // 2, frames.shape[-1] // 2] * 255).round().long().tolist()


def inside_one_sequence(indices: list[int], sequences=SEQUENCES) -> bool:
    return any(all(start <= i < end for i in indices) for start, end in sequences)


# ---------------------------------------------------------------- the course call, items, splits

def test_course_call_works_as_written(prepared):
    dataset = KTHActionDataset(root_dir=str(prepared), split='train', transform=get_train_transforms(slicing_step=2),
                               max_frames=10, img_size=(64, 64))
    frames, label = dataset[0]
    assert frames.shape == (10, 1, 64, 64) and frames.dtype == torch.float32
    assert 0.0 <= frames.min() and frames.max() <= 1.0
    assert isinstance(label, int) and 0 <= label < 6
    assert len(dataset) == 2 * 6 * 2  # persons 1, 2 x 6 actions x 2 scenarios, one clip each


@pytest.mark.parametrize("transform", [None, get_train_transforms(3), get_test_transforms(3)])
def test_item_shape_dtype_range(prepared, transform):
    dataset = KTHActionDataset(prepared, split="val", transform=transform, max_frames=7, img_size=SIZE)
    for i in range(len(dataset)):
        frames, label = dataset[i]
        assert frames.shape == (7, 1, SIZE, SIZE) and frames.dtype == torch.float32
        assert 0.0 <= frames.min() and frames.max() <= 1.0
        assert label == ACTIONS.index(dataset.videos[i]["action"])


def test_labels_follow_kth_action_order(prepared):
    dataset = KTHActionDataset(prepared, split="trainval", img_size=SIZE)
    for video, label in zip(dataset.videos, dataset.labels):
        assert label == ACTIONS.index(video["action"]) == video["label"]
    assert sorted(set(dataset.labels)) == list(range(6))
    assert ACTIONS == ("walking", "jogging", "running", "boxing", "handwaving", "handclapping")


def test_the_course_persons():
    persons = kth_persons("course")
    assert persons["train"] == tuple(p for p in range(1, 17) if p not in (15, 16))
    assert persons["val"] == DEFAULT_VAL_PERSONS == (15, 16)
    assert persons["test"] == TEST_PERSONS == tuple(range(17, 26))
    assert sorted(persons["train"] + persons["val"]) == list(TRAIN_PERSONS) == list(range(1, 17))
    assert kth_persons("course", val_persons=[3, 1])["val"] == (1, 3)
    assert 3 not in kth_persons("course", val_persons=[3])["train"]
    with pytest.raises(ValueError, match=r"^data.val_persons must list training persons 1-16 only, got \[20\] \(20 "
                                         r"is a test person\) \(data.split course\)$"):
        kth_persons("course", val_persons=[20])  # the config's check of them (src/data/splits.val_persons_refusal)
    assert KTHActionDataset is VideoClipDataset


def test_splits_hold_their_persons_and_are_disjoint(prepared):
    ids = {}
    for split, expected in [("train", {1, 2}), ("val", {15}), ("test", {17}), ("trainval", {1, 2, 15})]:
        dataset = KTHActionDataset(prepared, split=split, img_size=SIZE)
        assert {v["person"] for v in dataset.videos} == expected
        ids[split] = {v["video_id"] for v in dataset.videos}
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"] and not ids["val"] & ids["test"]
    assert ids["trainval"] == ids["train"] | ids["val"]


def test_persons_and_val_persons_override_the_split(prepared):
    dataset = KTHActionDataset(prepared, split="test", persons=[2], img_size=SIZE)
    assert {v["person"] for v in dataset.videos} == {2}
    dataset = KTHActionDataset(prepared, split="val", val_persons=[1, 2], img_size=SIZE)
    assert {v["person"] for v in dataset.videos} == {1, 2}
    dataset = KTHActionDataset(prepared, split="train", val_persons=[1, 2], img_size=SIZE)
    assert {v["person"] for v in dataset.videos} == {15}


def test_frames_are_resized_once_at_load(prepared):
    dataset = KTHActionDataset(prepared, split="val", img_size=(24, 32))
    assert dataset.video_frames[0].shape == (NUM_FRAMES, 1, 24, 32)
    assert dataset.video_frames[0].dtype == torch.uint8
    frames, _ = dataset[0]
    assert frames.shape == (10, 1, 24, 32)


# ---------------------------------------------------------------- random training clips

def test_train_clips_are_random_and_reproducible_under_manual_seed(prepared):
    dataset = KTHActionDataset(prepared, split="val", transform=get_train_transforms(2), max_frames=5,
                               img_size=SIZE, clips_per_video=3)
    assert len(dataset) == 12 * 3 and dataset.clips[:4] == [(0, 0), (0, 1), (0, 2), (1, 0)]
    torch.manual_seed(0)
    first = torch.stack([dataset[i][0] for i in range(len(dataset))])
    torch.manual_seed(0)
    second = torch.stack([dataset[i][0] for i in range(len(dataset))])
    assert torch.equal(first, second)
    third = torch.stack([dataset[i][0] for i in range(len(dataset))])
    assert not torch.equal(first, third)
    assert len({frame_indices(clip)[0] for clip in first}) > 5


def test_train_clips_lie_in_annotated_sequences(prepared):
    step = 3
    dataset = KTHActionDataset(prepared, split="val", transform=get_train_transforms(step, rotation=0.0),
                               max_frames=6, img_size=SIZE)
    torch.manual_seed(0)
    sequence_used, reversed_count = set(), 0
    for _ in range(20):
        for i in range(len(dataset)):
            indices = frame_indices(dataset[i][0])
            assert inside_one_sequence(indices), indices
            if indices[0] > indices[-1]:
                indices, reversed_count = indices[::-1], reversed_count + 1
            assert np.diff(indices).tolist() == [step] * 5
            sequence_used.add(indices[0] >= 60)
    assert sequence_used == {False, True}  # both subsequences are drawn
    assert 0 < reversed_count < 20 * len(dataset)


def test_without_sequences_clips_come_from_the_whole_video(prepared):
    dataset = KTHActionDataset(prepared, split="val", transform=get_train_transforms(1, rotation=0.0, reverse_p=0.0),
                               max_frames=4, img_size=SIZE, use_sequences=False)
    torch.manual_seed(0)
    starts = {frame_indices(dataset[i][0])[0] for _ in range(30) for i in range(len(dataset))}
    assert any(not inside_one_sequence([s]) for s in starts)
    assert max(starts) <= NUM_FRAMES - 4


# ---------------------------------------------------------------- fixed evaluation clips

def test_eval_clips_are_deterministic_evenly_spaced_and_inside_sequences(prepared):
    dataset = KTHActionDataset(prepared, split="val", transform=get_test_transforms(2), max_frames=5,
                               img_size=SIZE, clips_per_video=4)
    # a clip spans 9 frames: usable starts 10..31 (22) and 60..91 (32), 54 in all;
    # clip k takes start number (2k + 1) * 54 // 8 = 6, 20, 33, 47
    starts = [frame_indices(dataset[k][0])[0] for k in range(4)]
    assert starts == [10 + 6, 10 + 20, 60 + (33 - 22), 60 + (47 - 22)]
    for i in range(len(dataset)):
        frames, _ = dataset[i]
        indices = frame_indices(frames)
        assert inside_one_sequence(indices) and np.diff(indices).tolist() == [2] * 4
        assert torch.equal(frames, dataset[i][0])
    torch.manual_seed(1)
    again = dataset[3][0]
    torch.manual_seed(2)
    assert torch.equal(again, dataset[3][0])


def test_one_eval_clip_takes_the_middle(prepared):
    dataset = KTHActionDataset(prepared, split="val", transform=None, max_frames=10, img_size=SIZE)
    # no transform: fixed clips of consecutive frames; starts 10..30 and 60..90 -> 52 starts, middle = 26
    assert frame_indices(dataset[0][0]) == list(range(60 + 26 - 21, 60 + 26 - 21 + 10))


def test_sampler_frames_must_match_max_frames(prepared):
    with pytest.raises(ValueError, match="max_frames=10"):
        KTHActionDataset(prepared, split="val", transform=get_test_transforms(2, max_frames=8), max_frames=10)
    transform = get_test_transforms(2)
    dataset = KTHActionDataset(prepared, split="val", transform=transform, max_frames=6, img_size=SIZE)
    assert dataset.transform is transform and transform.max_frames is None  # read, never written
    assert (dataset.sampler.step, dataset.sampler.num_frames, dataset.span) == (2, 6, 11)


# ---------------------------------------------------------------- the course's call and the data side

@pytest.mark.parametrize("split, clips_per_video", [("train", 3), ("val", 4)])
def test_course_call_and_data_side_give_the_same_clips(prepared, split, clips_per_video):
    """transform=get_*_transforms(slicing_step=...) (the course) and slicing_step=/random_clips= on
    the dataset (the data side) give the same frames and the same random draws."""
    common = dict(split=split, max_frames=5, img_size=SIZE, clips_per_video=clips_per_video)
    pairs = [  # (course, data side)
        (KTHActionDataset(prepared, transform=get_train_transforms(slicing_step=3), **common),
         KTHActionDataset(prepared, transform=get_train_transforms(), slicing_step=3, random_clips=True, **common)),
        (KTHActionDataset(prepared, transform=get_test_transforms(slicing_step=3), **common),
         KTHActionDataset(prepared, slicing_step=3, **common)),
    ]
    for course, data_side in pairs:
        assert (course.sampler.step, course.random_clips, course.span) == \
               (data_side.sampler.step, data_side.random_clips, data_side.span) == (3, course is pairs[0][0], 13)
        torch.manual_seed(0)
        first = torch.stack([course[i][0] for i in range(len(course))])
        after_first = torch.rand(())
        torch.manual_seed(0)
        second = torch.stack([data_side[i][0] for i in range(len(data_side))])
        assert torch.equal(first, second) and torch.equal(after_first, torch.rand(()))  # the same draws
        for clip in first:
            indices = frame_indices(clip)
            assert sorted(np.abs(np.diff(indices)).tolist()) == [3] * 4 and inside_one_sequence(indices)
    assert pairs[1][0].windows == pairs[1][1].windows


def test_the_dataset_and_its_transform_must_agree(prepared):
    with pytest.raises(ValueError, match=r"slicing_step=2 but the dataset got slicing_step=3"):
        KTHActionDataset(prepared, split="val", transform=get_train_transforms(slicing_step=2), slicing_step=3)
    same = KTHActionDataset(prepared, split="val", transform=get_train_transforms(2), slicing_step=2, img_size=SIZE)
    assert same.sampler.step == 2 and same.random_clips
    # the dataset's own random_clips wins over the transform's default: augmented fixed clips
    fixed = KTHActionDataset(prepared, split="val", transform=get_train_transforms(2), random_clips=False,
                             img_size=SIZE)
    assert not fixed.random_clips and len(fixed.windows) == len(fixed)
    plain = KTHActionDataset(prepared, split="val", transform=v2.RandomHorizontalFlip(0.0), img_size=SIZE)
    assert (plain.sampler.step, plain.random_clips) == (1, False)  # a transform without a request: the defaults
    with pytest.raises(ValueError, match="slicing_step must be >= 1"):
        KTHActionDataset(prepared, split="val", slicing_step=0)


# ---------------------------------------------------------------- TemporalSampling

def indexed_window(num_frames: int) -> torch.Tensor:
    """uint8 [num_frames, 1, 4, 4] whose frame t has every pixel equal to t."""
    return torch.arange(num_frames, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 4, 4).clone()


def window_indices(clip: torch.Tensor) -> list[int]:
    return clip[:, 0, 0, 0].long().tolist()


def test_temporal_sampling_step_and_fixed_start():
    sampling = TemporalSampling(step=3, num_frames=4)
    out = sampling(indexed_window(20))
    assert out.shape == (4, 1, 4, 4) and out.dtype == torch.uint8 and sampling.span == 10
    assert window_indices(out) == [0, 3, 6, 9]


def test_temporal_sampling_pads_by_repeating_last_frame_taken():
    sampling = TemporalSampling(step=3, num_frames=5)
    assert window_indices(sampling(indexed_window(8))) == [0, 3, 6, 6, 6]  # needs 13 frames, has 8
    # the batch form: the same rule as index arithmetic
    assert sampling.offsets(torch.tensor([8, 13, 40, 1])).tolist() == [
        [0, 3, 6, 6, 6], [0, 3, 6, 9, 12], [0, 3, 6, 9, 12], [0, 0, 0, 0, 0]]


def test_temporal_sampling_errors():
    with pytest.raises(ValueError, match="slicing_step must be >= 1"):
        TemporalSampling(step=0, num_frames=2)
    with pytest.raises(ValueError, match="max_frames must be >= 1"):
        TemporalSampling(step=1, num_frames=0)
    with pytest.raises(ValueError, match="empty window"):
        TemporalSampling(step=1, num_frames=2)(indexed_window(0))


# ---------------------------------------------------------------- ClipTable

# video 0: two subsequences that fit a clip of span 13; video 1: two shorter ones (padded clips)
TABLE_SEGMENTS = [[(10, 40), (60, 100)], [(2, 9), (12, 20)]]


def test_clip_table_lists_every_start_with_the_end_of_its_subsequence():
    table = ClipTable.build(TABLE_SEGMENTS, TemporalSampling(step=3, num_frames=5), clips_per_video=2, random=True)
    fitting = list(range(10, 28)) + list(range(60, 88))          # starts whose span of 13 frames fits
    short = [2] * 7 + [12] * 8                                   # short subsequences: their first frame, per frame
    assert table.starts.tolist() == fitting + short
    assert table.ends.tolist() == [40] * 18 + [100] * 28 + [9] * 7 + [20] * 8
    assert table.start_counts.tolist() == [46, 15] and table.start_first.tolist() == [0, 46]
    assert table.item_video.tolist() == [0, 0, 1, 1]
    assert all(t.dtype == torch.int64 for t in (table.starts, table.ends, table.start_first, table.start_counts,
                                                 table.item_video, table.windows))


def test_clip_table_draws_every_start_uniformly_within_the_subsequences():
    table = ClipTable.build(TABLE_SEGMENTS, TemporalSampling(step=3, num_frames=5), clips_per_video=2, random=True)
    items = torch.tensor([0, 1, 2, 3] * 2000)
    video, frames = table.frame_indices(items, torch.Generator().manual_seed(0))
    assert frames.shape == (len(items), 5) and torch.equal(video, table.item_video[items])
    padded = [[2, 5, 8, 8, 8], [12, 15, 18, 18, 18]]  # every 3rd frame, then the last repeated
    starts = {0: collections.Counter(), 1: collections.Counter()}
    for v, clip in zip(video.tolist(), frames.tolist()):
        starts[v][clip[0]] += 1
        if v == 0:
            assert inside_one_sequence(clip) and clip == list(range(clip[0], clip[0] + 13, 3))
        else:
            assert clip in padded
    assert sorted(starts[0]) == table.starts[:46].tolist()
    # 2 of the 4 items are video 0's; chi-square against uniform (0.1 % critical value for 45 dof: 80.1)
    expected = 4000 / 46
    assert sum((count - expected) ** 2 / expected for count in starts[0].values()) < 80.1
    assert abs(starts[1][2] / 4000 - 7 / 15) < 0.03  # a short subsequence weighs its frames
    again = table.draw(items, torch.Generator().manual_seed(0))
    assert torch.equal(again[0], frames[:, 0])  # the same generator state, the same starts


def test_clip_table_fixed_windows_are_evenly_spaced_and_nothing_is_drawn():
    table = ClipTable.build(TABLE_SEGMENTS, TemporalSampling(step=3, num_frames=5), clips_per_video=2, random=False)
    # video 0: 46 starts, positions 11 and 34 -> starts 21 and 60 + 16; video 1: one start per short subsequence
    assert table.windows.tolist() == [[21, 34], [76, 89], [2, 9], [12, 20]]
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    _, frames = table.frame_indices(torch.tensor([3, 0]), generator)
    assert frames.tolist() == [[12, 15, 18, 18, 18], [21, 24, 27, 30, 33]]
    assert torch.equal(generator.get_state(), state)


def test_the_datasets_items_are_its_tables_clips(prepared):
    unchanged = get_train_transforms(2, flip_p=0.0, rotation=0.0, reverse_p=0.0)  # random clips, as they are
    for transform, clips_per_video in ((get_test_transforms(2), 4), (unchanged, 3)):
        dataset = KTHActionDataset(prepared, split="val", transform=transform, max_frames=5, img_size=SIZE,
                                   clips_per_video=clips_per_video)
        table = dataset.clip_table
        assert table.random == dataset.random_clips and table.sampling is dataset.sampler
        assert dataset.windows == [tuple(w) for w in table.windows.tolist()] and len(dataset.windows) == len(dataset)
        assert table.item_video.tolist() == [v for v, _ in dataset.clips]
        for index in range(len(dataset)):
            torch.manual_seed(index)
            frames = frame_indices(dataset[index][0])
            torch.manual_seed(index)  # the global generator: the draw __getitem__ made
            _, expected = table.frame_indices(torch.tensor([index]))
            assert frames == expected[0].tolist()


def test_evenly_spaced_positions_are_centred():
    assert evenly_spaced(54, 4) == [6, 20, 33, 47]
    assert evenly_spaced(52, 1) == [26] and evenly_spaced(1, 3) == [0, 0, 0]


# ---------------------------------------------------------------- padding

def test_short_sequences_are_padded_with_the_last_frame_and_counted(tmp_path):
    videos = standard_videos(persons=(15,), scenarios=(1,))
    videos[video_id(15, "boxing", 1)] = {"num_frames": 30, "sequences": [[2, 9], [12, 20]]}     # all short
    videos[video_id(15, "running", 1)] = {"num_frames": 30, "sequences": [[2, 9], [10, 29]]}    # one fits
    root = write_prepared(tmp_path, videos)
    with pytest.warns(UserWarning, match=r"1 of 6 videos of split 'val' have no 19 frames in a row within an "
                                          r"annotated subsequence \(a clip of 10 frames, one every 2\); "
                                          r"their 2 clips are padded"):
        dataset = KTHActionDataset(root, split="val", transform=get_test_transforms(2), max_frames=10,
                                   img_size=SIZE, clips_per_video=2)
    assert dataset.num_padded == 2
    boxing = [v["video_id"] for v in dataset.videos].index(video_id(15, "boxing", 1))
    clips = [dataset[i][0] for i, (v, _) in enumerate(dataset.clips) if v == boxing]
    # 2 clips over the two short subsequences (starts 2 and 12): every 2nd frame, then the last repeated
    assert [frame_indices(c) for c in clips] == [[2, 4, 6, 8] + [8] * 6, [12, 14, 16, 18] + [18] * 6]
    running = [v["video_id"] for v in dataset.videos].index(video_id(15, "running", 1))
    assert all(frame_indices(dataset[i][0])[0] == 10 for i, (v, _) in enumerate(dataset.clips) if v == running)

    with pytest.warns(UserWarning, match="padded"):
        train = KTHActionDataset(root, split="val", transform=get_train_transforms(2, reverse_p=0.0, rotation=0.0),
                                 max_frames=10, img_size=SIZE, clips_per_video=3)
    assert train.num_padded == 3
    torch.manual_seed(0)
    for i, (v, _) in enumerate(train.clips):
        indices = frame_indices(train[i][0])
        if v == boxing:
            assert indices in ([2, 4, 6, 8] + [8] * 6, [12, 14, 16, 18] + [18] * 6)


def test_no_warning_when_every_video_fits(prepared):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dataset = KTHActionDataset(prepared, split="val", transform=get_train_transforms(3), img_size=SIZE)
    assert dataset.num_padded == 0


# ---------------------------------------------------------------- metadata and collation

def test_meta_collates_through_a_dataloader(prepared):
    dataset = KTHActionDataset(prepared, split="test", transform=get_test_transforms(2), max_frames=5,
                               img_size=SIZE, clips_per_video=2, return_meta=True)
    frames, label, meta = dataset[3]
    assert meta == {"video_id": dataset.videos[1]["video_id"], "group": 17, "person": 17,
                    "scenario": dataset.videos[1]["scenario"], "clip": 1}
    frames, labels, meta = next(iter(DataLoader(dataset, batch_size=6, shuffle=False)))
    assert frames.shape == (6, 5, 1, SIZE, SIZE) and labels.dtype == torch.int64
    assert meta["video_id"] == [dataset.videos[v]["video_id"] for v, _ in dataset.clips[:6]]
    assert meta["person"].tolist() == meta["group"].tolist() == [17] * 6 and meta["clip"].tolist() == [0, 1] * 3
    assert labels.tolist() == [dataset.labels[v] for v, _ in dataset.clips[:6]]


# ---------------------------------------------------------------- the PNG layout

def test_png_tree_without_index(tmp_path):
    videos = {video_id(p, a, 1): {"num_frames": 12, "sequences": [[3, 5]]} for p in (1, 15) for a in ACTIONS}
    root = write_prepared(tmp_path, videos, png=True, index=False)
    with warnings.catch_warnings(record=True) as caught:  # a course-style folder: the course's call works
        warnings.simplefilter("always")
        course = KTHActionDataset(root_dir=str(root), split='train', transform=get_train_transforms(slicing_step=2),
                                  max_frames=10, img_size=(64, 64))
    messages = " | ".join(str(w.message) for w in caught)
    assert "ignored 1 entries that are not KTH video folders (cache)" in messages
    assert "6 of 6 videos of split 'train' have no 19 frames in a row" in messages
    assert len(course) == 6 and course.num_padded == 6  # 12 frames < 19: padded
    assert course[0][0].shape == (10, 1, 64, 64)
    (root / "README.txt").write_text("not a video")
    (root / "walking" / "notes.txt").write_text("not a video")
    with pytest.warns(UserWarning, match=r"ignored 3 entries that are not KTH video folders"):  # + cache/
        dataset = KTHActionDataset(root, split="val", transform=get_test_transforms(1), max_frames=4,
                                   img_size=SIZE)
    assert len(dataset) == 6 and [v["action"] for v in dataset.videos] != []
    assert all(v["sequences"] == [[0, 12]] for v in dataset.videos)  # whole video
    assert frame_indices(dataset[0][0]) == [4, 5, 6, 7]  # the middle of starts 0..8
    assert sorted(dataset.labels) == list(range(6))


def test_png_tree_missing_class_folder(tmp_path):
    videos = {video_id(15, a, 1): {"num_frames": 3, "sequences": [[0, 3]]} for a in ACTIONS if a != "running"}
    root = write_prepared(tmp_path, videos, png=True, index=False)
    with pytest.raises(FileNotFoundError, match=r"running: class folder missing"):
        KTHActionDataset(root, split="val")


# ---------------------------------------------------------------- errors

def test_missing_and_empty_root(tmp_path):
    for root in (tmp_path / "nowhere", tmp_path):
        with pytest.raises(FileNotFoundError) as error:
            KTHActionDataset(root)
        message = str(error.value)
        assert "\n" not in message and str(root) in message
        assert "python -m src.data download --root data/kth_raw" in message
        assert "python -m src.data prepare --raw data/kth_raw" in message and "python -m src.data.synthetic" in message
    (tmp_path / "something").mkdir()
    with pytest.raises(FileNotFoundError, match="neither a prepared dataset"):
        KTHActionDataset(tmp_path)


def test_unknown_split(prepared):
    with pytest.raises(ValueError, match=r"unknown split 'validation': use one of train, val, test, trainval"):
        KTHActionDataset(prepared, split="validation")
    with pytest.raises(ValueError, match=r"unknown split 'dev'"):
        KTHActionDataset(prepared, split="dev", persons=[1])
    assert SPLITS == ("train", "val", "test", "trainval")


def test_missing_cache_file(tmp_path):
    root = write_prepared(tmp_path, standard_videos(persons=(15,), scenarios=(1,)))
    (root / "cache" / f"{video_id(15, 'jogging', 1)}.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"person15_jogging_d1\.npy.*re-run 'python -m src.data prepare"):
        KTHActionDataset(root, split="val")


def test_split_without_videos_and_broken_index(tmp_path):
    root = write_prepared(tmp_path, standard_videos(persons=(1,), scenarios=(1,)))
    with pytest.raises(ValueError, match=r"no videos of persons \[17, .*the data holds persons \[1\]"):
        KTHActionDataset(root, split="test")
    (root / "index.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"index.json: not a prepared-dataset index"):
        KTHActionDataset(root, split="train")


@pytest.mark.parametrize("case", ["another shape", "another dtype", "fewer frames", "truncated", "not npy"])
def test_a_cache_file_that_disagrees_with_the_index_is_named(tmp_path, case):
    root = write_prepared(tmp_path, standard_videos(persons=(15,), scenarios=(1,)))
    path = root / "cache" / f"{video_id(15, 'jogging', 1)}.npy"
    frames = np.load(path)
    if case == "another shape":
        np.save(path, np.zeros((5, 32, 32), np.uint8))
    elif case == "another dtype":
        np.save(path, frames.astype(np.float32))
    elif case == "fewer frames":
        np.save(path, frames[:-1])
    elif case == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    else:
        path.write_text("not an array")
    with pytest.raises(ValueError) as error:
        KTHActionDataset(root, split="val", img_size=SIZE)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert f"re-run 'python -m src.data prepare --raw DIR --out {root}'" in message
    if case in ("another shape", "another dtype", "fewer frames"):
        assert f"{root / 'index.json'} says uint8 [{NUM_FRAMES}, {SIZE}, {SIZE}]" in message


@pytest.mark.parametrize("break_index", [
    lambda index: index["videos"][2].pop("num_frames"),
    lambda index: index.pop("size"),
    lambda index: index["videos"][0].update({"class": "dancing"})], ids=["num_frames", "size", "class"])
def test_an_index_without_a_key_is_named(tmp_path, break_index):
    root = write_prepared(tmp_path, standard_videos(persons=(15,), scenarios=(1,)))
    index = json.loads((root / "index.json").read_text())
    break_index(index)
    (root / "index.json").write_text(json.dumps(index))
    index_path = re.escape(str(root / "index.json"))
    with pytest.raises(ValueError, match=rf"^{index_path}: not a prepared-dataset index \(.*\); re-run"):
        KTHActionDataset(root, split="val", img_size=SIZE)


def test_a_broken_png_is_named(tmp_path):
    videos = {video_id(p, a, 1): {"num_frames": 3, "sequences": [[0, 3]]} for p in (15,) for a in ACTIONS}
    root = write_prepared(tmp_path, videos, png=True, index=False)
    png = root / "boxing" / video_id(15, "boxing", 1) / "image-0002.png"
    png.write_bytes(png.read_bytes()[:30])
    with pytest.raises(ValueError, match=rf"^{re.escape(str(png))}: not a readable image"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        KTHActionDataset(root, split="val", img_size=SIZE)


# ---------------------------------------------------------------- the tiny synthetic twin

def test_tiny_twin_integration(tiny_prepared):
    transform = get_train_transforms(slicing_step=3)
    for split in ("train", "val", "test"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # short videos of the tiny twin are padded: checked below
            dataset = KTHActionDataset(tiny_prepared, split=split, transform=transform, max_frames=10,
                                       clips_per_video=2)
        assert {v["person"] for v in dataset.videos} <= set(kth_persons("course")[split])
        frames, labels = next(iter(DataLoader(dataset, batch_size=4, shuffle=True)))
        assert frames.shape == (4, 10, 1, 64, 64) and frames.dtype == torch.float32
        assert 0.0 <= frames.min() and frames.max() <= 1.0 and frames.std() > 0
        assert labels.min() >= 0 and labels.max() < 6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = KTHActionDataset(tiny_prepared, split="trainval", transform=get_test_transforms(3), max_frames=10,
                                   clips_per_video=3, return_meta=True)
    assert sorted(set(dataset.labels)) == list(range(6))
    short = [all(end - start < 28 for start, end in v["sequences"]) for v in dataset.videos]
    assert dataset.num_padded == 3 * sum(short)
    for i in range(0, len(dataset), max(1, len(dataset) // 12)):
        frames, label, meta = dataset[i]
        video_index, _ = dataset.clips[i]
        video = dataset.videos[video_index]
        assert meta["video_id"] == video["video_id"] and label == ACTIONS.index(video["action"])
        start, end = dataset.windows[i]  # a fixed clip lies in one annotated sequence ...
        assert any(a <= start < end <= b for a, b in video["sequences"])
        taken = dataset.video_frames[video_index][start:end:3]  # ... and holds its every 3rd frame
        expected = torch.cat([taken, taken[-1:].expand(10 - len(taken), -1, -1, -1)])
        torch.testing.assert_close(frames, expected.float() / 255, rtol=0, atol=1e-6)


# ---------------------------------------------------------------- the real KTH samples

def test_real_samples(kth_samples, tmp_path):
    from src.data.prepare import prepare
    prepare(kth_samples, tmp_path, workers=1, write_png=False)
    dataset = KTHActionDataset(tmp_path, split="trainval", transform=get_test_transforms(3), max_frames=10,
                               clips_per_video=4, return_meta=True)
    frame_counts = {v["video_id"]: len(f) for v, f in zip(dataset.videos, dataset.video_frames)}
    assert frame_counts == {"person01_boxing_d2": 390, "person01_handclapping_d1": 378,
                            "person01_handclapping_d2": 550, "person01_jogging_d1": 415,
                            "person03_boxing_d4": 512, "person04_boxing_d1": 328}
    assert dataset.num_padded == 0 and len(dataset) == 6 * 4
    for i in range(len(dataset)):  # fixed clips lie inside the official 00sequences.txt ranges
        start, end = dataset.windows[i]
        sequences = dataset.videos[dataset.clips[i][0]]["sequences"]
        assert len(sequences) == 4 and any(a <= start < end <= b for a, b in sequences)
    frames, label, meta = dataset[0]
    assert frames.shape == (10, 1, 64, 64) and meta["video_id"] == "person01_boxing_d2"
    assert label == ACTIONS.index("boxing") and frames.std() > 0.02
    with pytest.raises(ValueError, match=r"no videos of persons \[17, .*the data holds persons \[1, 3, 4\]"):
        KTHActionDataset(tmp_path, split="test")


# ---------------------------------------------------------------- colour

def test_a_colour_cache_loads_in_colour_and_as_gray(tmp_path, caplog):
    root = write_prepared(tmp_path, standard_videos(persons=(15,), scenarios=(1,)), channels=3)
    colour = VideoClipDataset(root, split="val", max_frames=4, img_size=SIZE)  # channels auto: the data's
    assert colour.channels == 3 and colour.video_frames[0].shape == (NUM_FRAMES, 3, SIZE, SIZE)
    assert VideoClipDataset(root, split="val", max_frames=4, img_size=SIZE, channels=3).channels == 3
    frames, _ = colour[0]
    assert frames.shape == (4, 3, SIZE, SIZE) and frames.dtype == torch.float32
    assert frame_indices(frames) == [65, 66, 67, 68]  # starts 10..36 and 60..96: the middle one is 60 + (32 - 27)
    np.testing.assert_allclose((frames[:, 1] - frames[:, 0]).numpy() * 255, 40, atol=1e-3)  # channel 1: t + 40
    with caplog.at_level("WARNING", logger="src"):
        gray = VideoClipDataset(root, split="val", max_frames=4, img_size=SIZE, channels=1)  # converted at load
        VideoClipDataset(root, split="val", max_frames=4, img_size=SIZE, channels=1)
    assert gray.channels == 1 and gray.video_frames[0].shape == (NUM_FRAMES, 1, SIZE, SIZE)
    said = [r.getMessage() for r in caplog.records if "converted to grayscale" in r.getMessage()]
    assert said == [f"warning: data.channels: 1 (grayscale), but {root / 'index.json'} holds colour frames "
                    f"(channels 3): converted to grayscale at load; data.channels auto keeps the colour"]  # once
    expected = v2.functional.rgb_to_grayscale(colour.video_frames[0])
    assert torch.equal(gray.video_frames[0], expected)
    assert gray[0][0].shape == (4, 1, SIZE, SIZE)


def test_a_gray_cache_is_refused_in_colour(prepared):
    with pytest.raises(ValueError) as error:
        VideoClipDataset(prepared, split="val", img_size=SIZE, channels=3)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"data.channels: 3 (colour), but {prepared / 'index.json'} "
                                                      f"holds grayscale frames (channels 1)")
    assert "--channels 3" in message and "data.channels auto" in message
    assert VideoClipDataset(prepared, split="val", img_size=SIZE).channels == 1  # auto: the data's
    with pytest.raises(ValueError, match=r"^data.channels: 2 is not a number of channels"):
        VideoClipDataset(prepared, split="val", channels=2)


# ---------------------------------------------------------------- protocols, and the other layouts

@pytest.mark.parametrize("layout, protocol, expected", [
    ("folder", {}, "random"), ("folder+groups", {"split": "kfold", "folds": 4, "fold": 2}, "kfold"),
    ("ucf101", {}, "given"), ("ucf101", {"split": "given", "fold": 2}, "given"), ("hmdb51", {}, "given"),
    ("hmdb51", {"split": "random", "test_fraction": 0.25}, "random")])
def test_the_protocol_splits_each_layout_by_group(layouts, layout, protocol, expected):
    index = json.loads((layouts[layout] / "index.json").read_text())
    sets, groups = {}, {}
    for split in ("train", "val", "test"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the twin's short subsequences
            sets[split] = VideoClipDataset(layouts[layout], split=split, protocol=protocol, max_frames=4,
                                           img_size=SIZE, return_meta=True)
        dataset = sets[split]
        assert dataset.classes == index["classes"] and dataset.split_info.protocol == expected
        assert dataset.split_info.video_ids[split] == [v["video_id"] for v in dataset.videos]
        assert dataset.groups == [v["group"] for v in dataset.videos]
        assert all(isinstance(group, str) for group in dataset.groups)
        assert dataset.labels == [index["classes"].index(v["class"]) for v in dataset.videos]
        groups[split] = set(dataset.groups)
        frames, label, meta = dataset[0]
        assert frames.shape == (4, 1, SIZE, SIZE) and 0 <= label < len(index["classes"])
        assert meta == {"video_id": dataset.videos[0]["video_id"], "group": dataset.groups[0], "clip": 0}
    assert not groups["train"] & groups["val"] and not groups["val"] & groups["test"]
    assert not groups["train"] & groups["test"]
    assert set(sets["train"].labels) == set(range(len(index["classes"])))  # every class trains
    if layout == "ucf101":
        assert groups["test"] == ({"g17"} if protocol.get("fold", 1) == 1 else {"g01"})
    trainval = VideoClipDataset(layouts[layout], split="trainval", protocol=protocol, max_frames=4, img_size=SIZE)
    assert {v["video_id"] for v in trainval.videos} == {v["video_id"] for s in ("train", "val") for v in sets[s].videos}


def test_kth_protocols_are_refused_on_a_folder(layouts):
    with pytest.raises(SplitError, match=r"^data.split: schuldt2004 splits KTH's persons, and this data is folder"):
        VideoClipDataset(layouts["folder"], split="train", protocol={"split": "schuldt2004"})


def test_a_protocol_refuses_what_the_course_call_loads(tmp_path):
    """The course's call (no protocol) loads one part of a partial KTH; the trainer's (protocol=) refuses a
    split that cannot train or be measured."""
    root = write_prepared(tmp_path, standard_videos(persons=(1, 15), scenarios=(1,)))
    assert len(KTHActionDataset(root, split="train", img_size=SIZE)) == 6
    with pytest.raises(SplitError, match=r"^data.split: course leaves the test split empty"):
        KTHActionDataset(root, split="train", img_size=SIZE, protocol={})
    schuldt = VideoClipDataset(tiny_kth := write_prepared(tmp_path / "all", standard_videos(persons=(1, 2, 11, 22))),
                               split="test", img_size=SIZE, protocol={"split": "schuldt2004"})
    assert set(schuldt.groups) == {2, 22} and schuldt.split_info.groups == {"train": [11], "val": [1], "test": [2, 22]}
    assert VideoClipDataset(tiny_kth, split="val", img_size=SIZE, protocol={"split": "schuldt2004"}).groups[0] == 1
