"""How the frames of a clip look: flip, rotation, reversal, and the float conversion.

Here lives the augmentation side: what happens to a clip once its frames are chosen.
A clip transform takes a clip, a uint8 tensor ``[T, C, H, W]``, and returns it as float32
``[T, C, H, W]`` in ``[0, 1]``: the same frames, in the same number. Which frames make a
clip (start, ``slicing_step``, ``max_frames``, subsequences, padding) is the data side's:
:class:`src.data.dataset.KTHActionDataset` and its :class:`src.data.dataset.TemporalSampling`.

The course's call. ``get_train_transforms(slicing_step=2)`` and ``get_test_transforms(...)``
return a :class:`ClipTransform`: a ``v2.Compose`` of the per-clip transforms that also
*carries* the course's clip request as plain attributes (``slicing_step``, ``max_frames``,
``random_clips``: random clips for training, fixed ones for evaluation). It never uses
them itself; ``KTHActionDataset`` reads them once, at init, when it is given such a
transform, so ::

    KTHActionDataset(root, "train", transform=get_train_transforms(slicing_step=2))

gives the same clips as the data-side form ::

    KTHActionDataset(root, "train", slicing_step=2, random_clips=True, transform=get_train_transforms())

Spatial augmentations draw their parameters once per clip, so one flip and one angle
apply to every frame: :class:`RandomClipHorizontalFlip` and :class:`RandomClipRotation`
are ``v2.RandomHorizontalFlip`` and ``v2.RandomRotation`` (the same draws, the same
output) calling ``v2.functional`` on the clip seen as one image of T channels, which is
cheaper. All randomness comes from torch's global generator. A transform must not modify
its input in place: the dataset's clips may be views of its in-memory frames.

For the trainer's batches, :class:`ClipBatchAugmentation` applies the same augmentations to
a whole batch of clips at once.

One recipe, one set of names: ``flip_p`` (the probability of a horizontal flip), ``rotation``
(the angle is uniform in ``[-rotation, rotation]`` degrees) and ``reverse_p`` (the probability
of playing the clip backwards) are the keys of the config's ``augment:`` section
(configs/base.yaml) and the arguments of both :func:`get_train_transforms` and
:class:`ClipBatchAugmentation`, so ``get_train_transforms(**config["augment"])`` and
``ClipBatchAugmentation(**config["augment"])`` are the same recipe, per clip and per batch.
Without a config both fall back to :data:`AUGMENT_DEFAULTS`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2

AUGMENT_DEFAULTS = {"flip_p": 0.5, "rotation": 25.0, "reverse_p": 0.3}
"""The training augmentation when no config says otherwise (the course's): the defaults of
:func:`get_train_transforms` and :class:`ClipBatchAugmentation`. configs/base.yaml's ``augment:``
section holds the same values (tests/test_config.py checks that they agree)."""


class ClipTransform(v2.Compose):
    """``v2.Compose(transforms)`` for clips ``[T, C, H, W]`` that also carries the course's
    clip request for :class:`src.data.dataset.KTHActionDataset` (what
    :func:`get_train_transforms` and :func:`get_test_transforms` return).

    Args:
        transforms: the per-clip transforms, applied in order.
        slicing_step: the step between the frames of a clip, or None (the dataset's).
        max_frames: the frames per clip, or None (the dataset's).
        random_clips: the dataset's default for random (training) or fixed (evaluation) clips.

    The three are plain attributes that the dataset reads once at init; this transform
    never looks at them: called on a clip ``[T, C, H, W]`` it returns ``[T, C, H, W]``.
    """

    def __init__(self, transforms: Sequence[Callable], slicing_step: int | None = None,
                 max_frames: int | None = None, random_clips: bool = False):
        super().__init__(transforms)
        self.slicing_step = slicing_step
        self.max_frames = max_frames
        self.random_clips = random_clips

    def extra_repr(self) -> str:
        request = (f"  clips for the dataset: slicing_step={self.slicing_step}, max_frames={self.max_frames}, "
                   f"random_clips={self.random_clips}")
        return request + "\n" + super().extra_repr()


class RandomTemporalReversal(nn.Module):
    """Play the clip backwards (reverse dim 0 of ``[T, ...]``) with probability ``p``."""

    def __init__(self, p: float = AUGMENT_DEFAULTS["reverse_p"]):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomTemporalReversal: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) < self.p:
            return frames.flip(0)
        return frames

    def extra_repr(self) -> str:
        return f"p={self.p}"


class RandomClipHorizontalFlip(nn.Module):
    """Flip every frame of a clip ``[..., H, W]`` left-right, all or none, with probability
    ``p``: ``v2.RandomHorizontalFlip(p)`` (the same draw from the global generator, the same
    output) without its per-call dispatch, which costs more than the flip."""

    def __init__(self, p: float = AUGMENT_DEFAULTS["flip_p"]):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomClipHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if torch.rand(1) >= self.p:  # v2.RandomHorizontalFlip's draw
            return frames
        return v2.functional.horizontal_flip(frames)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class RandomClipRotation(nn.Module):
    """Rotate every frame of a float clip ``[T, C, H, W]`` by one angle drawn uniformly in
    ``[-degrees, degrees]`` (or ``degrees=(lo, hi)``), about the centre, bilinear, corners
    filled with zeros.

    ``v2.RandomRotation(degrees, interpolation=BILINEAR, fill=None)`` with the same draw from
    the global generator and the same output, bit for bit, but cheaper: the clip goes to
    ``v2.functional.rotate`` as one image of ``T * C`` channels (a view), so the grid is
    sampled once for all frames (``grid_sample`` on a batch of 1, not the grid expanded over
    T images), and without the transform's per-call dispatch.
    """

    def __init__(self, degrees: float | tuple[float, float]):
        super().__init__()
        if isinstance(degrees, (int, float)):
            if degrees < 0:
                raise ValueError(f"RandomClipRotation: degrees must be >= 0, got {degrees}")
            degrees = (-float(degrees), float(degrees))
        self.degrees = (float(degrees[0]), float(degrees[1]))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        angle = torch.empty(1).uniform_(self.degrees[0], self.degrees[1]).item()  # v2.RandomRotation's draw
        shape = frames.shape
        image = frames.reshape(-1, *shape[-2:])  # frames as channels
        # fill=None: corners fill with zeros by grid_sample's padding, without the extra mask
        # channel that fill=0 samples (that pass costs as much as the rotation itself)
        image = v2.functional.rotate(image, angle, interpolation=v2.InterpolationMode.BILINEAR, fill=None)
        return image.reshape(shape)

    def extra_repr(self) -> str:
        return f"degrees={list(self.degrees)}, interpolation=bilinear, fill=None"


def get_train_transforms(slicing_step: int | None = None, max_frames: int | None = None,
                         flip_p: float = AUGMENT_DEFAULTS["flip_p"], rotation: float = AUGMENT_DEFAULTS["rotation"],
                         reverse_p: float = AUGMENT_DEFAULTS["reverse_p"]) -> ClipTransform:
    """Training transform: one horizontal flip (``flip_p``) and one rotation (uniform in
    ``+-rotation`` degrees) per clip, then a temporal reversal (``reverse_p``): the recipe of the
    config's ``augment:`` section (``get_train_transforms(**config["augment"])``), by default
    :data:`AUGMENT_DEFAULTS`.

    ``[T, C, H, W]`` uint8 -> ``[T, C, H, W]`` float32 in [0, 1]. ``slicing_step`` and
    ``max_frames`` are the course's clip request, carried for ``KTHActionDataset`` with
    ``random_clips=True`` (None: the dataset's own; see :class:`ClipTransform`).
    """
    return ClipTransform([
        v2.ToDtype(torch.float32, scale=True),
        RandomClipHorizontalFlip(flip_p),
        RandomClipRotation(rotation),
        RandomTemporalReversal(reverse_p),
    ], slicing_step=slicing_step, max_frames=max_frames, random_clips=True)


def get_test_transforms(slicing_step: int | None = None, max_frames: int | None = None) -> ClipTransform:
    """Evaluation transform: no augmentation, ``[T, C, H, W]`` uint8 -> float32 in [0, 1].
    ``slicing_step`` and ``max_frames`` are the course's clip request, carried for
    ``KTHActionDataset`` with ``random_clips=False`` (fixed clips; see :class:`ClipTransform`)."""
    return ClipTransform([v2.ToDtype(torch.float32, scale=True)], slicing_step=slicing_step,
                         max_frames=max_frames, random_clips=False)


# --------------------------------------------------------------------------- batches of clips

class ClipBatchAugmentation:
    """The training augmentations of :func:`get_train_transforms`, for a whole batch of clips
    at once (what the trainer's :class:`src.data.batches.ClipBatches` uses).

    Per clip, drawn once and shared by all its frames: a horizontal flip with probability
    ``flip_p``, a rotation by an angle uniform in ``[-rotation, rotation]`` degrees (about the centre,
    bilinear, corners zero: ``v2.functional.rotate(..., BILINEAR, fill=None)``), and a
    temporal reversal with probability ``reverse_p``. Flip and rotation are one affine map
    per clip, applied by one ``grid_sample`` for the batch (its grid: :meth:`sampling_grid`), with a clip's
    frames as the channels of one image (so they share its grid).

    The draws come from the ``generator`` given to :meth:`draw` (CPU), not from torch's
    global one, so a batch source can make them reproducible per epoch and rank. The arguments
    are the config's ``augment:`` section (``ClipBatchAugmentation(**config["augment"])``), by
    default :data:`AUGMENT_DEFAULTS`.

        >>> augment = ClipBatchAugmentation()
        >>> clips = augment(torch.rand(32, 10, 1, 64, 64), torch.Generator().manual_seed(0))
    """

    def __init__(self, flip_p: float = AUGMENT_DEFAULTS["flip_p"], rotation: float = AUGMENT_DEFAULTS["rotation"],
                 reverse_p: float = AUGMENT_DEFAULTS["reverse_p"]):
        for name, p in (("flip_p", flip_p), ("reverse_p", reverse_p)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"ClipBatchAugmentation: {name} must be in [0, 1], got {p}")
        if rotation < 0:
            raise ValueError(f"ClipBatchAugmentation: rotation must be >= 0 (degrees), got {rotation}")
        self.flip_p, self.rotation, self.reverse_p = flip_p, float(rotation), reverse_p

    def draw(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The parameters of ``batch_size`` clips: ``{'flip': bool (B,), 'angle': float32 (B,)
        degrees, 'reverse': bool (B,)}``, on the CPU."""
        flip = torch.rand(batch_size, generator=generator) < self.flip_p
        angle = torch.rand(batch_size, generator=generator) * (2 * self.rotation) - self.rotation
        reverse = torch.rand(batch_size, generator=generator) < self.reverse_p
        return {"flip": flip, "angle": angle, "reverse": reverse}

    @staticmethod
    def affine(flip: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
        """``affine_grid``'s theta (B, 2, 3) float32: rotate by ``angle`` degrees
        (counter-clockwise, as ``v2.functional.rotate``) after flipping where ``flip``.

        theta maps an output point to the input point it samples (normalised coordinates,
        square frames): rotation by -angle, then x -> -x for flipped clips."""
        radians = torch.deg2rad(angle.double())
        cos, sin = torch.cos(radians), torch.sin(radians)
        sign = 1.0 - 2.0 * flip.double()  # -1 where flipped
        theta = torch.zeros(len(angle), 2, 3, dtype=torch.float64)
        theta[:, 0, 0], theta[:, 0, 1] = sign * cos, sign * -sin
        theta[:, 1, 0], theta[:, 1, 1] = sin, cos
        return theta.float()

    @staticmethod
    def sampling_grid(theta: torch.Tensor, size: int) -> torch.Tensor:
        """``F.affine_grid(theta, [B, C, size, size], align_corners=False)`` (B, size, size, 2), to
        within 3e-7, as the sum of an x part and a y part (one broadcast add): 3.7x faster on the CPU
        than affine_grid's batched matmul over (x, y, 1)."""
        coords = torch.linspace(-1 + 1 / size, 1 - 1 / size, size, device=theta.device)  # pixel centres
        along_x = theta[:, :, 0, None] * coords  # (B, 2, W): how the sampled point moves along an output row
        along_y = theta[:, :, 1, None] * coords + theta[:, :, 2, None]  # (B, 2, H): along a column, plus shift
        grid = torch.empty(len(theta), size, size, 2, device=theta.device)
        return torch.add(along_x.transpose(1, 2)[:, None], along_y.transpose(1, 2)[:, :, None], out=grid)

    def apply(self, clips: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Augment float clips ``(B, T, C, H, W)`` (H == W) with ``params`` from :meth:`draw`;
        returns a new tensor of the same shape, on the clips' device."""
        b, t, c, h, w = clips.shape
        if h != w:
            raise ValueError(f"ClipBatchAugmentation: frames must be square, got {h}x{w}")
        images = clips.reshape(b, t * c, h, w)
        if self.rotation > 0 or bool(params["flip"].any()):
            grid = self.sampling_grid(self.affine(params["flip"], params["angle"]).to(clips.device), h)
            images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        clips = images.reshape(b, t, c, h, w)
        reverse = params["reverse"].to(clips.device)
        if bool(params["reverse"].any()):
            clips = torch.where(reverse[:, None, None, None, None], clips.flip(1), clips)
        return clips

    def __call__(self, clips: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.apply(clips, self.draw(len(clips), generator))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(flip_p={self.flip_p}, rotation={self.rotation}, "
                f"reverse_p={self.reverse_p})")
