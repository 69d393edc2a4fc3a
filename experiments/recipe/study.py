"""The recipe study: which training recipe to adopt, chosen by cross-validation over the training persons.

    python -m experiments.recipe.study [--only-recipes old clips8 ...] [--only-models GRUCell ...] [--seeds N]
            [--folds 1 2 ...] [--shard K/N] [--data DIR] [--set KEY=VALUE ...] [--models-dir models/recipe]
            [--out DIR] [--imgs DIR] [--recipes experiments/recipe/recipes.yaml] [--configs configs]
    python -m experiments.recipe.study --report     # only rebuild the table and the figure from the runs there are

``experiments/recipe/recipes.yaml`` is the study's design (:func:`load_study`): the models (experiments of configs/),
the seeds, the K-fold cross-validation by person (``data.split: kfold`` over ``data.groups``: KTH's training persons
1-16, so that the test persons 17-25 are never read; each fold's validation persons are carved from its training
persons) and the recipes, each a set of config keys over the model's config (``base: <recipe>`` starts from another).

A run is one model x recipe x seed x fold: ``configs/<model>.yaml`` with the cross-validation's keys, ``data.fold=k``,
the recipe's keys, ``train.seed=s`` and ``--set`` (last, so it wins; it may not set the keys the study sets), trained
and then tested on fold k's held-out persons by src.planning's machinery (:func:`src.planning.run_unless_claimed`), in
``<models dir>/<recipe>/<run>/``, the run named as the suite names its K-fold runs (``GRUCell_fold1``,
``GRUCell_fold1_seed1``, ...). So the study resumes across sessions: a finished run (its results.json made on the same
data with the same config) is reused, an interrupted one resumes from its last.pth, a run that another live process
holds (run.lock) is skipped, and ``--shard K/N`` runs the K-th of N disjoint slices of the runs (one per process or
machine sharing the folder). The runs go seed by seed (seed 0 of every fold, recipe and model first), so a study cut
short is a whole comparison over fewer seeds. Two lines per run say where it stands; a run that fails is reported and
the study goes on (exit status 1 at the end). A recipe that only adds ``train.select: last`` to another (``clips8_last``
to ``clips8``) trains nothing: each of its runs starts from a copy of the other recipe's finished last.pth, which the
trainer turns into best.pth without training (:func:`selection_source`); it is skipped while that run is not finished.

Then, and with ``--report`` alone, it writes from the results.json files there (:func:`report`):

- ``results/recipe.md``: per recipe and model, the held-out test video and clip accuracy (mean ± sample std over
  seeds x folds, and n), the test video accuracy pooled over the folds of each seed, the training wall minutes per
  run on its CPU (results.json: epochs x mean epoch time, validation included), the optimizer steps per run; per
  recipe over every model, the same and the paired difference to the first recipe; and the recipe the study chose
  (:func:`choose`): the highest mean held-out test video accuracy over every model, or, among the recipes within
  one std of it, the one with the smallest std. Partial results say how many runs of how many;
- ``results/recipe_runs.csv``: the runs behind it, one row each (:data:`RUN_COLUMNS`), so that git keeps them
  (the runs' folders are not committed). It is also the study's record: a planned run whose folder is gone (lost
  with a session's machine) counts from its row, and is not trained again, while the row's config digest is the
  run's and its data fingerprint the data's (:func:`read_runs`, :func:`recorded_runs`);
- ``imgs/recipe.png``: held-out test video accuracy against training minutes per run, mean ± std, one marker per
  recipe and one colour per model.

Every output goes under the folders given (src.analysis.output_dirs): with the default ``--models-dir
models/recipe``, the table to ``results/``, the figure to ``imgs/`` and the TensorBoard events to
``tboard_logs/recipe/<recipe>/<run>/``; with ``--models-dir DIR``, any other folder, ``DIR/recipe.md``,
``DIR/recipe.png`` and ``DIR/tboard_logs/<recipe>/<run>/``; ``--out`` and ``--imgs`` put the table and figure
elsewhere. The arguments, recipes.yaml, every planned config and an explicit data folder are checked before any
run starts; each bad one gets one ``error:`` line. The library part (the design, the runs, the report) logs its
lines (``logging``); :func:`main`, the command line, prints them.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import yaml

from src.analysis import CONFIDENCE, fold_columns, groups_text, kfold_summary, output_dirs, pick_data_source, t_interval
from src.checks import load_checked_config
from src.config import CONFIG_DIR, NOT_EXPERIMENTS, ConfigError, read_yaml, schema_root
from src.data.index import with_channels
from src.files import atomic_path, atomic_write, folder_refusal
from src.planning import fold_overrides, parse_shard, planned_suite_runs, run_unless_claimed, runs_refusal, shard
from src.training.provenance import comparable_config, config_differences, data_label, describe_data
from src.training.runlock import LOCK_NAME

logger = logging.getLogger(__name__)

STUDY_FILE = Path(__file__).with_name("recipes.yaml")  # the study's design
STUDY_MODELS_DIR = "models/recipe"  # its table and figure are the committed results/recipe.md and imgs/recipe.png
CROSS_VALIDATION_KEYS = ("folds", "groups", "val_fraction", "split_seed")  # recipes.yaml's cross_validation: data.<key>
STUDY_KEYS = ("train.seed", "data.split", "data.fold", *(f"data.{key}" for key in CROSS_VALIDATION_KEYS))
"""The config keys the study sets (seeds, cross_validation, the fold of each run): no recipe nor --set may."""
RECIPE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # a recipe names a folder


@dataclass(frozen=True)
class Study:
    """``experiments/recipe/recipes.yaml``, checked (:func:`load_study`). ``cross_validation``: the overrides of every
    run besides :func:`src.planning.fold_overrides` (``data.groups=...``, ...); ``recipes``: ``{recipe: its
    overrides}``, its base's first, in the file's order; ``keys``: ``{recipe: 'key=value, ...'}`` as the report
    shows them."""
    path: Path
    models: list[str]
    seeds: int
    folds: int
    cross_validation: list[str]
    recipes: dict[str, list[str]]
    keys: dict[str, str]

    def overrides(self, recipe: str, fold: int) -> list[str]:
        """The overrides of the run of ``recipe`` that tests fold ``fold`` (``train.seed`` aside)."""
        return [*fold_overrides(fold, self.folds), *self.cross_validation, *self.recipes[recipe]]

    @property
    def reference(self) -> str:
        """The recipe the others are compared with, seed by seed: the first."""
        return next(iter(self.recipes))


class StudyRun(NamedTuple):
    recipe: str
    model: str   # configs/<model>.yaml
    run: str     # its folder, <models dir>/<recipe>/<run>
    seed: int    # train.seed
    fold: int    # data.fold, the held-out fold it is tested on


def _override(key: str, value) -> str:
    """``'key=value'``, the value as YAML reads it back: a string as it is where YAML reads it so, else as JSON."""
    if isinstance(value, str):
        try:
            if yaml.safe_load(value) == value:
                return f"{key}={value}"
        except yaml.YAMLError:
            pass
    return f"{key}={json.dumps(value)}"


def _compose(name: str, recipes: dict, path: Path, seen: tuple = ()) -> list[str]:
    """The overrides of recipe ``name``: its base's, then its own keys; one per key, the recipe's own value in
    the place of its base's."""
    where = f"{path}: recipes.{name}"
    recipe = recipes[name] if recipes[name] is not None else {}
    if not isinstance(recipe, dict):
        raise ConfigError(f"{where}: expected a mapping of config keys (like data.train_clips_per_video: 8) or {{}}, "
                          f"got {recipe!r}")
    if name in seen:
        raise ConfigError(f"{where}: its 'base:' chain loops back to it ({' -> '.join([*seen, name])}); remove one")
    overrides = []
    if "base" in recipe:
        base = recipe["base"]
        if base not in recipes:
            raise ConfigError(f"{where}: base {base!r} is not a recipe (have: {', '.join(map(str, recipes))})")
        overrides = _compose(base, recipes, path, (*seen, name))
    for key, value in recipe.items():
        if key == "base":
            continue
        if not isinstance(key, str) or key.count(".") != 1:
            raise ConfigError(f"{where}: {key!r} is not a config key (section.key, like data.train_clips_per_video)")
        if key in STUDY_KEYS or key.startswith("log."):
            raise ConfigError(f"{where}: {key} is set by the study (seeds, cross_validation, the runs' folds and "
                              f"folders), not by a recipe; leave it out")
        overrides.append(_override(key, value))
    # one override per key: a recipe's own value replaces its base's, where the base had it
    return list({override.partition("=")[0]: override for override in overrides}.values())


