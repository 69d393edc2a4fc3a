"""The one check of a loaded config against the domain, before any data is made, read or prepared.

:mod:`src.config` reads a config and checks what it holds itself (keys, types, ranges, its own choices);
:func:`check` adds what the modules that own each concept know, each through that module's check:

- the networks' choices (``model.arch``, ``.encoder``, ``.rnn_type``) and which have pretrained weights:
  :mod:`src.nets.registry` (:func:`src.nets.registry.model_refusal`);
- the split protocols (``data.split``), the validation persons and a kfold fold: :mod:`src.data.splits`
  (:func:`src.data.splits.split_refusal`);
- the synthetic twin's presets (``data.synthetic_preset``): :data:`src.data.synthetic.PRESETS`;
- ``train.device``, a device this machine has: :func:`src.training.device.select_device`.

Every command loads its configs through :func:`load_checked_config`::

    config = load_checked_config("configs/GRUCell.yaml", overrides=["train.epochs=5"])

Every error is a :class:`src.config.ConfigError`, one line naming the file (or ``--set`` override) that set the
key, the key, the value and what is allowed. ``data.groups`` that the data does not hold are refused before a frame is
read, from its index.json (:func:`data_groups_refusal`, for the commands that read data). What needs the data itself
(a split that leaves a class without a training video, a fold the data does not ship) is refused later, by
:func:`src.data.splits.split_videos`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from src.config import (
    ConfigError,
    check_values,
    choice_refusal,
    config_of_dict,
    key_source,
    load_config_and_sources,
    schema_root,
)
from src.data.index import auto_root, is_prepared, read_index
from src.data.splits import PROTOCOLS, group_order, split_refusal, unknown_groups_refusal
from src.data.synthetic import PRESETS
from src.nets.registry import CHOICES as MODEL_CHOICES
from src.nets.registry import loss_refusal, model_refusal

DOMAIN_CHOICES = {"data.synthetic_preset": tuple(PRESETS), "data.split": PROTOCOLS, **MODEL_CHOICES}
"""The choice keys that belong to the domain's modules, and their values."""


def check_device(name: str, where: str) -> None:
    """Refuse a ``train.device`` this machine does not have (ConfigError naming ``where``: the source and key)."""
    from src.training.device import select_device  # imports torch: src.suite and src.recipe stay torch-free till here
    try:
        select_device(name, key=where)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def check(config: dict, sources: dict[str, str] | None = None, training: bool = True, device: bool = True,
          channels: int = 3, num_classes: int = 101) -> None:
    """Refuse a full config (every key of configs/base.yaml, as :func:`src.config.load_config` makes it) that
    cannot run here: its own values (:func:`src.config.check_values`), a value that is not one of a domain
    key's choices (:data:`DOMAIN_CHOICES`), validation persons that are empty, repeated, not training persons
    or all of them, a ``data.fold`` outside the ``data.folds`` of ``data.split: kfold``, ``model.pretrained``
    where the model has no pretrained weights, ``train.loss_on_every_step`` of a clip network, sizes whose memory
    this machine does not have (:func:`size_refusal`), a ``train.device`` this machine does not have. The first
    problem found raises.

    Args:
        config: the config.
        sources: ``{dotted key: the file or '--set' override that set it}``; default configs/base.yaml.
        training: the sizes are those of training (else of a trained model's evaluation).
        device: check ``train.device`` (not for a checkpoint's config, trained on another machine).
        channels, num_classes: of the frames and the model's outputs, for the sizes (default: the most there are).

    Raises:
        ConfigError: ``<source>: '<key>' must be <what is allowed>, got <value>``, one line.
    """
    check_values(config, sources)
    for key, choices in DOMAIN_CHOICES.items():
        section, name = key.split(".")
        if refusal := choice_refusal(config[section][name], choices):
            raise ConfigError(f"{key_source(sources, key)} {refusal}")
    for refusal in (split_refusal(config["data"]), model_refusal(config["model"]),
                    loss_refusal(config["model"], config["train"]),
                    size_refusal(config, training, channels=channels, num_classes=num_classes)):
        if refusal:
            key, text = refusal
            raise ConfigError(f"{key_source(sources, key)} {text}")
    if device:
        check_device(config["train"]["device"], key_source(sources, "train.device"))


def load_checked_config(path: str | Path, overrides: Iterable[str] = (), name: str | None = None,
                        reads_data: bool = False, data_root: str | Path | None = None) -> dict:
    """:func:`src.config.load_config` (the ``base:`` chain, ``overrides``, ``name``), then :func:`check`: the
    config every command runs, refused in one line (ConfigError) before any work. ``reads_data``: a run that reads
    the data at ``data_root`` (default its ``data.root``) is to come, so the groups that data holds are checked too
    (:func:`data_groups_refusal`)."""
    config, sources = load_config_and_sources(path, overrides, name)
    check(config, sources)
    if reads_data and (refusal := data_groups_refusal(config["data"], data_root)):
        raise ConfigError(f"{key_source(sources, 'data.groups')}: {refusal}")
    return config


