"""Experiment configs: YAML files that share a base, validated against configs/base.yaml.

An experiment file names its base and holds only what differs::

    # configs/GRUCell_NoScheduler.yaml
    base: GRUCell.yaml        # relative to this file; chains are allowed
    train:
      scheduler: none

``configs/base.yaml`` is the schema: every key an experiment may set is there, and a
value must have the type of base's value (an int is accepted where a float is expected).
The merged config's own values are then checked (:func:`check_values`): the ranges of its numbers, the
choices this module holds (optimizer, scheduler, select) and ``data.groups``. What needs the domain (the
networks' choices, the split protocols and validation persons, the synthetic presets, this machine's
devices) is checked by :func:`src.checks.check` (:func:`src.checks.load_checked_config` loads and checks),
before any data is made, read or prepared. Every error is one line naming the file (or ``--set`` override)
that set the key, the key, the value and what is allowed. This module imports nothing of ``src``.
The experiment's name is the config file's stem (``configs/GRUCell.yaml`` -> ``GRUCell``);
it names the folders under ``models/`` and ``tboard_logs/``.

    config = load_config("configs/GRUCell.yaml", overrides=["train.epochs=5"])  # load_checked_config: checked too
    config["train"]["epochs"], config["experiment"]   # 5, 'GRUCell'

``configs/suite.yaml`` is the one list of experiments (:func:`load_plan`): the suite's order, which
experiments are main (run with ``--seeds``) and which are variants (``--variant-seeds``), the paired
comparisons of src.compare and the groups the notebook shows.
"""
from __future__ import annotations

import copy
import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
SCHEMA_PATH = CONFIG_DIR / "base.yaml"

# The values of the config's own choice keys; the trainer imports them from here, a module that imports no torch.
# The other choice keys belong to their modules: model.arch, .encoder, .rnn_type to src.nets.registry, data.split
# to src.data.splits, data.synthetic_preset to src.data.synthetic (src.checks checks them).
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("none", "cosine", "step")
SELECTS = ("best", "last")  # train.select: what best.pth holds
CHOICES = {"train.optimizer": OPTIMIZERS, "train.scheduler": SCHEDULERS, "train.select": SELECTS}

# The range of every number the config holds, as (what is allowed, test). Every model accepts
# frames down to 1 x 1 pixels and clips down to 1 frame (forward passes of the cnn and resnet18
# encoders, R2Plus1D and r2plus1d_18 tried), so nothing but >= 1 bounds img_size and max_frames.
RANGES = {
    "data.img_size": (">= 1 (pixels per side of a frame)", lambda v: v >= 1),
    "data.max_frames": (">= 1 (frames per clip)", lambda v: v >= 1),
    "data.slicing_step": (">= 1 (1: consecutive frames)", lambda v: v >= 1),
    "data.train_clips_per_video": (">= 1", lambda v: v >= 1),
    "data.eval_clips_per_video": (">= 1", lambda v: v >= 1),
    "data.num_workers": (">= 0 (0: load in the main process)", lambda v: v >= 0),
    "data.fold": (">= 1 (given: the dataset's split; kfold: the test fold)", lambda v: v >= 1),
    "data.folds": (">= 2 (kfold)", lambda v: v >= 2),
    "data.val_fraction": ("in (0, 1) (a share of the training groups)", lambda v: 0 < v < 1),
    "data.test_fraction": ("in (0, 1) (a share of the groups)", lambda v: 0 < v < 1),
    "data.split_seed": ("in [0, 2**32 - 1] (numpy's seeds)", lambda v: 0 <= v < 2 ** 32),
    "data.channels": ("auto (the prepared data's), 1 (grayscale) or 3 (colour)", lambda v: v == "auto" or v in (1, 3)),
    "model.emb_dim": (">= 1", lambda v: v >= 1),
    "model.hidden_dim": (">= 1", lambda v: v >= 1),
    "model.num_layers": (">= 1", lambda v: v >= 1),
    "model.dropout": ("in [0, 1)", lambda v: 0 <= v < 1),
    "train.epochs": (">= 1", lambda v: v >= 1),
    "train.batch_size": (">= 1", lambda v: v >= 1),
    "train.lr": ("a finite number > 0", lambda v: 0 < v < math.inf),
    "train.weight_decay": ("a finite number >= 0", lambda v: 0 <= v < math.inf),
    "train.warmup_epochs": (">= 0 (0: no warm-up)", lambda v: v >= 0),
    "train.precise_bn_batches": (">= 0 (0: keep BatchNorm's running averages)", lambda v: v >= 0),
    "train.grad_clip": ("a finite number >= 0 (0: no clipping)", lambda v: 0 <= v < math.inf),
    "train.label_smoothing": ("in [0, 1) (0: none)", lambda v: 0 <= v < 1),
    "train.ema_decay": ("0 (off) or in (0, 1) (e.g. 0.999: a time constant of 1000 steps)", lambda v: 0 <= v < 1),
    "train.seed": ("in [0, 2**32 - 1] (numpy's seeds)", lambda v: 0 <= v < 2 ** 32),
    "augment.flip_p": ("in [0, 1] (the probability of a horizontal flip per clip)", lambda v: 0 <= v <= 1),
    "augment.rotation": ("in [0, 180] (degrees either way; 0: no rotation)", lambda v: 0 <= v <= 180),
    "augment.reverse_p": ("in [0, 1] (the probability of playing a clip backwards)", lambda v: 0 <= v <= 1),
    "eval.latency_repeats": (">= 1", lambda v: v >= 1),
}