def load_study(path: str | Path = STUDY_FILE, configs_dir: str | Path = CONFIG_DIR) -> Study:
    """Read and check the study's design, ``experiments/recipe/recipes.yaml``::

        models: [GRUCell, OwnLSTM]       # experiments: <configs_dir>/<model>.yaml
        seeds: 3                         # train.seed 0 .. seeds - 1
        cross_validation:                # data.split kfold with data.<key> of: folds (K >= 2), groups,
          folds: 4                       #   val_fraction, split_seed; run k tests fold k
          groups: [1, 2, ..., 16]
        recipes:                         # name: {config key: value}; 'base: <recipe>' composes
          old: {}
          clips8: {data.train_clips_per_video: 8}

    Every model must load under every recipe (:func:`src.checks.load_checked_config`); a recipe may not set
    :data:`STUDY_KEYS` nor ``log.*``. ``configs_dir``: where the models' configs are (default: configs/).
    Raises ConfigError, one line naming the file and the entry, for the first problem found."""
    path, configs_dir = Path(path), Path(configs_dir)
    if not path.is_file():
        raise ConfigError(f"{path}: not found; write the study's design there (models:, seeds:, cross_validation:, "
                          f"recipes:), as experiments/recipe/recipes.yaml does")
    content = read_yaml(path)
    unknown = sorted(map(str, set(content) - {"models", "seeds", "cross_validation", "recipes"}))
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r}; the keys are models, seeds, cross_validation, recipes")
    models = content.get("models")
    if (not isinstance(models, list) or not models or not all(isinstance(model, str) for model in models)
            or len(set(models)) < len(models)):
        raise ConfigError(f"{path}: models: expected a list of experiments, each once (like [GRUCell, OwnLSTM]), "
                          f"got {models!r}")
    for model in models:
        if f"{model}.yaml" in NOT_EXPERIMENTS or not (configs_dir / f"{model}.yaml").is_file():
            raise ConfigError(f"{path}: models: {model!r} is not an experiment of {configs_dir} (no "
                              f"{configs_dir / model}.yaml); name experiment configs")
    seeds = content.get("seeds")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError(f"{path}: seeds: expected a whole number >= 1 (seeds 0 .. seeds - 1), got {seeds!r}")
    cross_validation = content.get("cross_validation")
    if not isinstance(cross_validation, dict) or "folds" not in cross_validation:
        raise ConfigError(f"{path}: cross_validation: expected a mapping with folds (and groups, val_fraction, "
                          f"split_seed: data.folds, data.groups, ... of data.split kfold), got {cross_validation!r}")
    unknown = sorted(map(str, set(cross_validation) - set(CROSS_VALIDATION_KEYS)))
    if unknown:
        raise ConfigError(f"{path}: cross_validation: unknown key {unknown[0]!r}; the keys are "
                          f"{', '.join(CROSS_VALIDATION_KEYS)}")
    folds = cross_validation["folds"]
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError(f"{path}: cross_validation.folds: expected a whole number >= 2 (data.folds), got {folds!r}")
    shared = [_override(f"data.{key}", value) for key, value in cross_validation.items() if key != "folds"]
    first = configs_dir / f"{models[0]}.yaml"
    try:
        load_checked_config(first, [*fold_overrides(1, folds), *shared])
    except ConfigError as error:
        raise ConfigError(f"{path}: cross_validation: {error}") from None
    recipes = content.get("recipes")
    if not isinstance(recipes, dict) or not recipes:
        raise ConfigError(f"{path}: recipes: expected a mapping '<recipe>: {{config key: value}}' with at least one "
                          f"recipe, got {recipes!r}")
    for name in recipes:
        if not isinstance(name, str) or not RECIPE_NAME.fullmatch(name) or name == "tboard_logs":
            raise ConfigError(f"{path}: recipes: {name!r} cannot name a recipe (a folder of the study: letters, "
                              f"digits, _ and -, not tboard_logs); rename it")
    composed = {name: _compose(name, recipes, path) for name in recipes}
    for name, overrides in composed.items():
        for model in models:
            try:
                load_checked_config(configs_dir / f"{model}.yaml", [*fold_overrides(1, folds), *shared, *overrides])
            except ConfigError as error:
                raise ConfigError(f"{path}: recipes.{name}: {error}") from None
    keys = {name: ", ".join(overrides) or f"none: the {'/'.join(models)} configs as they are"
            for name, overrides in composed.items()}
    return Study(path, list(models), seeds, folds, shared, composed, keys)


