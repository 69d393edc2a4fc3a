"""The action classifier: a per-frame encoder, a recurrent module over time, a temporal head.

    clip (B, T, C, H, W) --encoder, frame by frame--> (B, T, emb_dim)
                         --recurrent module-------> (B, T, hidden_dim)
                         --Conv1d over time, average over time, dropout, fc--> logits (B, num_classes)

With ``rnn_type='OwnConvLSTM'`` the encoder hands over a spatial feature map
(B, T, emb_dim, h, w) instead of a vector; the ConvLSTM keeps the map and it is averaged
over space only after it.

Every model of the project is built by :func:`build_model` from the ``model:`` section of
an experiment config (see ``configs/base.yaml``).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torchvision
from torchvision.models import ResNet18_Weights

from src.nets.cells import OwnConvLSTM, OwnGRU, OwnLSTM
from src.nets.pretrained import first_layer_weight, input_statistics, load_weights
from src.nets.r2plus1d import R2Plus1D, TorchvisionR2Plus1D
from src.nets.registry import ARCHS, ENCODERS, RNN_TYPES, check_clips


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ----------------------------------------------------------------------------- encoders

def conv_block(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """conv3x3 -> BatchNorm -> GELU; a stride of 2 halves the spatial size."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.GELU(),
    )


class ConvEncoder(nn.Module):
    """Five conv blocks, channels in_channels -> 16 -> 32 -> 64 -> 128 -> emb_dim.

    The first four blocks halve the spatial size (64x64 -> 4x4), so that most of the
    computation happens on small maps and the encoder is fast on a CPU; the fifth keeps it.

    forward: frames (N, in_channels, H, W) ->
      * ``spatial=False``: (N, emb_dim), after adaptive average pooling to ``pool_size`` x
        ``pool_size`` and a linear projection;
      * ``spatial=True``: the fifth block's map (N, emb_dim, H/16, W/16).
    """

    def __init__(self, emb_dim: int = 128, in_channels: int = 1, spatial: bool = False, pool_size: int = 2):
        super().__init__()
        channels = (in_channels, 16, 32, 64, 128, emb_dim)
        strides = (2, 2, 2, 2, 1)
        self.blocks = nn.Sequential(*[conv_block(c_in, c_out, s)
                                      for c_in, c_out, s in zip(channels[:-1], channels[1:], strides)])
        self.spatial = spatial
        self.out_channels = emb_dim
        if not spatial:
            self.pool = nn.AdaptiveAvgPool2d(pool_size)
            self.project = nn.Linear(emb_dim * pool_size * pool_size, emb_dim)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        features = self.blocks(frames)
        if self.spatial:
            return features
        return self.project(self.pool(features).flatten(1))


class ResNet18Encoder(nn.Module):
    """torchvision's ResNet18 trunk with an ``in_channels`` first convolution.

    With ``pretrained=True`` the ImageNet weights come from the TORCH_HOME cache (downloaded
    there on first use) and conv1 is the RGB conv1, as it is for 3 channels and summed over the
    colour channels for 1 (:func:`src.nets.pretrained.first_layer_weight`). Input in [0, 1] is
    normalised with ImageNet's per-channel statistics, averaged over colour for 1 channel
    (:func:`src.nets.pretrained.input_statistics`).

    forward: frames (N, in_channels, H, W) ->
      * ``spatial=False``: (N, emb_dim), global average pool of layer4 then a linear projection;
      * ``spatial=True``: (N, emb_dim, H/32, W/32), layer4's map through a 1x1 conv projection.
    """

    def __init__(self, emb_dim: int = 128, in_channels: int = 1, spatial: bool = False, pretrained: bool = False):
        super().__init__()
        resnet = torchvision.models.resnet18(weights=None)
        if pretrained:
            resnet.load_state_dict(load_weights(ResNet18_Weights.IMAGENET1K_V1))
        conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        if pretrained:
            with torch.no_grad():
                conv1.weight.copy_(first_layer_weight(resnet.conv1.weight, in_channels))
        resnet.conv1 = conv1
        mean, std = input_statistics(ResNet18_Weights.IMAGENET1K_V1, in_channels)  # not saved: constants
        self.register_buffer("mean", mean.view(1, in_channels, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, in_channels, 1, 1), persistent=False)
        self.trunk = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool,
                                   resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4)
        trunk_channels = resnet.fc.in_features  # 512
        self.spatial = spatial
        self.out_channels = emb_dim
        if spatial:
            self.project = nn.Conv2d(trunk_channels, emb_dim, kernel_size=1)
        else:
            self.project = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(trunk_channels, emb_dim))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        frames = (frames - self.mean) / self.std
        return self.project(self.trunk(frames))