class ConfigError(ValueError):
    """A bad config file or override; the message is one line naming the file and key."""


class _ConfigLoader(yaml.SafeLoader):
    """YAML's safe loader that refuses what a config never needs and a user never means: a key given twice in one
    mapping (YAML would keep the last silently), and anchors and aliases (``&a`` / ``*a``: a 300-byte file of nested
    aliases expands to gigabytes). Configs compose through ``base:`` instead."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice (lines {seen[key] + 1} and {key_node.start_mark.line + 1}); "
                                f"keep one", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent) or getattr(self.peek_event(), "anchor", None) is not None:
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (&name, *name) are not read in a config; write the values out, "
                            "or share them through 'base:'", event.start_mark)
        return super().compose_node(parent, index)


def read_yaml(path: Path) -> dict:
    """The mapping a YAML file holds (empty: {}); ConfigError, one line naming the file, when it is missing, not
    UTF-8 text, not YAML, holds a key twice or an alias (:class:`_ConfigLoader`), or is not a mapping."""
    if not path.is_file():
        available = ", ".join(sorted(p.name for p in path.parent.glob("*.yaml"))) if path.parent.is_dir() else ""
        hint = f" (available there: {available})" if available else ""
        raise ConfigError(f"{path}: config file not found{hint}")
    try:
        content = yaml.load(path.read_text(encoding="utf-8"), Loader=_ConfigLoader)
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason}); save the config as UTF-8") from None
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
    return {bool: "bool", int: "int", float: "float", str: "string", list: "list", dict: "section",
            type(None): "null"}.get(
        type(value), type(value).__name__)


def _check_value(value: Any, expected: Any, key: str, source: str) -> Any:
    """The value, converted where the schema allows (int -> float); else ConfigError. A key whose
    schema value is null takes null or a list of names and numbers (``data.groups``)."""
    if key == "train.amp":  # a string or a bool: auto | true | false
        if isinstance(value, bool) or value == "auto":
            return value
        raise ConfigError(f"{source}: '{key}' must be auto, true or false, got {_type_name(value)} {value!r}")
    if key == "data.channels":  # auto (the data's) or a number: auto | 1 | 3
        if value == "auto":
            return value
        expected = 1
    if expected is None:
        if value is not None and not (isinstance(value, list) and all(
                isinstance(item, (int, str)) and not isinstance(item, bool) for item in value)):
            raise ConfigError(f"{source}: '{key}' must be null or a list of names or numbers (like [1, 2]), "
                              f"got {_type_name(value)} {value!r}")
        return value
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
        _SCHEMA = read_yaml(SCHEMA_PATH)
    return _SCHEMA


def _load_chain(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict, dict[str, str]]:
    """The file's content merged onto its chain of bases, each file validated on its own; and
    ``{dotted key: the file that set it last}``."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: the 'base:' chain loops back to this file; remove one of the 'base:' lines")
    content = read_yaml(path)
    base_name = content.pop("base", None)
    own = _validate(content, schema_root(), str(path))
    sources = dict.fromkeys(_flat_keys(own), str(path))
    if base_name is None:
        return own, sources
    if not isinstance(base_name, str):
        raise ConfigError(f"{path}: 'base' must be a file name (like base.yaml), got {base_name!r}")
    base, base_sources = _load_chain(path.parent / base_name, seen + (path.resolve(),))
    return _deep_merge(base, own), {**base_sources, **sources}


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