def planned_study_runs(study: Study, recipes=None, models=None, seeds: int | None = None,
                       folds=None) -> list[StudyRun]:
    """The runs of ``study`` (or of the ``recipes``, ``models``, first ``seeds`` seeds and ``folds`` given), seed by
    seed, then fold, recipe and model in the study's order; named as :func:`src.planning.planned_suite_runs` names
    the runs of K-fold cross-validation."""
    recipes = list(study.recipes) if recipes is None else [name for name in study.recipes if name in recipes]
    models = study.models if models is None else [model for model in study.models if model in models]
    folds = range(1, study.folds + 1) if folds is None else folds
    runs = [StudyRun(recipe, planned.experiment, planned.run, planned.seed, planned.fold) for recipe in recipes
            for planned in planned_suite_runs(dict.fromkeys(models, "main"), study.seeds if seeds is None else seeds,
                                      folds=study.folds) if planned.fold in folds]
    return sorted(runs, key=lambda run: (run.seed, run.fold, recipes.index(run.recipe), models.index(run.model)))


def selection_source(study: Study, recipe: str) -> str | None:
    """The recipe whose runs train exactly as ``recipe``'s do, when ``recipe`` only adds ``train.select: last`` to it
    (``clips8`` for ``clips8_last``), else None. Training does not depend on ``train.select``, so a run of ``recipe``
    need not train: a copy of that recipe's finished last.pth, resumed with ``train.select: last``, becomes its
    best.pth without a step (src.training.trainer)."""
    overrides = study.recipes[recipe]
    if "train.select=last" not in overrides:
        return None
    trained = [item for item in overrides if not item.startswith("train.select=")]
    return next((other for other, theirs in study.recipes.items()
                 if "train.select=last" not in theirs and [item for item in theirs
                                                         if not item.startswith("train.select=")] == trained), None)


def reuse_training(study: Study, planned: StudyRun, models_dir: str | Path) -> tuple[str, bool] | None:
    """For a run of a recipe with a :func:`selection_source` that has neither results.json nor last.pth yet: copy
    the source's run's last.pth into its folder, once that run is finished (its results.json exists).
    Returns ``(the line that says what was done, whether the run can go on)``: it cannot while the source's
    run is not finished (it would train what the source trains); None for every other run."""
    source = selection_source(study, planned.recipe)
    target = Path(models_dir) / planned.recipe / planned.run
    if source is None or (target / "results.json").is_file() or (target / "last.pth").is_file():
        return None
    trained = Path(models_dir) / source / planned.run
    if not (trained / "results.json").is_file() or not (trained / "last.pth").is_file():
        return f"waits for {trained} to finish (run {source} first; this run re-selects its last epoch)", False
    target.mkdir(parents=True, exist_ok=True)
    with atomic_path(target / "last.pth") as tmp:
        shutil.copyfile(trained / "last.pth", tmp)
    return f"not trained: the last epoch of {trained / 'last.pth'} (train.select last)", True


def run_overrides(study: Study, planned: StudyRun, models_dir: str | Path, tboard_dir: str | Path,
                  extra=()) -> list[str]:
    """Every override of a planned run but ``train.seed``: its folders (``<models dir>/<recipe>``, ``<tboard
    dir>/<recipe>``), the study's (:meth:`Study.overrides`), then ``extra`` (the command line's --set)."""
    return [f"log.models_dir={Path(models_dir) / planned.recipe}",
            f"log.tboard_dir={Path(tboard_dir) / planned.recipe}", *study.overrides(planned.recipe, planned.fold),
            *extra]


def planned_config(study: Study, planned: StudyRun, configs_dir: str | Path = "configs", extra=()) -> dict:
    """The config ``planned`` trains with (its folders aside: they do not change a result)."""
    return load_checked_config(Path(configs_dir) / f"{planned.model}.yaml",
                       [f"train.seed={planned.seed}", *run_overrides(study, planned, ".", ".", extra)])


def record_rows(record: pd.DataFrame | None) -> dict[tuple, dict]:
    """recipe_runs.csv's rows by ``(recipe, model, seed, fold)``, a :class:`StudyRun`'s identity."""
    if record is None:
        return {}
    return {(row["recipe"], row["experiment"], int(row["seed"]), int(row["fold"])): row
            for row in record.to_dict("records")}