# ---------------------------------------------------------------------- recurrent modules

class StackedCells(nn.Module):
    """``num_layers`` PyTorch cells (nn.LSTMCell or nn.GRUCell) stepped over time.

    forward: x (B, T, input_size) -> (out (B, T, hidden_size), final hidden states, one
    per layer), like ``nn.LSTM`` / ``nn.GRU`` with ``batch_first=True``.
    """

    def __init__(self, cell: type[nn.LSTMCell] | type[nn.GRUCell], input_size: int, hidden_size: int,
                 num_layers: int = 1):
        super().__init__()
        self.cells = nn.ModuleList([cell(input_size if layer == 0 else hidden_size, hidden_size)
                                    for layer in range(num_layers)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list]:
        final_states = []
        for cell in self.cells:  # layer by layer: the same result as step by step
            state, outputs = None, []
            for x_t in x.unbind(1):
                state = cell(x_t, state)
                outputs.append(state[0] if isinstance(state, tuple) else state)
            x = torch.stack(outputs, dim=1)
            final_states.append(state)
        return x, final_states


class SpatialConvLSTM(nn.Module):
    """OwnConvLSTM over a sequence of feature maps, averaged over space afterwards.

    forward: x (B, T, C, h, w) -> (out (B, T, hidden_size), states of OwnConvLSTM).
    """

    def __init__(self, input_channels: int, hidden_size: int, num_layers: int = 1, kernel_size: int = 3):
        super().__init__()
        self.conv_lstm = OwnConvLSTM(input_channels, hidden_size, kernel_size=kernel_size,
                                     num_layers=num_layers, batch_first=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list]:
        out, states = self.conv_lstm(x)       # (B, T, hidden, h, w)
        return out.mean(dim=(-2, -1)), states


def build_recurrent(rnn_type: str, input_size: int, hidden_size: int, num_layers: int) -> nn.Module:
    """The recurrent module named ``rnn_type``; its forward maps x to ``(out (B, T, hidden), state)``.

    x is (B, T, input_size), or (B, T, input_size, h, w) for OwnConvLSTM.
    """
    if rnn_type == "LSTMCell":
        return StackedCells(nn.LSTMCell, input_size, hidden_size, num_layers)
    if rnn_type == "GRUCell":
        return StackedCells(nn.GRUCell, input_size, hidden_size, num_layers)
    if rnn_type == "OwnLSTM":
        return OwnLSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True)
    if rnn_type == "OwnGRU":
        return OwnGRU(input_size, hidden_size, num_layers=num_layers, batch_first=True)
    if rnn_type == "OwnConvLSTM":
        return SpatialConvLSTM(input_size, hidden_size, num_layers=num_layers)
    raise ValueError(f"unknown rnn_type {rnn_type!r}: choose one of {', '.join(RNN_TYPES)}")


# ----------------------------------------------------------------------------- classifier