def load_config_and_sources(path: str | Path, overrides: Iterable[str] = (),
                            name: str | None = None) -> tuple[dict, dict[str, str]]:
    """:func:`load_config`, and ``{dotted key: the file or '--set' override that set it}`` for the errors of
    :func:`src.checks.check`."""
    path = Path(path)
    chain, sources = _load_chain(path)
    config = _deep_merge(schema_root(), chain)
    sources = {**dict.fromkeys(_flat_keys(schema_root()), str(SCHEMA_PATH)), **sources}
    for text in overrides:
        keys, value = parse_override(text)
        source = f"{path} --set {text}"
        override = _validate(_nest(keys, value), schema_root(), source)
        config = _deep_merge(config, override)
        sources.update(dict.fromkeys(_flat_keys(override), source))
    check_values(config, sources)
    config["experiment"] = check_run_name(name, path)
    return config, sources


RUN_NAME = re.compile(r"[^\W_][\w.+-]{0,127}")
"""A run name: one path component of letters, digits, '_', '.', '+', '-', beginning with a letter or a digit (so never
'.', '..', a hidden or an option-like name), at most 128 characters. It names the folders
``<log.models_dir>/<name>`` and ``<log.tboard_dir>/<name>``; nested names (``a/b``) are not allowed."""
NAME_ARGUMENT = "name="
"""How the errors say the run-name argument of :func:`load_config` (src/train.py says ``--name``)."""


def check_run_name(name: str | None, path: Path) -> str:
    """``name``, or the stem of the config file ``path`` when ``name`` is None, checked to be a :data:`RUN_NAME`;
    ConfigError, one line, naming the argument (or the file) when it is not."""
    allowed = ("must be one path component of letters, digits, '_', '.', '+', '-', beginning with a letter or a "
               "digit (the run's folder under log.models_dir and log.tboard_dir)")
    if name is not None:
        if not (isinstance(name, str) and RUN_NAME.fullmatch(name)):
            raise ConfigError(f"{NAME_ARGUMENT}{name!r}: a run name {allowed}; give another")
        return name
    if not RUN_NAME.fullmatch(path.stem):
        raise ConfigError(f"{path}: its stem {path.stem!r} names the run, and a run name {allowed}; rename the "
                          f"file, or give the run a name ({NAME_ARGUMENT}NAME)")
    return path.stem


def config_of_dict(tree: dict, source: str) -> tuple[dict, dict[str, str]]:
    """A config held as a dict (a checkpoint's, with its ``experiment``) checked as a file's is: its keys and types
    against configs/base.yaml, then merged onto it (the keys it lacks: base.yaml's defaults), then its own values
    (:func:`check_values`). Returns ``(config, {dotted key: source})``; ConfigError naming ``source`` and the key.
    ``tree`` is not changed."""
    if not isinstance(tree, dict):
        raise ConfigError(f"{source}: expected a mapping of sections (data:, model:, train:, ...), "
                          f"got {_type_name(tree)}")
    sections = {key: value for key, value in tree.items() if key != "experiment"}
    config = _deep_merge(schema_root(), _validate(sections, schema_root(), source))
    sources = dict.fromkeys(_flat_keys(schema_root()), source)
    check_values(config, sources)
    config["experiment"] = tree.get("experiment")
    return config, sources