def read_runs(study: Study, models_dir: str | Path, extra=(), configs_dir: str | Path = "configs",
              record: pd.DataFrame | None = None) -> tuple[pd.DataFrame, list[str]]:
    """One row per planned run of ``study`` with a ``<models dir>/<recipe>/<run>/results.json`` made with its
    config (``extra``: the overrides it ran with; ``log`` and ``data.root`` aside), and one line for each results.json
    left out (no provenance, or another config). A planned run without a folder takes its row of ``record``
    (recipe_runs.csv, :func:`read_record`) when that row's ``config`` is the run's :func:`config_digest`: git keeps
    the rows, not the folders, so a study outlives the machine it ran on. Columns: ``recipe``, ``experiment`` (the
    model), ``run``, ``seed``, those of :func:`src.analysis.fold_columns` (``test video ids``: None for a recorded
    row), ``val acc``, ``test clip acc``, ``test video acc`` (on the held-out fold), ``selected epoch``, ``train
    min`` (:func:`training_minutes`), ``plateau epoch`` (:func:`src.training.metrics.plateau_epoch`: the first within
    half a point of the last epoch's validation clip accuracy) and ``plateau min`` (the training minutes up to its
    end), ``steps`` (optimizer steps), ``fingerprint``, ``data``,
    ``groups are`` (``persons`` on KTH, else ``groups``), ``train device``, ``precision`` (of training), ``config``
    (its digest) and ``recorded`` (True: the row comes from ``record``)."""
    from src.training.metrics import plateau_epoch  # torch: only to read runs, so bad arguments fail fast

    recorded = record_rows(record)
    rows, left_out = [], []
    for planned in planned_study_runs(study):
        path = Path(models_dir) / planned.recipe / planned.run / "results.json"
        config = planned_config(study, planned, configs_dir, extra)
        if not path.is_file():
            row = recorded.get((planned.recipe, planned.model, planned.seed, planned.fold))
            if row is None:
                continue
            if row["config"] != config_digest(config):
                left_out.append(f"{RECORD_NAME}: {planned.recipe}/{planned.run} was made with another config than "
                                f"the study's now (its folder is gone: run it again)")
                continue
            rows.append({**row, "run": planned.run, "test video ids": None, "recorded": True})
            continue
        results = json.loads(path.read_text())
        provenance = results.get("provenance") or {}
        if not provenance.get("data"):
            left_out.append(f"{path}: no provenance (made by older code)")
            continue
        config = with_channels(config, provenance["data"].get("channels", 1))  # auto: the run's data's
        changes = config_differences(results.get("config", {}), config)
        if changes:
            left_out.append(f"{path}: made with another config than the study's ({'; '.join(changes[:3])}"
                            f"{'; ...' if len(changes) > 3 else ''})")
            continue
        history, plateau = results["history"], plateau_epoch(results["history"])
        rows.append({"recipe": planned.recipe, "experiment": planned.model, "run": planned.run, "seed": planned.seed,
                     **fold_columns(results), "val acc": results["val_accuracy"],
                     "test clip acc": results["clip_accuracy"], "test video acc": results["video_accuracy"],
                     "selected epoch": results["best_epoch"],
                     "train min": training_minutes(results),
                     "plateau epoch": plateau, "plateau min": training_minutes(results, plateau),
                     "steps": sum(row["steps"] for row in history),
                     "fingerprint": provenance["data"]["fingerprint"], "data": data_label(provenance["data"]),
                     "groups are": "persons" if provenance.get("persons") else "groups",
                     "train device": provenance["train_machine"], "precision": provenance["train_precision"],
                     "config": config_digest(config), "recorded": False})
    columns = ["recipe", "experiment", "run", "seed", "fold", "folds", "test videos", "test video ids", "val acc",
               "test clip acc", "test video acc", "selected epoch", "train min", "plateau epoch", "plateau min",
               "steps", "fingerprint", "data", "groups are", "train device", "precision", "config", "recorded"]
    return pd.DataFrame(rows, columns=columns), left_out


RUN_COLUMNS = ["recipe", "experiment", "run", "seed", "fold", "folds", "test videos", "val acc", "test clip acc",
               "test video acc", "selected epoch", "plateau epoch", "train min", "plateau min", "steps", "train device",
               "precision", "fingerprint", "data", "groups are", "config"]
"""recipe_runs.csv's columns: one row per run of the study, as :func:`read_runs` reads it. ``config`` is
:func:`config_digest` of the run's config: a row stands for a planned run only while the study would still train
it so (and ``fingerprint`` is the data's)."""
RECORD_NAME = "recipe_runs.csv"


def config_digest(config: dict) -> str:
    """A short SHA-1 of what in ``config`` changes a result (:func:`src.training.provenance.comparable_config`:
    log, data.root and train.amp aside; the precision is its own column), for recipe_runs.csv. ``data.channels:
    auto`` (the data's) is digested as 1, the gray KTH's that every recorded run read, so that their rows stand; a
    row of colour data (digested as 3) is then left out and run again, never kept for another setting."""
    config = with_channels(config, 1)
    text = json.dumps(comparable_config(config), sort_keys=True, default=str)
    return "sha1:" + hashlib.sha1(text.encode()).hexdigest()[:16]


def read_record(path: str | Path) -> tuple[pd.DataFrame | None, str | None]:
    """``(rows, None)`` of a recipe_runs.csv written by :func:`report`; ``(None, why)`` when there is none or it
    lacks :data:`RUN_COLUMNS` (written by older code: its runs count only while their folders are there)."""
    path = Path(path)
    if not path.is_file():
        return None, None
    record = pd.read_csv(path)
    missing = [column for column in RUN_COLUMNS if column not in record.columns]
    if missing:
        return None, f"{path}: no {missing[0]!r} column (written by older code); its rows are not used"
    return record, None


def recorded_runs(study: Study, runs: list[StudyRun], record: pd.DataFrame | None, configs_dir: str | Path = "configs",
                  extra=(), data_root=None) -> set[StudyRun]:
    """The ``runs`` that ``record`` (recipe_runs.csv) holds with their config's :func:`config_digest` and made on the
    data they would train on (``data_root``, else their config's data.root): the study need not train them again
    when their folders are gone."""
    if record is None or record.empty:
        return set()
    rows = record_rows(record)
    fingerprints, found = {}, set()
    for planned in runs:
        row = rows.get((planned.recipe, planned.model, planned.seed, planned.fold))
        if row is None:
            continue
        config = planned_config(study, planned, configs_dir, extra)
        root = str(data_root or config["data"]["root"])
        if root not in fingerprints:
            try:
                fingerprints[root] = describe_data(root)["fingerprint"]
            except (OSError, ValueError, KeyError):  # no prepared data there: the run will say so when it starts
                fingerprints[root] = None
        if row["config"] == config_digest(config) and row["fingerprint"] == fingerprints[root]:
            found.add(planned)
    return found


def training_minutes(results: dict, epochs: int | None = None) -> float:
    """A run's training wall time in minutes, of its first ``epochs`` (default all): that many epochs x the median
    of its epochs' wall times (training, BatchNorm recomputation and validation; not testing), so that a load that
    shared the CPU for a few of the epochs (another job, a test run) does not count."""
    epochs = results["epochs"] if epochs is None else epochs
    return float(np.median([row["epoch_time_s"] for row in results["history"]])) * epochs / 60


def _spread(values: pd.Series) -> dict:
    return {"mean": values.mean(), "std": values.std(ddof=1) if len(values) > 1 else float("nan")}


