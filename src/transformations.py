"""Clip transforms for KTHActionDataset: temporal sampling, then spatial augmentation.

A transform takes one clip window, a uint8 tensor ``[T_window, 1, H, W]`` (frames
``0..T_window-1`` of a video, or of one of its annotated subsequences), and returns the
clip ``[T, 1, H, W]`` as float32 in ``[0, 1]``.

The temporal-sampling contract with :class:`src.dataloader.KTHActionDataset`:

- The dataset looks for a :class:`TemporalSampling` inside the transform (the transform
  itself, or anywhere in a ``Compose``). When its ``num_frames`` is None, the dataset
  fills it with ``max_frames``.
- ``random_start=True`` (training): for each item the dataset hands over a whole
  annotated subsequence (or the whole video) and the sampler draws the start.
- ``random_start=False`` (evaluation): the dataset cuts the window of clip ``k``
  (evenly spaced starts) and the sampler takes every ``step``-th frame from its first.
- A window shorter than the clip is padded by repeating the last frame taken.
- The window is a view of the dataset's in-memory frames: a transform must not modify
  its input in place.

Spatial augmentations draw their parameters once per clip, so one flip and one angle
apply to every frame: :class:`RandomClipHorizontalFlip` and :class:`RandomClipRotation`
are ``v2.RandomHorizontalFlip`` and ``v2.RandomRotation`` (the same draws, the same
output) calling ``v2.functional`` on the clip seen as one image of T channels, which is
cheaper. All randomness comes from torch's global generator.

The course call ``get_train_transforms(slicing_step=2)`` works as written.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms import v2


class TemporalSampling(nn.Module):
    """Take ``num_frames`` frames, every ``step``-th, from a clip window.

    Args:
        step: distance between two frames taken (the course's ``slicing_step``).
        num_frames: frames in the output clip; None lets the dataset fill it from
            its ``max_frames``.
        random_start: draw the first frame uniformly among the starts whose clip fits
            in the window (training); otherwise start at frame 0 (evaluation).

    Input ``[T_window, ...]``, output ``[num_frames, ...]``. A window shorter than
    ``(num_frames - 1) * step + 1`` frames starts at 0 and is padded by repeating the
    last frame taken.
    """

    def __init__(self, step: int = 1, num_frames: int | None = None, random_start: bool = True):
        super().__init__()
        if step < 1:
            raise ValueError(f"TemporalSampling: step must be >= 1, got {step}")
        if num_frames is not None and num_frames < 1:
            raise ValueError(f"TemporalSampling: num_frames must be >= 1, got {num_frames}")
        self.step = step
        self.num_frames = num_frames
        self.random_start = random_start

    def span(self, num_frames: int | None = None) -> int:
        """Frames of the window that one clip covers: ``(num_frames - 1) * step + 1``."""
        num_frames = self.num_frames if num_frames is None else num_frames
        if num_frames is None:
            raise ValueError("TemporalSampling: num_frames is not set (give it, or let the dataset fill it)")
        return (num_frames - 1) * self.step + 1

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.shape[0] == 0:
            raise ValueError("TemporalSampling: got an empty window (0 frames)")
        window_len, span = frames.shape[0], self.span()
        start = 0
        if self.random_start and window_len > span:
            start = int(torch.randint(0, window_len - span + 1, ()))
        clip = frames[start:start + span:self.step]
        if len(clip) < self.num_frames:  # too short: repeat the last frame taken
            clip = torch.cat([clip, clip[-1:].expand(self.num_frames - len(clip), *clip.shape[1:])])
        return clip

    def extra_repr(self) -> str:
        return f"step={self.step}, num_frames={self.num_frames}, random_start={self.random_start}"


class RandomTemporalReversal(nn.Module):
    """Play the clip backwards (reverse dim 0 of ``[T, ...]``) with probability ``p``."""

    def __init__(self, p: float = 0.5):
        super().__init__()
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

    def __init__(self, p: float = 0.5):
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


def find_temporal_sampling(transform) -> TemporalSampling | None:
    """The first :class:`TemporalSampling` in ``transform`` (itself or nested in a
    ``Compose``/``RandomApply``-like ``.transforms`` list), or None."""
    if isinstance(transform, TemporalSampling):
        return transform
    for child in getattr(transform, "transforms", None) or ():
        found = find_temporal_sampling(child)
        if found is not None:
            return found
    return None


def get_train_transforms(slicing_step: int = 1, max_frames: int | None = None, flip_p: float = 0.5,
                         rotation: float = 25.0, reverse_p: float = 0.3) -> v2.Compose:
    """Training transform: random temporal sampling, then one horizontal flip (``flip_p``)
    and one rotation (uniform in ``+-rotation`` degrees) per clip, then temporal
    reversal (``reverse_p``). ``max_frames=None``: the dataset's ``max_frames``.

    ``[T_window, 1, H, W]`` uint8 -> ``[max_frames, 1, H, W]`` float32 in [0, 1].
    """
    return v2.Compose([
        TemporalSampling(slicing_step, max_frames, random_start=True),
        v2.ToDtype(torch.float32, scale=True),
        RandomClipHorizontalFlip(flip_p),
        RandomClipRotation(rotation),
        RandomTemporalReversal(reverse_p),
    ])


def get_test_transforms(slicing_step: int = 1, max_frames: int | None = None) -> v2.Compose:
    """Evaluation transform: every ``slicing_step``-th frame from the window's first, no
    augmentation. ``[T_window, 1, H, W]`` uint8 -> ``[max_frames, 1, H, W]`` float32."""
    return v2.Compose([
        TemporalSampling(slicing_step, max_frames, random_start=False),
        v2.ToDtype(torch.float32, scale=True),
    ])


# --------------------------------------------------------------------------- batches of clips

class ClipBatchAugmentation:
    """The training augmentations of :func:`get_train_transforms`, for a whole batch of clips
    at once (what the trainer's :class:`src.clip_batches.ClipBatches` uses).

    Per clip, drawn once and shared by all its frames: a horizontal flip with probability
    ``flip_p``, a rotation by an angle uniform in ``[-degrees, degrees]`` (about the centre,
    bilinear, corners zero: ``v2.functional.rotate(..., BILINEAR, fill=None)``), and a
    temporal reversal with probability ``reverse_p``. Flip and rotation are one affine map
    per clip, applied by one ``affine_grid`` + ``grid_sample`` for the batch, with a clip's
    frames as the channels of one image (so they share its grid).

    The draws come from the ``generator`` given to :meth:`draw` (CPU), not from torch's
    global one, so a batch source can make them reproducible per epoch and rank.

        >>> augment = ClipBatchAugmentation()
        >>> clips = augment(torch.rand(32, 10, 1, 64, 64), torch.Generator().manual_seed(0))
    """

    def __init__(self, flip_p: float = 0.5, degrees: float = 25.0, reverse_p: float = 0.3):
        for name, p in (("flip_p", flip_p), ("reverse_p", reverse_p)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"ClipBatchAugmentation: {name} must be in [0, 1], got {p}")
        if degrees < 0:
            raise ValueError(f"ClipBatchAugmentation: degrees must be >= 0, got {degrees}")
        self.flip_p, self.degrees, self.reverse_p = flip_p, float(degrees), reverse_p

    def draw(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The parameters of ``batch_size`` clips: ``{'flip': bool (B,), 'angle': float32 (B,)
        degrees, 'reverse': bool (B,)}``, on the CPU."""
        flip = torch.rand(batch_size, generator=generator) < self.flip_p
        angle = torch.rand(batch_size, generator=generator) * (2 * self.degrees) - self.degrees
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

    def apply(self, clips: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Augment float clips ``(B, T, C, H, W)`` (H == W) with ``params`` from :meth:`draw`;
        returns a new tensor of the same shape, on the clips' device."""
        b, t, c, h, w = clips.shape
        if h != w:
            raise ValueError(f"ClipBatchAugmentation: frames must be square, got {h}x{w}")
        images = clips.reshape(b, t * c, h, w)
        if self.degrees > 0 or bool(params["flip"].any()):
            theta = self.affine(params["flip"], params["angle"]).to(clips.device)
            grid = F.affine_grid(theta, [b, t * c, h, w], align_corners=False)
            images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        clips = images.reshape(b, t, c, h, w)
        reverse = params["reverse"].to(clips.device)
        if bool(params["reverse"].any()):
            clips = torch.where(reverse[:, None, None, None, None], clips.flip(1), clips)
        return clips

    def __call__(self, clips: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.apply(clips, self.draw(len(clips), generator))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(flip_p={self.flip_p}, degrees={self.degrees}, "
                f"reverse_p={self.reverse_p})")