def load_config(path: str | Path, overrides: Iterable[str] = (), name: str | None = None) -> dict:
    """Load an experiment config: its ``base:`` chain deep-merged, then ``overrides``; its keys, types and own
    values checked (:func:`check_values`). :func:`src.checks.load_checked_config` checks the rest (the domain's)
    too, as every command does before any work.

    Args:
        path: the experiment's YAML file.
        overrides: ``'section.key=value'`` strings (``--set`` on the command line).
        name: the experiment's name; default the file's stem (e.g. ``GRUCell_seed1`` for a
            second seed of ``configs/GRUCell.yaml``).

    Returns:
        The full config (every key of configs/base.yaml) plus ``config['experiment']``.

    Raises:
        ConfigError: one line naming the file (or override) and the key: a key, type or value
            that is not allowed, before anything else is done.
    """
    return load_config_and_sources(path, overrides, name)[0]


def key_source(sources: dict[str, str] | None, key: str) -> str:
    """``"<the file or --set override that set key>: '<key>'"``, how an error names a key (configs/base.yaml when
    ``sources`` does not say)."""
    return f"{(sources or {}).get(key, SCHEMA_PATH)}: '{key}'"


def choice_refusal(value: Any, choices: tuple[str, ...]) -> str | None:
    """``'must be one of a, b, got 'x' (did you mean 'a'?)'`` when ``value`` is not one of ``choices``, else None."""
    if value in choices:
        return None
    close = difflib.get_close_matches(value, choices, n=1) if isinstance(value, str) else []
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"must be one of {', '.join(choices)}, got {value!r}{hint}"


def check_values(config: dict, sources: dict[str, str] | None = None) -> None:
    """Refuse a full config (every key of configs/base.yaml, types already checked) whose own values cannot
    work: a number out of :data:`RANGES`, a value that is not one of :data:`CHOICES`, ``data.groups`` that
    are empty or repeated. The first problem found raises.

    Args:
        config: the config, as :func:`load_config` merges it.
        sources: ``{dotted key: the file or '--set' override that set it}``; default configs/base.yaml.

    Raises:
        ConfigError: ``<source>: '<key>' must be <what is allowed>, got <value>``, one line.
    """
    for section, values in schema_root().items():
        for name in values:
            key, value = f"{section}.{name}", config[section][name]
            if key in RANGES:
                allowed, test = RANGES[key]
                if not test(value):
                    raise ConfigError(f"{key_source(sources, key)} must be {allowed}, got {value!r}")
            if key in CHOICES and (refusal := choice_refusal(value, CHOICES[key])):
                raise ConfigError(f"{key_source(sources, key)} {refusal}")
            if key == "data.groups" and value is not None:
                twice = sorted({str(g) for g in value if value.count(g) > 1})
                if not value or twice:
                    raise ConfigError(f"{key_source(sources, key)} must list each group once, at least one (or be "
                                      f"null for all), got {value!r}{f' ({twice[0]} more than once)' if twice else ''}")


def _nest(keys: list[str], value: Any) -> dict:
    for key in reversed(keys):
        value = {key: value}
    return value


def experiment_configs(configs_dir: str | Path = CONFIG_DIR) -> list[Path]:
    """Every experiment file under ``configs_dir`` (all but :data:`NOT_EXPERIMENTS`), sorted by name."""
    return sorted(p for p in Path(configs_dir).glob("*.yaml") if p.name not in NOT_EXPERIMENTS)


SUITE_FILE = "suite.yaml"  # in the configs folder: the one list of experiments (load_plan)
NOT_EXPERIMENTS = (SCHEMA_PATH.name, SUITE_FILE)  # the files of the configs folder that are no experiment
ROLES = ("main", "variant")  # main: run with the suite's --seeds; variant: with --variant-seeds
BEST = "best "  # 'best <group>' in a comparison: the group's main experiment with the highest mean val accuracy


@dataclass(frozen=True)
class SuitePlan:
    """``configs/suite.yaml``, checked (:func:`load_plan`).

    ``experiments``: ``{name: 'main' | 'variant'}`` in the suite's order; ``groups``: ``{group: [experiments]}``,
    what the notebook shows together; ``comparisons``: ``[(A, B)]`` compared seed by seed, B an experiment or
    ``'best <group>'``."""
    path: Path
    experiments: dict[str, str]
    groups: dict[str, list[str]]
    comparisons: list[tuple[str, str]]

    @property
    def main(self) -> list[str]:
        """The experiments run with ``--seeds``, in the suite's order."""
        return [name for name, role in self.experiments.items() if role == "main"]

    def candidates(self, name: str) -> list[str] | None:
        """For ``'best <group>'``: the group's main experiments, among which the best is chosen; None for a name
        that is an experiment."""
        if not name.startswith(BEST):
            return None
        return [experiment for experiment in self.groups[name[len(BEST):]] if self.experiments[experiment] == "main"]