def data_groups_refusal(data: dict, data_root: str | Path | None = None) -> str | None:
    """Why ``data.groups`` names a group that the data a run reads does not hold, known without reading a frame: the
    groups of the prepared data's index.json (``data_root``, default ``data.root``; ``auto``: data/kth when prepared),
    or, for ``auto`` before the synthetic twin is made, the persons of its ``data.synthetic_preset``; None when the
    groups are all there, or the data is not prepared (refused when it is read, in its own line)."""
    if data["groups"] is None:
        return None
    root, synthetic = Path(str(data_root or data["root"])), False
    if str(root) == "auto":
        root, synthetic = auto_root(data["synthetic_preset"])
    try:
        videos = read_index(root)["videos"] if is_prepared(root) else []
    except ValueError:  # a broken index.json: refused in its own words when the data is read
        return None
    if synthetic and not videos:  # the twin src.train is to make
        preset = data["synthetic_preset"]
        return unknown_groups_refusal(data["groups"], list(PRESETS[preset]["persons"]),
                                      f"the synthetic twin of preset {preset}")
    if not videos:  # not prepared: refused when it is read
        return None
    return unknown_groups_refusal(data["groups"], sorted({v["group"] for v in videos}, key=group_order), str(root))


def check_saved_config(config: dict, source: str, channels: int = 3, num_classes: int = 101) -> None:
    """Refuse the config a checkpoint holds as a YAML file's is refused (:func:`src.config.config_of_dict`, then
    :func:`check`), with the sizes of evaluating its model, not training it, and not its ``train.device`` (the
    machine it trained on). ``source`` names it in the error: ``'models/X/best.pth (its config)'``.

    Raises:
        ConfigError: ``<source>: '<key>' must be <what is allowed>, got <value>``, one line.
    """
    full, sources = config_of_dict(config, source)
    check(full, sources, training=False, device=False, channels=channels, num_classes=num_classes)


# ----------------------------------------------------------------------------- sizes that cannot fit
SIZE_KEYS = ("train.batch_size", "model.hidden_dim", "model.emb_dim", "model.num_layers", "data.img_size",
             "data.max_frames", "data.train_clips_per_video", "data.eval_clips_per_video")
"""The keys the memory of a run grows with; each is bounded by :func:`size_refusal`."""
FLOAT_BYTES = 4
REFERENCE_VIDEOS = 13_320
"""The videos a split's clip tables are sized for before the data is read: UCF101's, the largest layout the readers
know (KTH has 2,391 annotated subsequences)."""
CLIP_RECORD_BYTES = 120
"""Per clip of a dataset's table: VideoClipDataset's ``(video, k)`` tuple and the ClipTable's int64 columns."""
FIXED_PARAMETERS = {"r2plus1d": 3_600_000, "r2plus1d_18": 31_400_000, "resnet18": 11_200_000}
"""Parameters of the parts whose size no key sets (the networks of src/nets/r2plus1d.py, the ResNet18 trunk)."""
VOXEL_FLOATS = {"r2plus1d": 300, "r2plus1d_18": 1500}
"""Activations an R(2+1)D keeps for the backward pass, in floats per input voxel (T x H x W), rounded up."""


def _halved(size: int, times: int) -> int:
    """``size`` after ``times`` stride-2 layers (ceil division, as padded convolutions give)."""
    for _ in range(times):
        size = (size + 1) // 2
    return size


def parameter_count(model: dict, channels: int = 3, num_classes: int = 101) -> int:
    """The parameters of the network ``model`` (a config's ``model:`` section) describes, counted from its sizes
    (exact for arch rnn with the cnn encoder, within 1% otherwise), without building it."""
    if model["arch"] != "rnn":
        return FIXED_PARAMETERS[model["arch"]]
    emb, hidden, layers = model["emb_dim"], model["hidden_dim"], model["num_layers"]
    conv = model["rnn_type"] == "OwnConvLSTM"
    if model["encoder"] == "cnn":
        widths = (channels, 16, 32, 64, 128, emb)
        encoder = sum(9 * c_in * c_out + 2 * c_out for c_in, c_out in zip(widths[:-1], widths[1:]))
    else:
        encoder = FIXED_PARAMETERS["resnet18"] + 512 * emb
    encoder += 0 if conv else 4 * emb * emb + emb
    gates = 3 if "GRU" in model["rnn_type"] else 4
    per_input = 9 if conv else 1  # a ConvLSTM's 3 x 3 kernels
    recurrent = sum(gates * hidden * per_input * ((emb if layer == 0 else hidden) + hidden) + 2 * gates * hidden
                    for layer in range(min(layers, 2))) + max(0, layers - 2) * (
        gates * hidden * per_input * 2 * hidden + 2 * gates * hidden)
    head = 3 * hidden * hidden + hidden + hidden * num_classes + num_classes
    return encoder + recurrent + head