class ActionClassifier(nn.Module):
    """Per-frame encoder -> recurrent module -> temporal head.

    forward: clips (B, T, in_channels, H, W), float in [0, 1] -> logits (B, num_classes).
    """

    def __init__(self, num_classes: int = 6, encoder: str = "cnn", rnn_type: str = "GRUCell",
                 emb_dim: int = 128, hidden_dim: int = 128, num_layers: int = 2, dropout: float = 0.2,
                 pretrained: bool = False, in_channels: int = 1):
        super().__init__()
        self.in_channels = in_channels
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"unknown rnn_type {rnn_type!r}: choose one of {', '.join(RNN_TYPES)}")
        self.spatial = rnn_type == "OwnConvLSTM"
        if encoder == "cnn":
            if pretrained:
                raise ValueError("encoder 'cnn' has no pretrained weights: set model.pretrained: false "
                                 "or model.encoder: resnet18")
            self.encoder = ConvEncoder(emb_dim, in_channels, spatial=self.spatial)
        elif encoder == "resnet18":
            self.encoder = ResNet18Encoder(emb_dim, in_channels, spatial=self.spatial, pretrained=pretrained)
        else:
            raise ValueError(f"unknown encoder {encoder!r}: choose one of {', '.join(ENCODERS)}")
        self.rnn = build_recurrent(rnn_type, emb_dim, hidden_dim, num_layers)
        self.temporal_conv = nn.Sequential(
            nn.Conv1d(hidden_dim, hidden_dim, kernel_size=3, padding=1),
            nn.GELU(),
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden_dim, num_classes)

    def forward(self, clips: torch.Tensor, every_step: bool = False) -> torch.Tensor:
        """clips (B, T, C, H, W) -> logits (B, num_classes); with ``every_step``, the logits of every prefix,
        (B, T, num_classes): entry t-1 is what ``forward(clips[:, :t])`` gives (what a stream answers after t
        frames), entry T-1 the clip's (``train.loss_on_every_step`` trains on them all)."""
        check_clips(clips, self.in_channels, "ActionClassifier")
        batch, time = clips.shape[:2]
        features = self.encoder(clips.flatten(0, 1))                   # (B*T, E) or (B*T, E, h, w)
        features = features.unflatten(0, (batch, time))                # (B, T, E) or (B, T, E, h, w)
        hidden, _ = self.rnn(features)                                 # (B, T, hidden)
        if every_step:
            return self.fc(self.dropout(self._prefix_means(hidden.transpose(1, 2))))  # (B, T, num_classes)
        hidden = self.temporal_conv(hidden.transpose(1, 2))            # (B, hidden, T)
        pooled = hidden.mean(dim=2)                                    # (B, hidden): average over time
        return self.fc(self.dropout(pooled))                           # (B, num_classes)

    def _prefix_means(self, hidden: torch.Tensor) -> torch.Tensor:
        """The temporal head's average over time of every prefix: hidden (B, hidden, T) -> (B, T, hidden), entry
        t-1 that of the first t steps. The Conv1d (kernel 3, padding 1) looks one step ahead, so a prefix's last
        output lacks the next step's term (its zero padding): it is the full output less that term, and the
        outputs before it are the full clip's."""
        conv, activation = self.temporal_conv
        full = conv(hidden)                                            # (B, hidden, T)
        ahead = torch.einsum("oi,bit->bot", conv.weight[:, :, 2], hidden[:, :, 1:])  # the term of step t+1
        last = activation(full - nn.functional.pad(ahead, (0, 1)))     # each step as a prefix's last output
        before = nn.functional.pad(activation(full).cumsum(dim=2)[:, :, :-1], (1, 0))  # sum of the outputs before
        steps = torch.arange(1, hidden.shape[2] + 1, device=hidden.device, dtype=hidden.dtype)
        return ((before + last) / steps).transpose(1, 2)


def build_model(model_config: dict, num_classes: int, in_channels: int = 1, load_pretrained: bool = True) -> nn.Module:
    """The model described by the ``model:`` section of an experiment config, for ``num_classes``
    classes and ``in_channels`` input channels (1 grayscale, 3 RGB): both come from the dataset
    (its ``classes`` and ``channels``) when training, from the checkpoint afterwards.

    Keys (all required: a config from :func:`src.checks.load_checked_config` has them, with
    configs/base.yaml as the one source of defaults): arch (rnn | r2plus1d | r2plus1d_18),
    encoder, pretrained, rnn_type, emb_dim, hidden_dim, num_layers, dropout. The r2plus1d archs use
    only ``pretrained`` (r2plus1d_18) and ``dropout``. Every model takes clips
    (B, T, in_channels, H, W) in [0, 1] and returns logits (B, num_classes).

    ``load_pretrained=False`` builds the same architecture without reading pretrained
    weights, for when a checkpoint's state dict is loaded into it next.
    """
    arch = model_config["arch"]
    pretrained = model_config["pretrained"] and load_pretrained
    if arch == "rnn":
        return ActionClassifier(
            num_classes=num_classes,
            encoder=model_config["encoder"],
            rnn_type=model_config["rnn_type"],
            emb_dim=model_config["emb_dim"],
            hidden_dim=model_config["hidden_dim"],
            num_layers=model_config["num_layers"],
            dropout=model_config["dropout"],
            pretrained=pretrained,
            in_channels=in_channels,
        )
    if arch == "r2plus1d":
        return R2Plus1D(num_classes=num_classes, in_channels=in_channels, dropout=model_config["dropout"])
    if arch == "r2plus1d_18":
        return TorchvisionR2Plus1D(num_classes=num_classes, in_channels=in_channels, pretrained=pretrained,
                                   dropout=model_config["dropout"])
    raise ValueError(f"unknown model.arch {arch!r}: choose one of {', '.join(ARCHS)}")
