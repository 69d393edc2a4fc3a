"""Run planning: the runs of the suite (:func:`planned_suite_runs`), their K-fold overrides, shards of them, the
seeds that make a paired comparison narrow enough, and one run trained and tested, resumably, under its lock
(:func:`run_unless_claimed`). ``python -m src.suite`` (src/suite.py) is its command line; the recipe study
(experiments/recipe/study.py) plans its own runs with it. Progress goes to ``logging``.

A run whose ``results.json`` exists is reused when it was made on the same data with the same config (else trained
again, and a line says why); an interrupted one resumes from its ``last.pth`` (:func:`run_experiment`). Before a run
starts its process claims it with ``<models dir>/<run>/run.lock`` (src/training/runlock.py) for its training and
testing, so a run is never started twice, even by overlapping shards; a run another live process holds is left to it.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from src.analysis import load_runs, paired_differences, pick_data_source
from src.checks import load_checked_config
from src.config import ConfigError, SuitePlan
from src.data.index import config_for_data, resolve_data_root
from src.data.splits import SplitError
from src.training.provenance import describe_data, results_mismatch, resume_refusal
from src.training.runlock import claimed, describe_holder

logger = logging.getLogger(__name__)

FOLD_KEYS = ("data.split", "data.folds", "data.fold")  # what fold_overrides sets in every run of K-fold
REFUSED_RUN_ERRORS = (ConfigError, SplitError)
"""What :func:`run_experiment` raises for a run whose config or split cannot work (a key out of range, a split
that leaves a class without a training video or a part empty): one line naming the key; the same run is refused the
same way until the config, the overrides or the data change, so retrying it alone is no use."""


class PlannedRun(NamedTuple):
    experiment: str   # configs/<experiment>.yaml
    run: str          # its folder, models/<run>/
    seed: int         # train.seed
    fold: int | None  # the test fold k of K-fold cross-validation (folds K), else None


def planned_suite_runs(experiments: dict[str, str], seeds: int, variant_seeds: int | None = None,
                 folds: int | None = None) -> list[PlannedRun]:
    """Every run of the suite, for ``experiments`` = ``{name: 'main' | 'variant'}`` (configs/suite.yaml's, in its
    order): ``seeds`` seeds for the main ones, ``variant_seeds`` (default: 3, or ``seeds`` when fewer) for the
    variants (the scheduler and pretrained ones); with ``folds`` = K, each of them once per fold k = 1..K (run
    ``<experiment>_fold<k>``, then ``_seed<s>``). In order: every experiment once first (every fold of it), then
    the further seeds, so that a suite cut short still covers every experiment."""
    variant_seeds = min(seeds, 3) if variant_seeds is None else variant_seeds
    return [PlannedRun(name, name + (f"_fold{fold}" if fold else "") + (f"_seed{seed}" if seed else ""), seed, fold)
            for seed in range(max(seeds, variant_seeds)) for fold in (range(1, folds + 1) if folds else [None])
            for name, role in experiments.items() if seed < (seeds if role == "main" else variant_seeds)]


def fold_overrides(fold: int | None, folds: int | None) -> list[str]:
    """The overrides of the run that tests fold ``fold`` of ``folds`` (K-fold cross-validation by group); none
    outside it."""
    return [] if fold is None else ["data.split=kfold", f"data.folds={folds}", f"data.fold={fold}"]


def parse_shard(text: str) -> tuple[int, int]:
    """``'K/N'`` -> ``(K, N)`` with 1 <= K <= N; ValueError with what to write otherwise (the caller names the
    text's origin)."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError("write K/N (the K-th of N slices), e.g. 1/2 on one machine and 2/2 on the other") from None
    if not 1 <= k <= n:
        raise ValueError(f"K must be between 1 and N, e.g. 1/{max(n, 2)}")
    return k, n


def shard(runs: list, k: int, n: int) -> list:
    """The K-th of N disjoint slices of ``runs``: runs K, K + N, K + 2N, ... (1-based)."""
    return runs[k - 1::n]


def seeds_to_add(runs: pd.DataFrame, plan: SuitePlan, experiments, half_width: float,
                 max_seeds: int) -> list[tuple[str, int, str]]:
    """The next seed of every paired comparison of ``plan`` between two of ``experiments`` that is still too wide.

    ``runs``: :func:`src.analysis.load_runs`' rows of one data source, outside K-fold cross-validation. A comparison
    (:func:`src.analysis.paired_differences`, ``'best <group>'`` resolved on validation) is too wide when its 95 %
    interval of test video accuracy has a half-width above ``half_width`` (a fraction: 0.025 is 2.5 points), or
    none (n < 2), and it has fewer than ``max_seeds`` paired seeds. Its next seed is one past its highest paired
    seed, for both experiments (a run that exists is reused). Returns ``[(experiment, seed, why)]``, each pair once,
    in the plan's order, then by seed."""
    comparisons = paired_differences(runs, plan) if len(runs) else pd.DataFrame(columns=["A", "B"])
    wanted: dict[tuple[str, int], str] = {}
    for row in comparisons.to_dict("records"):
        a, b, n, width = row["A"], row["B"], int(row["n"]), row["video half width"]
        if a not in experiments or b not in experiments or n >= max_seeds or width <= half_width:
            continue
        seed = max(int(seed) for seed in row["seeds"].split(", ")) + 1 if n else 0
        why = (f"{a} vs {b}: ± {100 * width:.1f} pp at n = {n}" if n >= 2 else f"{a} vs {b}: n = {n}, no interval")
        for name in (a, b):
            wanted.setdefault((name, seed), why)
    order = list(plan.experiments)
    return [(name, seed, why) for (name, seed), why in sorted(wanted.items(),
                                                                 key=lambda item: (order.index(item[0][0]),
                                                                                   item[0][1]))]


def add_seeds_until_narrow(run_each, plan: SuitePlan, experiments, half_width: float, max_seeds: int,
                           models_dir, data_root=None) -> list[str]:
    """Round after round, run the seeds :func:`seeds_to_add` asks for (``run_each([PlannedRun])`` runs them and
    returns the failed ones) on the results in ``models_dir``, until it asks for none, or a round adds no result;
    return the runs that failed."""
    failed, asked_before = [], None
    while True:
        runs, _ = load_runs(models_dir)
        if len(runs):
            runs = runs[(runs["fingerprint"] == pick_data_source(runs, data_root)) & runs["fold"].isna()]
        asked = seeds_to_add(runs, plan, experiments, half_width, max_seeds)
        if not asked:
            logger.info("every paired comparison among these experiments is within ± %g pp, or has %d paired seeds",
                        100 * half_width, max_seeds)
            return failed
        if asked == asked_before:
            logger.info("the last round added no result (%s); stopping", ", ".join(failed) or "skipped")
            return failed
        for name, seed, why in asked:
            logger.info("%s: seed %d of %s", why, seed, name)
        failed += run_each([PlannedRun(name, name + (f"_seed{seed}" if seed else ""), seed, None)
                            for name, seed, _ in asked])
        asked_before = asked


def run_experiment(experiment: str, run: str | None = None, seed: int | None = None, overrides=(),
                   data_root=None, configs_dir="configs") -> dict:
    """Train (resuming if interrupted) and test one run of ``configs/<experiment>.yaml``;
    return its results (see src.evaluate).

    A saved ``results.json`` is returned as it is only when it was made on the same data
    (fingerprint) with the same config (``log`` and ``data.root`` aside, see
    src/training/provenance.py); otherwise the run is trained again from scratch, and one line says
    why. The same goes for the ``last.pth`` of an interrupted run before it is resumed. A config or split that
    cannot work raises one of :data:`REFUSED_RUN_ERRORS`."""
    from src.training.evaluation import evaluate  # torch: imported only when a run starts, so bad arguments fail fast
    from src.training.trainer import train  # torch, as above

    overrides = [*([f"train.seed={seed}"] if seed is not None else []), *overrides]
    config = load_checked_config(Path(configs_dir) / f"{experiment}.yaml", overrides, name=run, reads_data=True,
                                 data_root=data_root)
    run_dir = Path(config["log"]["models_dir"]) / config["experiment"]
    root, synthetic = resolve_data_root(data_root or config["data"]["root"], preset=config["data"]["synthetic_preset"])
    data = describe_data(root, preset=config["data"]["synthetic_preset"] if synthetic else None)
    config = config_for_data(config, root)  # data.channels auto: the data's, as the saved runs record it
    stale = stale_run(run_dir, config, data)
    if stale is None:
        return json.loads((run_dir / "results.json").read_text())
    if stale:
        logger.info("%s: %s: training again", config["experiment"], stale)
        for name in ("results.json", "best.pth", "last.pth"):
            (run_dir / name).unlink(missing_ok=True)
    train(config, data_root=root, resume=True)
    return evaluate(run_dir / "best.pth", data_root=root)


def run_unless_claimed(lock: Path, experiment: str, run: str, seed: int | None = None, overrides=(),
                       data_root=None, configs_dir="configs") -> dict | str:
    """:func:`run_experiment` while this process holds ``lock`` (``<models dir>/<run>/run.lock``, through training and
    testing; src.train claims it again). Returns its results, or, when another live process holds the lock, the
    line that says which (the run is then left to it)."""
    with claimed(lock) as holder:
        if holder is not None:
            return describe_holder(holder, lock)
        return run_experiment(experiment, run, seed, overrides, data_root=data_root, configs_dir=configs_dir)


def stale_run(run_dir: Path, config: dict, data: dict) -> str | None:
    """Why the saved state of a run cannot be used for ``config`` on ``data``; None when its
    results.json can be returned as it is; ``''`` when there is nothing (or a last.pth that
    may be resumed) to train from."""
    results_path, last_path = run_dir / "results.json", run_dir / "last.pth"
    if results_path.is_file():
        results = json.loads(results_path.read_text())
        return results_mismatch(results, config, data)
    if last_path.is_file():
        from src.training.checkpoint import load_checkpoint  # torch: only to read a checkpoint, as in run_experiment

        return resume_refusal(load_checkpoint(last_path), config, data, last_path) or ""
    return ""


def runs_refusal(configs, data_root=None) -> str | None:
    """Why the runs cannot start, in one line, so that every bad config, override or data folder is named before
    any run starts: the first of ``configs``, ``(config file, overrides)`` pairs, that does not load (``data.groups``
    the data does not hold included: :func:`src.checks.data_groups_refusal`, from index.json), or the first
    data folder they read (``data_root``, else each config's ``data.root``) that is not one; ``auto`` is left to
    the runs, as it may make the synthetic twin, which is work. None when every run may start."""
    roots = set()
    for path, overrides in configs:
        try:
            config = load_checked_config(path, overrides, reads_data=True, data_root=data_root)
        except ConfigError as error:
            return str(error)
        roots.add(str(data_root or config["data"]["root"]))
    for root in sorted(roots - {"auto"}):
        try:
            resolve_data_root(root)
        except (OSError, ValueError) as error:
            return str(error)
    return None