def load_plan(configs_dir: str | Path = CONFIG_DIR) -> SuitePlan:
    """Read and check ``<configs_dir>/suite.yaml``: every experiment has its ``<configs_dir>/<name>.yaml`` and a
    role (main or variant), a group lists experiments of the plan, a comparison pairs two of them (B may be
    ``'best <group>'`` of a group with a main experiment). ConfigError, one line naming the file and the entry,
    for the first problem found."""
    path = Path(configs_dir) / SUITE_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: not found; list the suite's experiments there ('experiments:' with "
                          f"'<experiment>: main | variant', 'groups:', 'comparisons:'), as configs/{SUITE_FILE} does")
    content = read_yaml(path)
    unknown = sorted(set(content) - {"experiments", "groups", "comparisons"})
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r}; the keys are experiments, groups, comparisons")
    experiments = content.get("experiments")
    if not isinstance(experiments, dict) or not experiments:
        raise ConfigError(f"{path}: experiments: expected a mapping '<experiment>: main | variant' with at least "
                          f"one experiment, got {experiments!r}")
    for name, role in experiments.items():
        name = str(name)
        if name in {Path(file).stem for file in NOT_EXPERIMENTS} or re.search(r"_(seed|fold)\d+$", name):
            raise ConfigError(f"{path}: experiments: {name!r} cannot name an experiment (base and suite are "
                              f"not experiments; _seed<s> and _fold<k> end the names of its runs); rename it")
        if role not in ROLES:
            raise ConfigError(f"{path}: experiments.{name}: {role!r}; give main (run with --seeds) or variant "
                              f"(run with --variant-seeds)")
        if not (Path(configs_dir) / f"{name}.yaml").is_file():
            raise ConfigError(f"{path}: experiments.{name}: no {Path(configs_dir) / name}.yaml; write that config "
                              f"or remove {name} from the plan")
    experiments = {str(name): role for name, role in experiments.items()}
    have = f"(have: {', '.join(experiments)})"
    groups = content.get("groups") or {}
    if not isinstance(groups, dict):
        raise ConfigError(f"{path}: groups: expected a mapping '<group>: [experiments]', got {groups!r}")
    for group, members in groups.items():
        if not isinstance(members, list) or not members or not all(isinstance(name, str) for name in members):
            raise ConfigError(f"{path}: groups.{group}: expected a list of experiments, got {members!r}")
        outside = [name for name in members if name not in experiments]
        if outside:
            raise ConfigError(f"{path}: groups.{group}: {outside[0]!r} is not in experiments {have}")
    groups = {str(group): list(members) for group, members in groups.items()}
    pairs = content.get("comparisons") or []
    if not isinstance(pairs, list):
        raise ConfigError(f"{path}: comparisons: expected a list of [A, B] pairs, got {pairs!r}")
    plan = SuitePlan(path, experiments, groups, [])
    for i, pair in enumerate(pairs):
        where = f"{path}: comparisons[{i}] {pair!r}"
        if not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(name, str) for name in pair):
            raise ConfigError(f"{where}: expected [A, B], two experiments")
        a, b = pair
        if a not in experiments:
            raise ConfigError(f"{where}: {a!r} is not in experiments {have}")
        if b.startswith(BEST):
            group = b[len(BEST):]
            if group not in groups:
                raise ConfigError(f"{where}: {b!r} names no group (have: {', '.join(groups) or 'none'})")
            if not plan.candidates(b):
                raise ConfigError(f"{where}: group {group} has no main experiment to choose the best from")
        elif b not in experiments:
            raise ConfigError(f"{where}: {b!r} is not in experiments {have}, nor 'best <group>'")
        if a == b:
            raise ConfigError(f"{where}: compares {a} with itself; name two experiments")
        plan.comparisons.append((a, b))
    return plan