def activation_floats(config: dict, channels: int = 3) -> int:
    """The floats one clip's forward pass keeps for the backward pass (an upper estimate): its frames, and per
    frame the encoder's maps (three per conv block: convolution, BatchNorm, activation), the recurrent layers'
    gates and states per step, the temporal head's; R(2+1)D: :data:`VOXEL_FLOATS` per input voxel."""
    model, data = config["model"], config["data"]
    frames, size = data["max_frames"], data["img_size"]
    clip = frames * channels * size * size
    if model["arch"] != "rnn":
        return clip + VOXEL_FLOATS[model["arch"]] * frames * size * size
    emb, hidden, layers = model["emb_dim"], model["hidden_dim"], model["num_layers"]
    if model["encoder"] == "cnn":
        maps = [(16, 1), (32, 2), (64, 3), (128, 4), (emb, 4)]
        last = _halved(size, 4) ** 2
    else:  # ResNet18: conv1 and max pool, then four stages of about 12 maps each
        maps = [(64, 1), (64, 2), (64 * 4, 2), (128 * 4, 3), (256 * 4, 4), (512 * 4, 5), (emb, 5)]
        last = _halved(size, 5) ** 2
    encoder = sum(3 * width * _halved(size, halvings) ** 2 for width, halvings in maps)
    gates = 3 if "GRU" in model["rnn_type"] else 4
    per_step = (gates + 4) * hidden * (last if model["rnn_type"] == "OwnConvLSTM" else 1)
    return clip + frames * (encoder + layers * per_step + 3 * hidden)


def memory_estimate(config: dict, training: bool = True, channels: int = 3, num_classes: int = 101) -> dict:
    """An upper estimate of the memory (bytes) a run of ``config`` needs, before any data is read, by part:
    ``parameters`` (training: the weights, their gradients, the optimizer's two moments and the weights' average;
    else the weights), ``batch`` (one batch's activations), ``clips`` (the clip tables of
    :data:`REFERENCE_VIDEOS` videos); ``total``."""
    parameters = parameter_count(config["model"], channels, num_classes) * FLOAT_BYTES * (5 if training else 1)
    batch = config["train"]["batch_size"] * activation_floats(config, channels) * FLOAT_BYTES
    clips_per_video = config["data"]["eval_clips_per_video"] + (config["data"]["train_clips_per_video"]
                                                                if training else 0)
    clips = REFERENCE_VIDEOS * clips_per_video * CLIP_RECORD_BYTES
    return {"parameters": parameters, "batch": batch, "clips": clips, "total": parameters + batch + clips}


def machine_memory() -> int:
    """This machine's physical memory in bytes (0 where the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return 0


def _with(config: dict, key: str, value: int) -> dict:
    section, name = key.split(".")
    return {**config, section: {**config[section], name: value}}


def _in_units(size: float) -> str:
    """``'1.5 GB'``, ``'320 MB'``, ``'12.0 TB'``: bytes in binary units."""
    for unit, scale in (("TB", 2 ** 40), ("GB", 2 ** 30)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size / 2 ** 20:,.0f} MB"


def size_refusal(config: dict, training: bool = True, memory: int | None = None, channels: int = 3,
                 num_classes: int = 101) -> tuple[str, str] | None:
    """``(key, 'is ... : needs about ... GB ..., at most about N here')`` when the estimate
    (:func:`memory_estimate`) of ``config`` exceeds ``memory`` (default :func:`machine_memory`); the key named is
    the one of :data:`SIZE_KEYS` whose value, put back to configs/base.yaml's, shrinks the estimate most, and
    ``N`` the largest value of it that fits with the others as they are. None when it fits."""
    memory = machine_memory() if memory is None else memory
    need = memory_estimate(config, training, channels, num_classes)
    if not memory or need["total"] <= memory:
        return None
    defaults = schema_root()

    def total(key: str, value: int) -> int:
        return memory_estimate(_with(config, key, value), training, channels, num_classes)["total"]

    key = min(SIZE_KEYS, key=lambda k: total(k, min(defaults[k.split(".")[0]][k.split(".")[1]], _value(config, k))))
    low, high = 0, _value(config, key)  # total(key, low) fits or low is 0; total(key, high) does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if total(key, middle) <= memory else (low, middle)
    bound = f"at most about {low:,} here with the other values as they are" if low else \
        "no value of it fits with the other values as they are"
    parts = ", ".join(f"{name} {_in_units(need[name])}" for name in ("parameters", "batch", "clips"))
    return key, (f"is {_value(config, key):,}: {'training' if training else 'the model'} would need about "
                 f"{_in_units(need['total'])} ({parts}), more than this machine's {_in_units(memory)} of "
                 f"memory; {bound} (bounds: configs/base.yaml)")


def _value(config: dict, key: str) -> int:
    section, name = key.split(".")
    return config[section][name]
