"""Tests for src/data/augment.py: reversal, per-clip spatial augmentation, the course's clip request,
and the one recipe (the config's augment: section) of the per-item and the batched path."""
import inspect

import pytest
import torch
from torchvision.transforms import v2

from src.config import load_config
from src.data.augment import (
    AUGMENT_DEFAULTS,
    ClipBatchAugmentation,
    ClipTransform,
    RandomTemporalReversal,
    get_test_transforms,
    get_train_transforms,
)


def indexed_clip(num_frames: int, size: int = 16) -> torch.Tensor:
    """uint8 [num_frames, 1, size, size] whose frame t has every pixel equal to t."""
    return torch.arange(num_frames, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, size, size).clone()


def frame_indices(clip: torch.Tensor) -> list[int]:
    """Read back which frames of an :func:`indexed_clip` a clip holds (from its centre pixel)."""
    centre = clip[:, 0, clip.shape[-2] // 2, clip.shape[-1] // 2]
    if centre.is_floating_point():
        centre = (centre * 255).round()
    return centre.long().tolist()


def asymmetric_clip(num_frames: int = 6, size: int = 32) -> torch.Tensor:
    """uint8 [num_frames, 1, size, size], the same asymmetric picture in every frame."""
    picture = torch.zeros(1, size, size, dtype=torch.uint8)
    picture[:, 4:12, 2:10] = 255    # a block near the top left
    picture[:, 20:28, 18:22] = 128  # a bar lower right
    return picture.expand(num_frames, -1, -1, -1).clone()


# ---------------------------------------------------------------- the course's clip request

def test_transforms_carry_the_clip_request_and_keep_every_frame():
    """Which frames make a clip is the dataset's (tests/test_dataset.py): the transforms only
    carry the course's slicing_step / max_frames / random_clips and keep the frames they get."""
    train = get_train_transforms(slicing_step=4)
    assert isinstance(train, ClipTransform) and isinstance(train, v2.Compose)
    assert (train.slicing_step, train.max_frames, train.random_clips) == (4, None, True)
    test = get_test_transforms(2, 7)
    assert (test.slicing_step, test.max_frames, test.random_clips) == (2, 7, False)
    assert get_train_transforms().slicing_step is None  # the dataset's own
    assert "slicing_step=4" in repr(train) and "RandomClipRotation" in repr(train)
    clip = indexed_clip(12)
    torch.manual_seed(0)
    assert frame_indices(get_train_transforms(slicing_step=4, rotation=0.0, reverse_p=0.0)(clip)) == list(range(12))
    out = test(clip)
    assert out.shape == (12, 1, 16, 16) and frame_indices(out) == list(range(12))


# ---------------------------------------------------------------- reversal

def test_temporal_reversal_always_and_never():
    clip = indexed_clip(5)
    assert frame_indices(RandomTemporalReversal(p=1.0)(clip)) == [4, 3, 2, 1, 0]
    assert frame_indices(RandomTemporalReversal(p=0.0)(clip)) == [0, 1, 2, 3, 4]


def test_train_transform_reverses_about_30_percent_of_clips():
    transform = get_train_transforms(slicing_step=1, max_frames=4, flip_p=0.0, rotation=0.0)
    clip = indexed_clip(4)  # exactly one clip fits: only the reversal is random
    torch.manual_seed(0)
    reversed_count = sum(frame_indices(transform(clip)) == [3, 2, 1, 0] for _ in range(2000))
    # Binomial(2000, 0.3): mean 600, std 20.5
    assert 520 < reversed_count < 680


# ---------------------------------------------------------------- spatial augmentation

def test_train_transform_same_flip_and_rotation_for_every_frame():
    clip = asymmetric_clip(num_frames=6)
    transform = get_train_transforms(slicing_step=1, max_frames=6, reverse_p=0.0)
    torch.manual_seed(0)
    outputs = [transform(clip) for _ in range(20)]
    for out in outputs:
        assert out.shape == (6, 1, 32, 32) and out.dtype == torch.float32
        assert 0.0 <= out.min() and out.max() <= 1.0
        assert all(torch.equal(out[0], frame) for frame in out)
    # and it really augments: the first frames differ from clip to clip, and some are flipped
    assert len({tuple(out[0].flatten().tolist()) for out in outputs}) > 10
    left_heavier = [out[0, 0, :, :16].sum() > out[0, 0, :, 16:].sum() for out in outputs]
    assert any(left_heavier) and not all(left_heavier)


def test_train_transform_flip_and_rotation_parameters():
    clip = asymmetric_clip()
    identity = get_train_transforms(max_frames=6, flip_p=0.0, rotation=0.0, reverse_p=0.0)(clip)
    torch.testing.assert_close(identity, clip.float() / 255)
    flipped = get_train_transforms(max_frames=6, flip_p=1.0, rotation=0.0, reverse_p=0.0)(clip)
    torch.testing.assert_close(flipped, clip.flip(-1).float() / 255)


def test_train_transform_is_reproducible_under_manual_seed():
    clip, transform = indexed_clip(40, size=32), get_train_transforms(slicing_step=2, max_frames=5)
    torch.manual_seed(3)
    first = [transform(clip) for _ in range(5)]
    torch.manual_seed(3)
    second = [transform(clip) for _ in range(5)]
    assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_test_transform_is_deterministic_without_augmentation():
    clip = indexed_clip(30)
    transform = get_test_transforms(slicing_step=4, max_frames=5)
    out = transform(clip)
    assert out.dtype == torch.float32 and out.shape == (30, 1, 16, 16)  # the frames it gets, all of them
    assert torch.equal(out, transform(clip))
    torch.testing.assert_close(out, clip.float() / 255)


# ---------------------------------------------------------------- ClipBatchAugmentation (the trainer's path)

N_DRAWS = 20000


def test_batch_flip_and_reversal_rates():
    augment = ClipBatchAugmentation(flip_p=0.5, rotation=25.0, reverse_p=0.3)
    params = augment.draw(N_DRAWS, torch.Generator().manual_seed(0))
    # Binomial(20000, p): std 70.7 (p=0.5) and 64.8 (p=0.3); bounds at 5 std
    assert abs(int(params["flip"].sum()) - 10000) < 354
    assert abs(int(params["reverse"].sum()) - 6000) < 324
    # the three draws are independent of each other (no shared uniform)
    both = int((params["flip"] & params["reverse"]).sum())
    assert abs(both - 3000) < 5 * (N_DRAWS * 0.15 * 0.85) ** 0.5


def test_batch_angles_are_uniform_within_the_range():
    angle = ClipBatchAugmentation(rotation=25.0).draw(N_DRAWS, torch.Generator().manual_seed(1))["angle"]
    assert angle.min() >= -25.0 and angle.max() <= 25.0
    assert angle.min() < -24.9 and angle.max() > 24.9  # the whole range is used
    # Kolmogorov-Smirnov against U(-25, 25): the 0.1 % critical value is 1.95 / sqrt(n)
    empirical = torch.arange(1, N_DRAWS + 1, dtype=torch.float64) / N_DRAWS
    uniform = (angle.double().sort().values + 25.0) / 50.0
    assert (empirical - uniform).abs().max() < 1.95 / N_DRAWS ** 0.5


def test_batch_flip_and_rotation_reproduce_torchvision_v2():
    augment = ClipBatchAugmentation(reverse_p=0.0)
    clips = torch.rand(12, 3, 1, 32, 32)
    params = augment.draw(12, torch.Generator().manual_seed(2))
    assert params["flip"].any() and not params["flip"].all()
    out = augment.apply(clips, params)
    for clip, result, flip, angle in zip(clips, out, params["flip"], params["angle"]):
        expected = v2.functional.horizontal_flip(clip) if flip else clip
        expected = v2.functional.rotate(expected, float(angle), interpolation=v2.InterpolationMode.BILINEAR)
        torch.testing.assert_close(result, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [1, 16, 64])
def test_batch_sampling_grid_is_affine_grids(size):
    augment = ClipBatchAugmentation()
    params = augment.draw(64, torch.Generator().manual_seed(5))
    theta = augment.affine(params["flip"], params["angle"])
    expected = torch.nn.functional.affine_grid(theta, [64, 3, size, size], align_corners=False)
    grid = ClipBatchAugmentation.sampling_grid(theta, size)
    assert grid.shape == expected.shape == (64, size, size, 2)
    torch.testing.assert_close(grid, expected, atol=1e-6, rtol=0)


def test_batch_frames_of_a_clip_share_one_transform():
    clips = asymmetric_clip(num_frames=6).float().div(255).expand(16, -1, -1, -1, -1)  # (16, 6, 1, 32, 32)
    out = ClipBatchAugmentation()(clips, torch.Generator().manual_seed(3))
    for clip in out:
        assert all(torch.equal(clip[0], frame) for frame in clip)
    assert len({tuple(clip[0].flatten().tolist()) for clip in out}) == 16  # one transform per clip


def test_batch_reversal_plays_the_clip_backwards():
    clips = indexed_clip(5).float().div(255).expand(200, -1, -1, -1, -1)
    augment = ClipBatchAugmentation(flip_p=0.0, rotation=0.0, reverse_p=0.3)
    params = augment.draw(200, torch.Generator().manual_seed(4))
    out = augment.apply(clips, params)
    for clip, reverse in zip(out, params["reverse"]):
        assert frame_indices(clip) == ([4, 3, 2, 1, 0] if reverse else [0, 1, 2, 3, 4])


def test_batch_augmentation_without_change_is_the_identity():
    clips = torch.rand(4, 3, 1, 16, 16)
    torch.testing.assert_close(ClipBatchAugmentation(0.0, 0.0, 0.0)(clips), clips)
    with pytest.raises(ValueError, match="flip_p"):
        ClipBatchAugmentation(flip_p=1.5)
    with pytest.raises(ValueError, match="rotation must be >= 0"):
        ClipBatchAugmentation(rotation=-1.0)


# ---------------------------------------------------------------- one recipe: the augment: section

def test_both_paths_take_the_same_names_and_fall_back_to_one_set_of_defaults():
    for function in (get_train_transforms, ClipBatchAugmentation):
        parameters = inspect.signature(function).parameters
        assert {name: parameters[name].default for name in AUGMENT_DEFAULTS} == AUGMENT_DEFAULTS
    assert AUGMENT_DEFAULTS == {"flip_p": 0.5, "rotation": 25.0, "reverse_p": 0.3}  # the course's values
    batch, per_clip = ClipBatchAugmentation(), get_train_transforms()
    assert (batch.flip_p, batch.rotation, batch.reverse_p) == (0.5, 25.0, 0.3)
    flip, rotation, reversal = per_clip.transforms[1:]
    assert (flip.p, rotation.degrees, reversal.p) == (0.5, (-25.0, 25.0), 0.3)
    with pytest.raises(ValueError, match="RandomTemporalReversal: p must be in"):
        get_train_transforms(reverse_p=2.0)


@pytest.mark.parametrize("flip_p", [0.0, 1.0])
def test_the_augment_section_drives_the_per_item_and_the_batched_path(flip_p):
    """flip_p 0 leaves every clip as it is on both paths, flip_p 1 flips every one (rotation and
    reversal off), from the same config."""
    config = load_config("configs/GRUCell.yaml", [f"augment.flip_p={flip_p}", "augment.rotation=0",
                                                  "augment.reverse_p=0"])
    assert config["augment"] == {"flip_p": flip_p, "rotation": 0, "reverse_p": 0}
    clip = asymmetric_clip(num_frames=4)                  # uint8 [4, 1, 32, 32]
    expected = clip.float() / 255
    if flip_p:
        expected = expected.flip(-1)
    assert not torch.equal(expected, expected.flip(-1))  # a flip shows
    transform, augmentation = get_train_transforms(**config["augment"]), ClipBatchAugmentation(**config["augment"])
    batch = (clip.float() / 255).expand(3, -1, -1, -1, -1)  # (3, 4, 1, 32, 32)
    for seed in range(5):
        torch.manual_seed(seed)
        assert torch.equal(transform(clip), expected)
        out = augmentation(batch, torch.Generator().manual_seed(seed))
        torch.testing.assert_close(out, expected.expand(3, -1, -1, -1, -1), atol=1e-5, rtol=0)