def summarize_study(runs: pd.DataFrame, study: Study) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(per recipe, per recipe and model)``: for each, ``runs`` and ``planned`` (how many of the study's), and
    ``<column> mean`` / ``<column> std`` (sample std, ddof=1; NaN for one run) of ``test video acc``, ``test clip
    acc``, ``train min``, ``plateau min``, ``plateau epoch``, ``time ratio`` and ``plateau ratio`` (the run's training
    minutes, and its minutes to its plateau, over the whole training minutes of the reference recipe's run of the
    same model, seed and fold), ``steps`` and ``selected epoch`` over its runs (seeds x folds). Per recipe and model
    also ``pooled``: ``{seed: test video accuracy pooled over its folds}`` for each seed whose K fold runs are all there
    (:func:`src.analysis.kfold_summary`). Per recipe also ``diff mean``, ``diff std``, ``diff ci low``, ``diff ci high``
    and ``pairs``: test video accuracy minus the reference recipe's (:attr:`Study.reference`), run by run over the
    same model, seed and fold, with the 95 % t-interval of its mean (:func:`src.analysis.t_interval`)."""
    key = ["experiment", "seed", "fold"]
    of_reference = runs[runs["recipe"] == study.reference].set_index(key)
    runs = runs.set_index(key)
    # minutes over the reference run's of the same model, seed and fold: those ran in the same session, so the
    # ratio holds where a session's CPU is slower or faster than another's (the minutes themselves do not)
    runs["time ratio"] = runs["train min"] / of_reference["train min"].reindex(runs.index)
    runs["plateau ratio"] = runs["plateau min"] / of_reference["train min"].reindex(runs.index)
    runs = runs.reset_index()
    reference = of_reference["test video acc"]
    statistics = ["test video acc", "test clip acc", "train min", "plateau min", "plateau epoch", "time ratio",
                  "plateau ratio", "steps", "selected epoch"]

    def row(group: pd.DataFrame, planned: int) -> dict:
        values = {"runs": len(group), "planned": planned}
        for column in statistics:
            values.update({f"{column} {stat}": value for stat, value in _spread(group[column]).items()})
        return values

    per_recipe, per_model = [], []
    for recipe in study.recipes:
        of_recipe = runs[runs["recipe"] == recipe]
        diff = (of_recipe.set_index(key)["test video acc"] - reference).dropna()
        low, high = t_interval(diff)
        per_recipe.append({"recipe": recipe, **row(of_recipe, len(study.models) * study.seeds * study.folds),
                           "diff mean": diff.mean() if len(diff) else float("nan"),
                           "diff std": diff.std(ddof=1) if len(diff) > 1 else float("nan"),
                           "diff ci low": low, "diff ci high": high, "pairs": len(diff)})
        for model in study.models:
            group = of_recipe[of_recipe["experiment"] == model]
            sets = kfold_summary(group) if len(group) else pd.DataFrame(columns=["problem"])
            pooled = {int(seed): acc for seed, acc, problem in
                      zip(sets.get("seed", []), sets.get("pooled test video acc", []), sets["problem"]) if not problem}
            per_model.append({"recipe": recipe, "experiment": model, **row(group, study.seeds * study.folds),
                              "pooled": dict(sorted(pooled.items()))})
    return pd.DataFrame(per_recipe), pd.DataFrame(per_model)


def choose(per_recipe: pd.DataFrame) -> tuple[str, str] | None:
    """``(recipe, why)``: the recipe with the highest mean held-out test video accuracy; when others lie within
    one std (the top recipe's) of that mean, the one of them with the smallest std. None when no recipe has runs."""
    ranked = per_recipe[per_recipe["runs"] > 0].sort_values("test video acc mean", ascending=False, kind="stable")
    if ranked.empty:
        return None
    top = ranked.iloc[0]
    mean, std = top["test video acc mean"], top["test video acc std"]
    if np.isnan(std):
        return top["recipe"], f"the highest mean held-out test video accuracy ({100 * mean:.1f} %, one run)"
    near = ranked[ranked["test video acc mean"] >= mean - std]
    chosen = near.sort_values("test video acc std", kind="stable").iloc[0]
    highest = (f"the highest mean held-out test video accuracy is {top['recipe']}'s "
               f"({100 * mean:.1f} ± {100 * std:.1f} %)")
    if len(near) == 1:
        return chosen["recipe"], f"{highest}, and no other recipe's mean lies within one std ({100 * std:.1f} points)"
    others = ", ".join(f"{name} ({100 * m:.1f} ± {100 * s:.1f} %)" for name, m, s in
                       zip(near["recipe"], near["test video acc mean"], near["test video acc std"]))
    return chosen["recipe"], (f"{highest}; within one std of it ({100 * std:.1f} points): {others}; of those, "
                              f"{chosen['recipe']} has the smallest std")


def _cell(mean: float, std: float, scale: float = 100, digits: int = 1) -> str:
    if np.isnan(mean):
        return "–"
    return f"{scale * mean:.{digits}f}" + ("" if np.isnan(std) else f" ± {scale * std:.{digits}f}")


def _ratio(mean: float, std: float) -> str:
    if np.isnan(mean):
        return "–"
    return f"{mean:.2f}x" + ("" if np.isnan(std) else f" ± {std:.2f}")


def study_header(runs: pd.DataFrame, study: Study, per_recipe: pd.DataFrame) -> str:
    """The report's title and first paragraph (the data, the protocol, the machines), then the partial results'
    line and the choice (:func:`choose`)."""
    planned = len(study.models) * len(study.recipes) * study.seeds * study.folds
    machines = runs["train device"].value_counts()
    devices = "; ".join(f"{machine} ({count} runs)" for machine, count in machines.items()) or "unknown"
    if len(machines) > 1:  # the study spans sessions, and sessions may get other CPUs
        devices += ": their training minutes are comparable only within one machine"
    precisions = ", ".join(sorted(map(str, runs["precision"].dropna().unique()))) or "unknown"
    groups = next((json.loads(item.partition("=")[2]) for item in study.cross_validation
                   if item.startswith("data.groups=")), None)
    kind = runs["groups are"].iloc[0]
    read = f"only {kind} {groups_text(groups)} are read (data.groups)" if groups else f"all {kind} are read"
    text = (f"# The recipe study\n\nMeasured on {runs['data'].iloc[0]} (data fingerprint "
            f"{runs['fingerprint'].iloc[0][:17]}...), designed in {study.path.name}: {len(study.models)} models x "
            f"{len(study.recipes)} recipes x {study.seeds} seeds x {study.folds} folds = {planned} runs. "
            f"{study.folds}-fold cross-validation by group (data.split kfold): {read}; the run of fold k is tested on "
            f"the held-out {kind} of fold k, and selects its model on validation {kind} carved from the others. "
            f"Trained in {precisions} on {devices}.")
    kept = int(runs["recorded"].astype(bool).sum()) if "recorded" in runs else 0
    if kept:
        text += (f" {kept} of the runs {'is a row' if kept == 1 else 'are rows'} of {RECORD_NAME} alone, written "
                 f"from {'its folder' if kept == 1 else 'their folders'} (checkpoints, histories) while "
                 f"{'it was' if kept == 1 else 'they were'} there; the machine {'it' if kept == 1 else 'they'} "
                 f"ran on is gone.")
    text += "\n\n"
    if len(runs) < planned:
        counts = ", ".join(f"{recipe} {n} of {p}" for recipe, n, p in
                           zip(per_recipe["recipe"], per_recipe["runs"], per_recipe["planned"]))
        text += f"**Partial results: {len(runs)} of {planned} runs** ({counts}); the choice below is provisional.\n\n"
    choice = choose(per_recipe)
    if choice is not None:
        text += f"**The study chose `{choice[0]}`{'' if len(runs) == planned else ' (so far)'}**: {choice[1]}.\n\n"
    return text


def per_recipe_table(per_recipe: pd.DataFrame, study: Study) -> pd.DataFrame:
    """The report's first table: per recipe over every model (accuracies in %, the paired differences, minutes)."""
    reference = study.reference
    return pd.DataFrame({
        "recipe": per_recipe["recipe"],
        "config keys": [study.keys[name] for name in per_recipe["recipe"]],
        "runs": [f"{n} of {p}" for n, p in zip(per_recipe["runs"], per_recipe["planned"])],
        "test video acc %": [_cell(m, s) for m, s in zip(per_recipe["test video acc mean"],
                                                          per_recipe["test video acc std"])],
        "test clip acc %": [_cell(m, s) for m, s in zip(per_recipe["test clip acc mean"],
                                                         per_recipe["test clip acc std"])],
        f"− {reference}, paired (pp)": ["–" if name == reference else _cell(m, s) + f" (n {n})" for name, m, s, n in
                                        zip(per_recipe["recipe"], per_recipe["diff mean"], per_recipe["diff std"],
                                            per_recipe["pairs"])],
        f"{CONFIDENCE:.0%} CI (pp)": ["–" if np.isnan(low) or name == reference else
                                      f"[{100 * low:+.1f}, {100 * high:+.1f}]" for name, low, high in
                                      zip(per_recipe["recipe"], per_recipe["diff ci low"], per_recipe["diff ci high"])],
        "training min per run": [_cell(m, s, 1) for m, s in zip(per_recipe["train min mean"],
                                                                 per_recipe["train min std"])],
        "optimizer steps per run": [_cell(m, float("nan"), 1, 0) for m in per_recipe["steps mean"]],
        "min to plateau": [_cell(m, s, 1) for m, s in zip(per_recipe["plateau min mean"],
                                                           per_recipe["plateau min std"])],
        f"time / {reference}'s, paired": [_ratio(m, s) for m, s in zip(per_recipe["time ratio mean"],
                                                                       per_recipe["time ratio std"])],
        f"plateau / {reference}'s run, paired": [_ratio(m, s) for m, s in zip(per_recipe["plateau ratio mean"],
                                                                              per_recipe["plateau ratio std"])],
    })


def per_model_table(per_model: pd.DataFrame) -> pd.DataFrame:
    """The report's second table: per recipe and model."""
    return pd.DataFrame({
        "recipe": per_model["recipe"], "model": per_model["experiment"],
        "runs": [f"{n} of {p}" for n, p in zip(per_model["runs"], per_model["planned"])],
        "test video acc %": [_cell(m, s) for m, s in zip(per_model["test video acc mean"],
                                                          per_model["test video acc std"])],
        "test clip acc %": [_cell(m, s) for m, s in zip(per_model["test clip acc mean"],
                                                         per_model["test clip acc std"])],
        "test video acc % pooled over the folds, per seed": [
            ", ".join(f"seed {seed}: {100 * acc:.1f}" for seed, acc in pooled.items()) or "–"
            for pooled in per_model["pooled"]],
        "training min per run": [_cell(m, s, 1) for m, s in zip(per_model["train min mean"],
                                                                 per_model["train min std"])],
        "optimizer steps per run": [_cell(m, float("nan"), 1, 0) for m in per_model["steps mean"]],
        "selected epoch": [_cell(m, s, 1) for m, s in zip(per_model["selected epoch mean"],
                                                          per_model["selected epoch std"])],
        "plateau epoch": [_cell(m, s, 1) for m, s in zip(per_model["plateau epoch mean"],
                                                         per_model["plateau epoch std"])],
    })


def study_notes(reference: str) -> str:
    """What the report's numbers are (``reference``: the recipe the others are paired with)."""
    return ("Accuracies are those of the held-out fold's test videos and clips (a video's clips evenly spaced, "
            "their logits averaged per video), in %. ± is the sample std (ddof=1) over "
            "the runs (seeds x folds; over every model in the first table), so it holds the differences between "
            "the folds' persons as well as between seeds. 'pooled over the folds' is the correct test videos of "
            "a seed's K runs over all their test videos (every video of the persons read tested once), for each seed "
            f"whose K runs are there. '− {reference}, paired' is the run's test video accuracy minus that of the "
            f"{reference} run of the same model, seed and fold (the same persons, the same initial weights), mean ± "
            f"std over the pairs, with the {CONFIDENCE:.0%} t-interval of its mean (n-1 degrees of freedom). "
            "'training min per run' is the run's epochs x the median wall time of its epochs (training, BatchNorm "
            "recomputation and validation; not testing; the median, so that another job sharing the CPU for a "
            "few epochs does not count) on the CPU it trained on, mean ± std over its runs; 'optimizer steps' are "
            "the steps of its epochs, mean over the runs (the folds' training persons hold slightly different "
            "numbers of videos); 'selected epoch' is the epoch best.pth holds (the best validation epoch, or the last "
            "with train.select last). A run's plateau is its first epoch whose validation clip accuracy lies "
            "within half a point of its last epoch's; 'min to plateau' the training minutes up to its end (that "
            f"many epochs x the median epoch time). '/ {reference}'s, paired': a run's training minutes, and its "
            f"minutes to its plateau, over the whole training minutes of the {reference} run of the same model, seed "
            "and fold, mean ± std over the pairs: those two ran in the same session, and sessions get CPUs of "
            "other speeds, so these ratios compare recipes where the minutes do not (the issue's goal: a plateau "
            f"within 3x a {reference} run). The choice reads the first table: the highest mean test video "
            "accuracy, or, "
            "among the recipes whose mean lies within one std (the top recipe's) of it, the smallest std.\n")


def study_markdown(runs: pd.DataFrame, study: Study, per_recipe: pd.DataFrame, per_model: pd.DataFrame) -> str:
    """The report: a header naming the data and the protocol, the choice, the tables (accuracies in %), the notes."""
    text = study_header(runs, study, per_recipe)
    text += ("## Per recipe, over every model\n\n"
             + per_recipe_table(per_recipe, study).to_markdown(index=False, disable_numparse=True) + "\n\n")
    text += ("## Per recipe and model\n\n"
             + per_model_table(per_model).to_markdown(index=False, disable_numparse=True) + "\n\n")
    return text + study_notes(study.reference)


def plot_study(per_model: pd.DataFrame, study: Study, path: str | Path) -> None:
    """Held-out test video accuracy (mean ± std) against training minutes per run (mean ± std): one marker per
    recipe, one colour per model; saves a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    markers = dict(zip(study.recipes, "osD^vP*Xhp<>"))
    colours = {model: f"C{i}" for i, model in enumerate(study.models)}
    fig, ax = plt.subplots(figsize=(7, 4.8))
    done = per_model[per_model["runs"] > 0]
    for _, row in done.iterrows():
        ax.errorbar(row["train min mean"], 100 * row["test video acc mean"],
                    xerr=0 if np.isnan(row["train min std"]) else row["train min std"],
                    yerr=0 if np.isnan(row["test video acc std"]) else 100 * row["test video acc std"],
                    fmt=markers.get(row["recipe"], "o"), color=colours[row["experiment"]], capsize=3, markersize=7)
    handles = [Line2D([], [], linestyle="", marker=markers.get(recipe, "o"), color="0.3", label=recipe)
               for recipe in study.recipes]
    handles += [Line2D([], [], color=colour, linewidth=3, label=model) for model, colour in colours.items()]
    ax.legend(handles=handles, fontsize=8, loc="best")
    ax.set_xlabel("training wall time per run (min, CPU)")
    ax.set_ylabel("held-out test video accuracy (%)")
    ax.set_title(f"Recipe study: {study.folds}-fold cross-validation, mean ± std over seeds x folds", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(Path(path)) as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)


def report(study: Study, models_dir: str | Path = STUDY_MODELS_DIR, out_dir=None, imgs_dir=None, extra=(),
           configs_dir: str | Path = "configs", data_root=None) -> pd.DataFrame | None:
    """Write ``<out>/recipe.md`` (:func:`study_markdown`) and ``<imgs>/recipe.png`` (:func:`plot_study`) from the
    runs of ``study`` under ``models_dir`` made on one data source (``data_root``'s, else the one most runs were
    made on; :func:`read_runs`, ``extra``: the overrides they ran with); ``out_dir`` and ``imgs_dir`` default to
    src.analysis.output_dirs'. Logs what it leaves out and what it wrote. Returns the per-recipe summary, or None
    (nothing written) when there are no runs."""
    defaults = output_dirs(models_dir, STUDY_MODELS_DIR)
    out_dir, imgs_dir = Path(out_dir or defaults["out"]), Path(imgs_dir or defaults["imgs"])
    record, unusable = read_record(out_dir / RECORD_NAME)
    runs, left_out = read_runs(study, models_dir, extra, configs_dir, record)
    for line in [unusable] * bool(unusable) + left_out:
        logger.info("left out %s", line)
    if runs.empty:
        logger.info("no results of the study under %s yet: recipe.md and recipe.png not written", models_dir)
        return None
    fingerprint = pick_data_source(runs, data_root)
    other = runs[runs["fingerprint"] != fingerprint]
    if len(other):
        logger.info("left out %d runs made on other data (%s); one table holds one data source", len(other),
                    ", ".join(sorted(set(other["data"]))))
    runs = runs[runs["fingerprint"] == fingerprint]
    per_recipe, per_model = summarize_study(runs, study)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(out_dir / "recipe.md", "w") as f:
        f.write(study_markdown(runs, study, per_recipe, per_model))
    with atomic_write(out_dir / RECORD_NAME, "w", newline="") as f:  # the runs behind the table, for git
        runs[RUN_COLUMNS].to_csv(f, index=False, float_format="%.6g")
    plot_study(per_model, study, imgs_dir / "recipe.png")
    planned = len(study.models) * len(study.recipes) * study.seeds * study.folds
    logger.info("%d of %d runs of the study -> %s, %s, %s", len(runs), planned, out_dir / "recipe.md",
                out_dir / RECORD_NAME, imgs_dir / "recipe.png")
    return per_recipe


# ------------------------------------------------------------------- the command line

def at_least(minimum: int):
    """An argparse ``type`` for a whole number >= ``minimum``."""
    def whole_number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number; give one >= {minimum}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value}: must be at least {minimum}")
        return value
    return whole_number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments.recipe.study", description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", default=STUDY_FILE,
                        help="the study's design (default: experiments/recipe/recipes.yaml)")
    parser.add_argument("--configs", default="configs", help="the folder of the models' configs (default: configs)")
    parser.add_argument("--only-recipes", nargs="+", metavar="RECIPE", help="run only these recipes")
    parser.add_argument("--only-models", nargs="+", metavar="MODEL", help="run only these models")
    parser.add_argument("--seeds", type=at_least(1), default=None, metavar="N",
                        help="run only the first N seeds of the study's (default: all)")
    parser.add_argument("--folds", type=at_least(1), nargs="+", default=None, metavar="K",
                        help="run only these folds (1..the study's folds; default: all)")
    parser.add_argument("--shard", default="1/1", metavar="K/N",
                        help="run the K-th of N disjoint slices of the runs (one per process or machine; default 1/1)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="overrides for every run (last: they win), not of the keys the study sets")
    parser.add_argument("--data", default=None, help="prepared data folder for every run (default: the configs')")
    parser.add_argument("--models-dir", default=STUDY_MODELS_DIR,
                        help=f"the runs' folder, <models dir>/<recipe>/<run> (default: {STUDY_MODELS_DIR}); any "
                             "other folder also holds the table, the figure and the TensorBoard events")
    parser.add_argument("--out", default=None, help="the table's folder (default: results for the default "
                                                    "--models-dir, else the models dir)")
    parser.add_argument("--imgs", default=None, help="the figure's folder (default: imgs for the default "
                                                     "--models-dir, else the models dir)")
    parser.add_argument("--report", action="store_true", help="run nothing: only rebuild recipe.md and recipe.png")
    return parser


def checked_study(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Study:
    """The study of --recipes, once every argument is checked against it; the parser's error for the first bad
    one."""
    for refusal in (folder_refusal("--configs", args.configs, "the experiment configs (<experiment>.yaml)"),
                    *(folder_refusal(flag, folder) for flag, folder in (
                        ("--models-dir", args.models_dir), ("--out", args.out), ("--imgs", args.imgs)))):
        if refusal:
            parser.error(refusal)
    try:
        study = load_study(args.recipes, args.configs)
    except ConfigError as error:
        parser.error(str(error))
    for flag, names, have in (("--only-recipes", args.only_recipes, list(study.recipes)),
                              ("--only-models", args.only_models, study.models)):
        unknown = [name for name in names or [] if name not in have]
        if unknown:
            parser.error(f"{flag} {unknown[0]}: not in {study.path} (have: {', '.join(have)})")
    if args.seeds is not None and args.seeds > study.seeds:
        parser.error(f"--seeds {args.seeds}: the study has {study.seeds} (seeds: in {study.path}); raise it there "
                     f"to run more")
    outside = [fold for fold in args.folds or [] if fold > study.folds]
    if outside:
        parser.error(f"--folds {outside[0]}: the study has folds 1..{study.folds} (cross_validation.folds in "
                     f"{study.path})")
    fixed = [item for item in args.set if item.partition("=")[0].strip() in STUDY_KEYS
             or item.partition("=")[0].strip().startswith("log.")]
    if fixed:
        parser.error(f"--set {fixed[0]}: the study sets {', '.join(STUDY_KEYS)} and the runs' folders; leave it out")
    return study


def run_one(study: Study, planned: StudyRun, args: argparse.Namespace, tboard_dir: Path, where: str) -> str | None:
    """Run ``planned`` (or start it from its selection source's last.pth, :func:`reuse_training`) and return the
    line that says how it went, or None when it is left for now; exceptions are the caller's."""
    run_dir = Path(args.models_dir) / planned.recipe / planned.run
    saved = run_dir / "results.json"
    before = saved.stat().st_mtime_ns if saved.is_file() else None
    derived = reuse_training(study, planned, args.models_dir)
    if derived is not None:
        print(f"{where}: {derived[0]}{'' if derived[1] else '; skipped'}", flush=True)
        if not derived[1]:
            return None
    results = run_unless_claimed(run_dir / LOCK_NAME, planned.model, planned.run, planned.seed,
                                 run_overrides(study, planned, args.models_dir, tboard_dir, args.set),
                                 data_root=args.data, configs_dir=args.configs)
    if isinstance(results, str):  # another process holds the run
        return f"{where}: {results}; skipped"
    reused = before is not None and saved.stat().st_mtime_ns == before
    return (f"{where}: held-out test video accuracy {results['video_accuracy']:.3f}, "
            f"{training_minutes(results):.1f} min of training{' (finished before: reused)' if reused else ''}")


def run_study(study: Study, runs: list[StudyRun], recorded: set[StudyRun], args: argparse.Namespace,
              tboard_dir: Path, record_path: Path) -> list[str]:
    """Run ``runs`` one after the other, but those ``recorded`` in ``record_path`` whose folders are gone, two lines
    each; return the names of those that failed."""
    failed = []
    for i, planned in enumerate(runs, 1):
        where = f"[{i}/{len(runs)}] {planned.recipe}/{planned.run}"
        print(f"{where} ({planned.model}, seed {planned.seed}, fold {planned.fold} of {study.folds})", flush=True)
        folder = Path(args.models_dir) / planned.recipe / planned.run
        if planned in recorded and not (folder / "results.json").is_file():
            print(f"{where}: recorded in {record_path} (same config and data; its folder is gone); skipped", flush=True)
            continue
        try:
            line = run_one(study, planned, args, tboard_dir, where)
        except Exception as error:  # one failed run must not stop the rest
            print(f"{where}: FAILED: {error}", flush=True)
            failed.append(f"{planned.recipe}/{planned.run}")
            continue
        if line is not None:
            print(line, flush=True)
    return failed


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        k, n = parse_shard(args.shard)
    except ValueError as error:
        parser.error(f"--shard {args.shard}: {error}")
    study = checked_study(parser, args)
    defaults = output_dirs(args.models_dir, STUDY_MODELS_DIR)
    tboard_dir = defaults["tboard"] or Path(schema_root()["log"]["tboard_dir"]) / "recipe"
    runs = planned_study_runs(study, args.only_recipes, args.only_models, args.seeds, args.folds)
    logging.basicConfig(format="%(message)s", stream=sys.stdout)  # the library's lines (the report's, src's), as
    for name in ("src", "experiments", __name__):  # this command's output (__name__: __main__ under python -m)
        logging.getLogger(name).setLevel(logging.INFO)
    if args.report:
        if report(study, args.models_dir, args.out, args.imgs, args.set, args.configs, args.data) is None:
            sys.exit(1)
        return
    refusal = runs_refusal(((Path(args.configs) / f"{planned.model}.yaml",
                             run_overrides(study, planned, args.models_dir, tboard_dir, args.set))
                            for planned in {(run.recipe, run.model, run.fold): run for run in runs}.values()),
                           args.data)
    if refusal:
        parser.error(refusal)

    record_path = Path(args.out or defaults["out"]) / RECORD_NAME
    record, unusable = read_record(record_path)
    if unusable:
        print(unusable, flush=True)
    recorded = recorded_runs(study, runs, record, args.configs, args.set, args.data)
    runs = shard(runs, k, n)
    if n > 1:
        print(f"shard {k}/{n}: {len(runs)} run(s)", flush=True)
    failed = run_study(study, runs, recorded, args, tboard_dir, record_path)
    report(study, args.models_dir, args.out, args.imgs, args.set, args.configs, args.data)
    if failed:
        print(f"{len(failed)} run(s) failed: {', '.join(failed)}; rerun 'python -m experiments.recipe.study' to "
              f"retry them")
        sys.exit(1)


if __name__ == "__main__":
    main()
