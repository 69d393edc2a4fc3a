"""Where the clips of a video start, and the clips themselves, by the dataset's own rules
(:class:`src.data.dataset.TemporalSampling`, :func:`src.data.dataset.evenly_spaced`)."""
from __future__ import annotations

import torch
from torchvision.transforms import v2

from src.data.dataset import TemporalSampling, evenly_spaced


def evenly_spaced_starts(num_frames: int, span: int, count: int) -> list[int]:
    """Starts of ``count`` windows of ``span`` frames spread over ``num_frames``: the formula of
    ``KTHActionDataset``'s fixed clips (centred; one clip takes the middle) over one segment."""
    return evenly_spaced(distinct_windows(num_frames, span), count)


def distinct_windows(num_frames: int, span: int) -> int:
    """How many windows of ``span`` frames start at distinct frames of ``num_frames`` (at least 1:
    a video shorter than one window has one, padded)."""
    return max(num_frames - span, 0) + 1


def sliding_starts(num_frames: int, span: int, stride: int) -> list[int]:
    """Starts of windows of ``span`` frames every ``stride`` frames; the last one ends at the video's end."""
    starts = list(range(0, distinct_windows(num_frames, span), stride))
    if starts[-1] + span < num_frames:
        starts.append(num_frames - span)
    return starts


def make_clips(frames: torch.Tensor, starts: list[int], sampling: TemporalSampling) -> torch.Tensor:
    """The clips starting at ``starts`` (N): uint8 frames (T, C, S, S) -> float32 (N, num_frames, C, S, S)
    in [0, 1], each taken by ``sampling`` from its window. Memory grows with N:
    :meth:`src.inference.predictor.Predictor.logits` calls it one batch at a time."""
    clips = torch.stack([sampling(frames[start:start + sampling.span]) for start in starts])  # uint8
    return v2.functional.to_dtype(clips, torch.float32, scale=True)
