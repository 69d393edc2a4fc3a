"""The networks a config may name, and what every one of them takes; imports no torch.

- :data:`ARCHS`, :data:`ENCODERS`, :data:`RNN_TYPES`: the choices of ``model.arch``, ``model.encoder`` and
  ``model.rnn_type`` (configs/base.yaml), which :func:`src.nets.classifier.build_model` builds;
- :data:`PRETRAINED_WEIGHTS`: which of them have pretrained weights (``model.pretrained``);
- :func:`model_refusal`: what is wrong with a config's ``model:`` section, for :func:`src.checks.check`;
  :func:`loss_refusal`: a training loss the model cannot give;
- :func:`check_clips`: the input every model takes, clips (B, T, C, H, W) of its ``in_channels``.
"""
from __future__ import annotations

ARCHS = ("rnn", "r2plus1d", "r2plus1d_18")
ENCODERS = ("cnn", "resnet18")
RNN_TYPES = ("LSTMCell", "GRUCell", "OwnLSTM", "OwnGRU", "OwnConvLSTM")
CHOICES = {"model.arch": ARCHS, "model.encoder": ENCODERS, "model.rnn_type": RNN_TYPES}
"""The choice keys of the ``model:`` section and their values."""
PRETRAINED_WEIGHTS = {"model.encoder": {"resnet18": "ImageNet"}, "model.arch": {"r2plus1d_18": "Kinetics"}}
"""The networks with pretrained weights, and what the weights were trained on."""


def model_refusal(model: dict) -> tuple[str, str] | None:
    """``(key, 'must ..., got ...')`` when the ``model:`` section of a config (its choices already checked)
    asks for pretrained weights of a model without them (the encoder cnn, the arch r2plus1d), else None."""
    if not model["pretrained"]:
        return None
    no_weights = ("model.arch", "r2plus1d") if model["arch"] == "r2plus1d" else \
        ("model.encoder", "cnn") if model["arch"] == "rnn" and model["encoder"] == "cnn" else None
    if no_weights is None:
        return None
    key, value = no_weights
    exist = " and ".join(f"{where} {name} ({trained_on})" for where, names in PRETRAINED_WEIGHTS.items()
                         for name, trained_on in names.items())
    return "model.pretrained", (f"must be false with {key} {value!r}, which has no pretrained weights, got True; "
                                f"pretrained weights exist for {exist}")


def loss_refusal(model: dict, train: dict) -> tuple[str, str] | None:
    """``(key, 'must ..., got ...')`` when ``train.loss_on_every_step`` asks for the answer after every prefix of a
    clip from a model that has none (a clip network answers on its whole window), else None."""
    if train["loss_on_every_step"] and model["arch"] != "rnn":
        return "train.loss_on_every_step", (f"must be false with model.arch {model['arch']!r} (the answers after every "
                                            f"prefix of a clip are a recurrent model's, model.arch 'rnn'), got True")
    return None


def check_clips(clips, in_channels: int, model: str) -> None:
    """Refuse ``clips`` (a tensor) that are not (B, T, C, H, W) with C = ``in_channels``: ValueError, one line
    naming the ``model`` and the shape."""
    if clips.dim() != 5 or clips.shape[2] != in_channels:
        raise ValueError(f"{model} expects clips (B, T, C, H, W) with C = {in_channels}; got shape "
                         f"{tuple(clips.shape)}")
