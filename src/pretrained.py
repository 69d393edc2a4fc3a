"""Pretrained torchvision weights for a 1-channel input.

torchvision keeps downloaded weights in ``torch.hub.get_dir()/checkpoints/``;
:func:`load_cached_weights` reads them from there, and :func:`sum_over_input_channels`
turns an RGB first-layer kernel into one for grayscale frames. Used by both
``src.classifier`` (ResNet18) and ``src.r2plus1d`` (torchvision's r2plus1d_18).
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision


def load_cached_weights(weights: torchvision.models.WeightsEnum) -> dict[str, torch.Tensor]:
    """The state dict of torchvision ``weights``, from the TORCH_HOME cache only.

    torchvision caches its weights as ``torch.hub.get_dir()/checkpoints/<file of the url>``.
    This machine may be offline, so a missing file is a clear error instead of a download
    attempt that hangs.
    """
    file_name = Path(urlparse(weights.url).path).name
    cache_dir = Path(torch.hub.get_dir()) / "checkpoints"
    if not (cache_dir / file_name).is_file():
        raise FileNotFoundError(
            f"pretrained weights {weights} not found: put {file_name} (from {weights.url}) into "
            f"{cache_dir}/ (the cache under TORCH_HOME), or set model.pretrained: false")
    return weights.get_state_dict(progress=False, map_location="cpu")


def sum_over_input_channels(rgb_weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Adapt a first-layer kernel trained on RGB to ``in_channels`` channels.

    ``rgb_weight`` (out, 3, *kernel) -> (out, in_channels, *kernel): the colour channels are
    summed, so that a gray image (R = G = B) gets the same response; with more than one
    input channel the sum is shared out equally.
    """
    gray = rgb_weight.sum(dim=1, keepdim=True)
    return gray.repeat_interleave(in_channels, dim=1) / in_channels
