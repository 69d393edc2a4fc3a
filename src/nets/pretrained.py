"""Pretrained torchvision weights for a 1-channel (grayscale) or 3-channel (RGB) input.

torchvision keeps its weights in ``torch.hub.get_dir()/checkpoints/`` (under TORCH_HOME).
:func:`load_weights` reads them from there and, when the file is not there yet, downloads
it the way torchvision's own weights API does (``torch.hub.download_url_to_file``, as
``load_state_dict_from_url`` calls it: a progress bar, a temp file renamed when complete, and the
SHA-256 prefix that the file name carries, e.g. ``resnet18-f37072fd.pth``, checked), giving up
after a short connection timeout with one line naming the file, the folder (``~/...`` under the
home folder) and the URL.
:func:`first_layer_weight` adapts an RGB first-layer kernel to the input's channels (as it is for 3,
:func:`sum_over_input_channels` for grayscale), and :func:`input_statistics` gives the per-channel
mean and std the weights were trained with (their averages for grayscale). Used by both
``src.nets.classifier`` (ResNet18) and ``src.nets.r2plus1d`` (r2plus1d_18).

The environment variable ``PRETRAINED_BASE_URL`` points the download at a mirror that
holds torchvision's file names (``$PRETRAINED_BASE_URL/resnet18-f37072fd.pth``).
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlparse

import torch
import torchvision

DOWNLOAD_TIMEOUT_S = 10.0  # seconds to connect (and between two reads) before giving up
BASE_URL_VARIABLE = "PRETRAINED_BASE_URL"


def weights_url(weights: torchvision.models.WeightsEnum) -> str:
    """Where ``weights`` are downloaded from: torchvision's URL, or the same file name under
    ``$PRETRAINED_BASE_URL`` when it is set."""
    base = os.environ.get(BASE_URL_VARIABLE)
    if not base:
        return weights.url
    return base.rstrip("/") + "/" + Path(urlparse(weights.url).path).name


def load_weights(weights: torchvision.models.WeightsEnum, download: bool = True, progress: bool = True,
                 timeout: float = DOWNLOAD_TIMEOUT_S) -> dict[str, torch.Tensor]:
    """The state dict of torchvision ``weights``, from the TORCH_HOME cache, downloaded first
    when it is not there (``download=True``).

    Raises:
        FileNotFoundError: one line naming the file, the cache folder and the URL, when the
            file is not cached and cannot be downloaded (offline, no answer within ``timeout``
            seconds, an HTTP error, or a file whose SHA-256 does not start with the prefix in
            its name; a failed download leaves nothing in the cache).
    """
    file_name = Path(urlparse(weights.url).path).name
    cache_dir = Path(torch.hub.get_dir()) / "checkpoints"
    url = weights_url(weights)
    shown = Path("~") / cache_dir.relative_to(Path.home()) if cache_dir.is_relative_to(Path.home()) else cache_dir
    how_to = (f"put {file_name} (from {url}) into {shown}/ (the cache under TORCH_HOME), "
              f"or set model.pretrained: false")
    if not (cache_dir / file_name).is_file():
        if not download:
            raise FileNotFoundError(f"pretrained weights {weights} not found: {how_to}")
        previous_timeout = socket.getdefaulttimeout()
        socket.setdefaulttimeout(timeout)  # urllib's urlopen inside torch.hub has no timeout of its own
        try:
            # what torch.hub.load_state_dict_from_url does, without its "Downloading ... to <absolute path>" print
            # (a notebook's committed output would carry the path) and without loading the file twice
            cache_dir.mkdir(parents=True, exist_ok=True)
            prefix = torch.hub.HASH_REGEX.search(file_name)
            torch.hub.download_url_to_file(url, str(cache_dir / file_name), progress=progress,
                                           hash_prefix=prefix.group(1) if prefix else None)
        except (URLError, OSError, RuntimeError) as e:  # no network, timeout, HTTP error, wrong hash
            reason = e.reason if isinstance(e, URLError) and not isinstance(e, HTTPError) else e
            raise FileNotFoundError(f"pretrained weights {weights} could not be downloaded "
                                    f"({str(reason).splitlines()[0]}): {how_to}") from None
        finally:
            socket.setdefaulttimeout(previous_timeout)
    return weights.get_state_dict(progress=False, map_location="cpu")


def load_cached_weights(weights: torchvision.models.WeightsEnum) -> dict[str, torch.Tensor]:
    """The state dict of ``weights`` from the TORCH_HOME cache only (no download); see :func:`load_weights`."""
    return load_weights(weights, download=False)


def sum_over_input_channels(rgb_weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Adapt a first-layer kernel trained on RGB to ``in_channels`` channels.

    ``rgb_weight`` (out, 3, *kernel) -> (out, in_channels, *kernel): the colour channels are
    summed, so that a gray image (R = G = B) gets the same response; with more than one
    input channel the sum is shared out equally.
    """
    gray = rgb_weight.sum(dim=1, keepdim=True)
    return gray.repeat_interleave(in_channels, dim=1) / in_channels


def first_layer_weight(rgb_weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """A first-layer kernel trained on RGB, for ``in_channels`` input channels: (out, 3, *kernel) ->
    (out, in_channels, *kernel). For 3 channels (RGB input) the kernel as it is; for any other count
    :func:`sum_over_input_channels`."""
    return rgb_weight.clone() if in_channels == 3 else sum_over_input_channels(rgb_weight, in_channels)


def input_statistics(weights: torchvision.models.WeightsEnum, in_channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-channel ``(mean, std)``, each (in_channels,), that frames in [0, 1] are normalised with
    for ``weights``: the RGB statistics of their torchvision transforms for 3 channels; for any other
    count (grayscale) their averages over the colour channels, rounded to 3 decimals (ImageNet
    0.449, 0.226; Kinetics-400 0.401, 0.222, the values the 1-channel models have always used)."""
    transforms = weights.transforms()
    mean, std = torch.tensor(transforms.mean), torch.tensor(transforms.std)
    if in_channels == 3:
        return mean, std
    return (torch.full((in_channels,), round(mean.mean().item(), 3)),
            torch.full((in_channels,), round(std.mean().item(), 3)))
