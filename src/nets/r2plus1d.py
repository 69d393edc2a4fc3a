"""R(2+1)D: residual networks of factorised spatio-temporal convolutions.

Tran, Wang, Torresani, Ray, LeCun, Paluri, "A Closer Look at Spatiotemporal Convolutions
for Action Recognition", CVPR 2018 (arXiv 1711.11248).

A full t x d x d 3-D convolution from N_{i-1} to N_i channels is replaced by a spatial
1 x d x d convolution to M_i channels, BatchNorm, ReLU, and a temporal t x 1 x 1
convolution to N_i channels, with

    M_i = floor(t d^2 N_{i-1} N_i / (d^2 N_{i-1} + t N_i))

so that both have (about) the same number of parameters, while the factorised one has
an extra nonlinearity and is easier to optimise.

Two models, both taking clips (B, T, C, H, W) in [0, 1] like the ActionClassifier and
returning logits (B, num_classes):

* :class:`R2Plus1D`, small and sized for 64 x 64 clips of 10 frames (any number of channels);
* :class:`TorchvisionR2Plus1D`, torchvision's r2plus1d_18 (optionally with Kinetics-400
  weights from the TORCH_HOME cache), for 1 (grayscale) or 3 (RGB) input channels.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torchvision
from torchvision.models.video import R2Plus1D_18_Weights

from src.nets.pretrained import first_layer_weight, input_statistics, load_weights
from src.nets.registry import check_clips


def intermediate_channels(in_channels: int, out_channels: int, temporal_size: int = 3,
                          spatial_size: int = 3) -> int:
    """M_i of the paper: the width between the spatial and the temporal convolution.

    floor(t d^2 N_{i-1} N_i / (d^2 N_{i-1} + t N_i)) with t = temporal_size,
    d = spatial_size, N_{i-1} = in_channels, N_i = out_channels.
    """
    t, d2 = temporal_size, spatial_size ** 2
    return (t * d2 * in_channels * out_channels) // (d2 * in_channels + t * out_channels)


class TemporalConv(nn.Conv2d):
    """A t x 1 x 1 3-D convolution, computed as a (t, 1) 2-D convolution over (T, H*W).

    The same weights (out, in, t, 1) and result as ``nn.Conv3d(in, out, (t, 1, 1))``, but
    several times faster on CPU, where PyTorch runs a t x 1 x 1 Conv3d on a slow path.

    forward: x (B, in_channels, T, H, W) -> (B, out_channels, ceil(T / stride), H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1):
        super().__init__(in_channels, out_channels, kernel_size=(kernel_size, 1), stride=(stride, 1),
                         padding=(kernel_size // 2, 0), bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(3)).unflatten(3, x.shape[3:])


class SpatioTemporalConv(nn.Sequential):
    """A (2+1)-D convolution: spatial 1 x d x d conv -> BatchNorm -> ReLU -> temporal t x 1 x 1 conv.

    Replaces ``nn.Conv3d(in_channels, out_channels, (t, d, d), stride, padding=(t//2, d//2, d//2))``
    with about its parameter count (bias-free convolutions; the BatchNorm adds 2 M). The
    temporal convolution is a :class:`TemporalConv`.

    forward: x (B, in_channels, T, H, W) -> (B, out_channels, T', H', W') with
    T' = ceil(T / temporal_stride), H' = ceil(H / spatial_stride), W' likewise.
    """

    def __init__(self, in_channels: int, out_channels: int, temporal_size: int = 3, spatial_size: int = 3,
                 temporal_stride: int = 1, spatial_stride: int = 1):
        mid_channels = intermediate_channels(in_channels, out_channels, temporal_size, spatial_size)
        super().__init__(
            nn.Conv3d(in_channels, mid_channels, kernel_size=(1, spatial_size, spatial_size),
                      stride=(1, spatial_stride, spatial_stride),
                      padding=(0, spatial_size // 2, spatial_size // 2), bias=False),
            nn.BatchNorm3d(mid_channels),
            nn.ReLU(inplace=True),
            TemporalConv(mid_channels, out_channels, kernel_size=temporal_size, stride=temporal_stride),
        )
        self.mid_channels = mid_channels


class ResidualBlock(nn.Module):
    """Two 3 x 3 x 3 (2+1)-D convolutions with BatchNorm and ReLU, plus a shortcut.

    The shortcut is the identity, or a strided 1 x 1 x 1 projection with BatchNorm when the
    stride or the channel count changes.

    forward: x (B, in_channels, T, H, W) -> (B, out_channels, T / temporal_stride, H / spatial_stride, ...)
    """

    def __init__(self, in_channels: int, out_channels: int, temporal_stride: int = 1, spatial_stride: int = 1):
        super().__init__()
        self.residual = nn.Sequential(
            SpatioTemporalConv(in_channels, out_channels, temporal_stride=temporal_stride,
                               spatial_stride=spatial_stride),
            nn.BatchNorm3d(out_channels),
            nn.ReLU(inplace=True),
            SpatioTemporalConv(out_channels, out_channels),
            nn.BatchNorm3d(out_channels),
        )
        if temporal_stride == 1 and spatial_stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, kernel_size=1,
                          stride=(temporal_stride, spatial_stride, spatial_stride), bias=False),
                nn.BatchNorm3d(out_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.residual(x) + self.shortcut(x))


class R2Plus1D(nn.Module):
    """A small R(2+1)D for 64 x 64 clips of about 10 frames.

    Stem: a (2+1)-D 3 x 7 x 7 convolution with spatial stride 2, BatchNorm, ReLU. Then one
    stage per entry of ``widths``, each of ``blocks_per_stage`` residual blocks; the first
    block of a stage applies its stride. Space is halved at every stage (64 -> 32 -> 16 -> 8
    -> 4 -> 2 by default) and time only in the last two stages (10 -> 5 -> 3), because clips
    are short. Global average pooling, dropout and a fully connected layer follow.

    forward: clips (B, T, in_channels, H, W) in [0, 1] -> logits (B, num_classes).
    """

    def __init__(self, num_classes: int = 6, in_channels: int = 1, widths: tuple[int, ...] = (32, 64, 128, 256),
                 blocks_per_stage: int = 1, spatial_strides: tuple[int, ...] = (2, 2, 2, 2),
                 temporal_strides: tuple[int, ...] = (1, 1, 2, 2), dropout: float = 0.2):
        super().__init__()
        self.in_channels = in_channels
        if not len(widths) == len(spatial_strides) == len(temporal_strides):
            raise ValueError(f"R2Plus1D: widths {widths}, spatial_strides {spatial_strides} and "
                             f"temporal_strides {temporal_strides} need one entry per stage")
        self.stem = nn.Sequential(
            SpatioTemporalConv(in_channels, widths[0], temporal_size=3, spatial_size=7, spatial_stride=2),
            nn.BatchNorm3d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages, channels = [], widths[0]
        for width, spatial_stride, temporal_stride in zip(widths, spatial_strides, temporal_strides):
            blocks = [ResidualBlock(channels, width, temporal_stride, spatial_stride)]
            blocks += [ResidualBlock(width, width) for _ in range(blocks_per_stage - 1)]
            stages.append(nn.Sequential(*blocks))
            channels = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        check_clips(clips, self.in_channels, "R2Plus1D")
        x = clips.transpose(1, 2)                     # (B, C, T, H, W)
        x = self.stages(self.stem(x))                 # (B, widths[-1], T', H', W')
        return self.fc(self.dropout(self.pool(x).flatten(1)))


class TorchvisionR2Plus1D(nn.Module):
    """torchvision's r2plus1d_18 with an ``in_channels`` stem and a ``num_classes`` classifier.

    With ``pretrained=True`` the Kinetics-400 weights (R2Plus1D_18_Weights.KINETICS400_V1)
    come from the TORCH_HOME cache (downloaded there on first use; a clear error when that
    fails), and the stem's first convolution is the RGB one, as it is for 3 channels and summed
    over the colour channels for 1 (:func:`src.nets.pretrained.first_layer_weight`). Input in
    [0, 1] is normalised with Kinetics' per-channel statistics, averaged over colour for 1 channel
    (:func:`src.nets.pretrained.input_statistics`).

    forward: clips (B, T, in_channels, H, W) in [0, 1] -> logits (B, num_classes).
    """

    def __init__(self, num_classes: int = 6, in_channels: int = 1, pretrained: bool = False, dropout: float = 0.2):
        super().__init__()
        self.in_channels = in_channels
        net = torchvision.models.video.r2plus1d_18(weights=None)
        if pretrained:
            net.load_state_dict(load_weights(R2Plus1D_18_Weights.KINETICS400_V1))
        rgb_conv = net.stem[0]
        stem_conv = nn.Conv3d(in_channels, rgb_conv.out_channels, kernel_size=rgb_conv.kernel_size,
                              stride=rgb_conv.stride, padding=rgb_conv.padding, bias=False)
        if pretrained:
            with torch.no_grad():
                stem_conv.weight.copy_(first_layer_weight(rgb_conv.weight, in_channels))
        net.stem[0] = stem_conv
        mean, std = input_statistics(R2Plus1D_18_Weights.KINETICS400_V1, in_channels)  # not saved: constants
        self.register_buffer("mean", mean.view(1, in_channels, 1, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, in_channels, 1, 1, 1), persistent=False)
        net.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(net.fc.in_features, num_classes))
        self.net = net

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        check_clips(clips, self.in_channels, "TorchvisionR2Plus1D")
        x = (clips.transpose(1, 2) - self.mean) / self.std  # (B, C, T, H, W)
        return self.net(x)
