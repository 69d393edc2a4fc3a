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
key, the key, the value and what is allowed. What needs the data itself (a split that leaves a class without
a training video, a fold the data does not ship) is refused later, by :func:`src.data.splits.split_videos`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from src.config import ConfigError, check_values, choice_refusal, key_source, load_config_and_sources
from src.data.splits import PROTOCOLS, split_refusal
from src.data.synthetic import PRESETS
from src.nets.registry import CHOICES as MODEL_CHOICES
from src.nets.registry import model_refusal

DOMAIN_CHOICES = {"data.synthetic_preset": tuple(PRESETS), "data.split": PROTOCOLS, **MODEL_CHOICES}
"""The choice keys that belong to the domain's modules, and their values."""


def check_device(name: str, where: str) -> None:
    """Refuse a ``train.device`` this machine does not have (ConfigError naming ``where``: the source and key)."""
    from src.training.device import select_device  # imports torch: src.suite and src.recipe stay torch-free till here
    try:
        select_device(name, key=where)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def check(config: dict, sources: dict[str, str] | None = None) -> None:
    """Refuse a full config (every key of configs/base.yaml, as :func:`src.config.load_config` makes it) that
    cannot run here: its own values (:func:`src.config.check_values`), a value that is not one of a domain
    key's choices (:data:`DOMAIN_CHOICES`), validation persons that are empty, repeated, not training persons
    or all of them, a ``data.fold`` outside the ``data.folds`` of ``data.split: kfold``, ``model.pretrained``
    where the model has no pretrained weights, a ``train.device`` this machine does not have. The first
    problem found raises.

    Args:
        config: the config.
        sources: ``{dotted key: the file or '--set' override that set it}``; default configs/base.yaml.

    Raises:
        ConfigError: ``<source>: '<key>' must be <what is allowed>, got <value>``, one line.
    """
    check_values(config, sources)
    for key, choices in DOMAIN_CHOICES.items():
        section, name = key.split(".")
        if refusal := choice_refusal(config[section][name], choices):
            raise ConfigError(f"{key_source(sources, key)} {refusal}")
    for refusal in (split_refusal(config["data"]), model_refusal(config["model"])):
        if refusal:
            key, text = refusal
            raise ConfigError(f"{key_source(sources, key)} {text}")
    check_device(config["train"]["device"], key_source(sources, "train.device"))


def load_checked_config(path: str | Path, overrides: Iterable[str] = (), name: str | None = None) -> dict:
    """:func:`src.config.load_config` (the ``base:`` chain, ``overrides``, ``name``), then :func:`check`: the
    config every command runs, refused in one line (ConfigError) before any work."""
    config, sources = load_config_and_sources(path, overrides, name)
    check(config, sources)
    return config
