"""Experiment configs: YAML files that share a base, validated against configs/base.yaml.

An experiment file names its base and holds only what differs::

    # configs/GRUCell_NoScheduler.yaml
    base: GRUCell.yaml        # relative to this file; chains are allowed
    train:
      scheduler: none

``configs/base.yaml`` is the schema: every key an experiment may set is there, and a
value must have the type of base's value (an int is accepted where a float is expected).
The experiment's name is the config file's stem (``configs/GRUCell.yaml`` -> ``GRUCell``);
it names the folders under ``models/`` and ``tboard_logs/``.

    config = load_config("configs/GRUCell.yaml", overrides=["train.epochs=5"])
    config["train"]["epochs"], config["experiment"]   # 5, 'GRUCell'
"""
from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any, Iterable

import yaml

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
SCHEMA_PATH = CONFIG_DIR / "base.yaml"


class ConfigError(ValueError):
    """A bad config file or override; the message is one line naming the file and key."""


def _read_yaml(path: Path) -> dict:
    if not path.is_file():
        available = ", ".join(sorted(p.name for p in path.parent.glob("*.yaml"))) if path.parent.is_dir() else ""
        hint = f" (available there: {available})" if available else ""
        raise ConfigError(f"{path}: config file not found{hint}")
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{path}:{line} is not valid YAML: {getattr(e, 'problem', e)}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: expected a mapping of sections (data:, model:, train:, ...), "
                          f"got {type(content).__name__}")
    return content


def _flat_keys(tree: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        keys.append(prefix + key)
        if isinstance(value, dict):
            keys += _flat_keys(value, prefix + key + ".")
    return keys


def _type_name(value: Any) -> str:
    return {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "section"}.get(
        type(value), type(value).__name__)


def _check_value(value: Any, expected: Any, key: str, source: str) -> Any:
    """The value, converted where the schema allows (int -> float); else ConfigError."""
    if isinstance(expected, bool) or isinstance(value, bool):
        ok = isinstance(value, bool) and isinstance(expected, bool)
    elif isinstance(expected, float) and isinstance(value, int):
        return float(value)
    elif isinstance(expected, float) and isinstance(value, str):
        # PyYAML reads '1e-3' (no dot) as a string (YAML 1.1); take it as the float it means.
        try:
            return float(value)
        except ValueError:
            ok = False
    else:
        ok = type(value) is type(expected)
    if not ok:
        raise ConfigError(f"{source}: '{key}' must be {_type_name(expected)} (like {expected!r}), "
                          f"got {_type_name(value)} {value!r}")
    if isinstance(expected, list) and expected:
        return [_check_value(item, expected[0], f"{key}[{i}]", source) for i, item in enumerate(value)]
    return value


def _validate(tree: dict, schema: dict, source: str, prefix: str = "") -> dict:
    """A copy of ``tree`` checked against ``schema`` (keys and types); ConfigError names the key."""
    checked = {}
    for key, value in tree.items():
        dotted = prefix + str(key)
        if key not in schema:
            close = difflib.get_close_matches(dotted, _flat_keys(schema_root()), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"{source}: unknown key '{dotted}'{hint}")
        expected = schema[key]
        if isinstance(expected, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{dotted}' must be a section of keys "
                                  f"({', '.join(expected)}), got {_type_name(value)} {value!r}")
            checked[key] = _validate(value, expected, source, dotted + ".")
        else:
            checked[key] = _check_value(value, expected, dotted, source)
    return checked


def _deep_merge(base: dict, update: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


_SCHEMA: dict | None = None


def schema_root() -> dict:
    """configs/base.yaml: the defaults, and the keys and types every config must follow."""
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = _read_yaml(SCHEMA_PATH)
    return _SCHEMA


def _load_chain(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """The file's content merged onto its chain of bases, each file validated on its own."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: the 'base:' chain loops back to this file; remove one of the 'base:' lines")
    content = _read_yaml(path)
    base_name = content.pop("base", None)
    own = _validate(content, schema_root(), str(path))
    if base_name is None:
        return own
    if not isinstance(base_name, str):
        raise ConfigError(f"{path}: 'base' must be a file name (like base.yaml), got {base_name!r}")
    return _deep_merge(_load_chain(path.parent / base_name, seen + (path.resolve(),)), own)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``'train.epochs=5'`` -> ``(['train', 'epochs'], 5)``; the value is parsed as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, like train.epochs=5")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        raise ConfigError(f"--set {text!r}: the value {value!r} is not valid YAML") from None
    return key.strip().split("."), parsed


def load_config(path: str | Path, overrides: Iterable[str] = (), name: str | None = None) -> dict:
    """Load an experiment config: its ``base:`` chain deep-merged, then ``overrides``.

    Args:
        path: the experiment's YAML file.
        overrides: ``'section.key=value'`` strings (``--set`` on the command line).
        name: the experiment's name; default the file's stem (e.g. ``GRUCell_seed1`` for a
            second seed of ``configs/GRUCell.yaml``).

    Returns:
        The full config (every key of configs/base.yaml) plus ``config['experiment']``.

    Raises:
        ConfigError: one line naming the file (or override) and the key.
    """
    path = Path(path)
    config = _deep_merge(schema_root(), _load_chain(path))
    for text in overrides:
        keys, value = parse_override(text)
        source = f"{path} --set {text}"
        config = _deep_merge(config, _validate(_nest(keys, value), schema_root(), source))
    config["experiment"] = name or path.stem
    return config


def _nest(keys: list[str], value: Any) -> dict:
    for key in reversed(keys):
        value = {key: value}
    return value


def experiment_configs() -> list[Path]:
    """Every experiment file under configs/ (all but base.yaml), sorted by name."""
    return sorted(p for p in CONFIG_DIR.glob("*.yaml") if p.name != SCHEMA_PATH.name)
