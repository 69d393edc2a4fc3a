"""Run every experiment in sequence, resumably, then regenerate the comparison table.

    python -m src.suite [--seeds 5] [--variant-seeds 3] [--folds K] [--only GRUCell OwnLSTM ...]
                        [--set train.epochs=5 ...] [--shard K/N] [--models-dir models] [--out DIR] [--imgs DIR]
                        [--tboard-dir DIR] [--until-half-width PP [--max-seeds 10]]

The experiments are those of ``configs/suite.yaml`` (src.config.load_plan), in its order. Each run
trains ``configs/<experiment>.yaml`` (resuming from its ``last.pth``) and then tests its ``best.pth``,
in this process; every experiment runs once per seed, 5 seeds for the main ones and 3 for the
variants by default (run names ``GRUCell``, ``GRUCell_seed1``, ...).
A run whose ``results.json`` exists is reused when it was made on the same data with the same
config (else trained again, and a line says why), an interrupted one resumes from its
``last.pth``, and a run that fails (for example pretrained weights that are not available
offline) is reported and the suite goes on. At the end ``src.compare`` rebuilds the table and
plots.

``--folds K`` runs K-fold cross-validation by group: every planned run once per fold k = 1..K, with
``data.split=kfold data.folds=K data.fold=k`` (run names ``GRUCell_fold1``, ..., ``GRUCell_fold1_seed1``;
``--set`` may not set those three keys then); over the K folds every video is tested exactly once, and
``src.compare`` reports the mean over folds in its own table (kfold.md).

Every output goes under the folders given (src.compare's ``output_dirs``): with the default
``--models-dir models`` the tables go to ``results/``, the figures to ``imgs/`` and the TensorBoard
events to the config's ``log.tboard_dir`` (``tboard_logs/``); with ``--models-dir DIR``, any other
folder, everything stays in DIR: the runs in ``DIR/<run>/``, the tables and figures in
``DIR/results.md``, ``DIR/comparisons.md``, ``DIR/results.csv``, ``DIR/accuracy_vs_*.png``, the events
in ``DIR/tboard_logs/<run>/``, so a trial never rewrites the committed tables of record.
``--out``, ``--imgs`` and ``--tboard-dir`` (or ``--set log.tboard_dir=...``) put them elsewhere. The
arguments, every planned config with the overrides, and an explicit data folder are checked
before any run starts; each bad one gets one ``error:`` line.

``--until-half-width PP`` then adds seeds where the seeds given are too few: round after round, every paired
comparison of ``configs/suite.yaml`` between two of the experiments run (src.compare.paired_differences) whose
95 % interval of test video accuracy is wider than ± PP percentage points gets its next seed for both
experiments (:func:`seeds_to_add`), until none is or each has ``--max-seeds`` paired seeds (default 10).

``--shard K/N`` runs the K-th of N disjoint slices of the planned runs (runs K, K + N,
K + 2N, ... in the order below), so N machines (or N GPUs, one ``CUDA_VISIBLE_DEVICES`` each)
that share ``models/`` run one shard each. Before a run starts its process claims it with
``models/<run>/run.lock`` (src/training/runlock.py: host, pid, time; made atomically with a hard link) for
its training and testing, so a run is never started twice, even by overlapping shards, nor while
a ``python -m src.train`` of the same name runs; a run another live process holds is skipped, and a
lock whose process has died (same host) or that has not been refreshed for ``LOCK_STALE_S`` seconds
(other hosts; the holder touches it every minute) is taken over. Once every shard is done,
``python -m src.compare`` sees every run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from src.compare import DEFAULT_MODELS_DIR, compare, load_runs, output_dirs, paired_differences, pick_data_source
from src.config import NOT_EXPERIMENTS, SUITE_FILE, ConfigError, SuitePlan, load_config, load_plan
from src.data.index import resolve_data_root
from src.files import folder_refusal
from src.training.provenance import describe_data, results_mismatch, resume_refusal
from src.training.runlock import LOCK_NAME, claimed, describe_holder

FOLD_KEYS = ("data.split", "data.folds", "data.fold")  # what --folds sets in every run


class PlannedRun(NamedTuple):
    experiment: str   # configs/<experiment>.yaml
    run: str          # its folder, models/<run>/
    seed: int         # train.seed
    fold: int | None  # the test fold k of K-fold cross-validation (--folds K), else None


def planned_runs(experiments: dict[str, str], seeds: int, variant_seeds: int | None = None,
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
    """``'K/N'`` -> ``(K, N)`` with 1 <= K <= N; ValueError with what to write otherwise."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text}: write K/N, e.g. --shard 1/2 on one machine and --shard 2/2 on the other")
    if not 1 <= k <= n:
        raise ValueError(f"--shard {text}: K must be between 1 and N, e.g. 1/{max(n, 2)}")
    return k, n


def shard(runs: list, k: int, n: int) -> list:
    """The K-th of N disjoint slices of ``runs``: runs K, K + N, K + 2N, ... (1-based)."""
    return runs[k - 1::n]


def seeds_to_add(runs: pd.DataFrame, plan: SuitePlan, experiments, half_width: float,
                 max_seeds: int) -> list[tuple[str, int, str]]:
    """The next seed of every paired comparison of ``plan`` between two of ``experiments`` that is still too wide.

    ``runs``: :func:`src.compare.load_runs`' rows of one data source, outside K-fold cross-validation. A comparison
    (:func:`src.compare.paired_differences`, ``'best <group>'`` resolved on validation) is too wide when its 95 %
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
            print(f"every paired comparison among these experiments is within ± {100 * half_width:g} pp, or has "
                  f"{max_seeds} paired seeds", flush=True)
            return failed
        if asked == asked_before:
            print(f"the last round added no result ({', '.join(failed) or 'skipped'}); stopping", flush=True)
            return failed
        for name, seed, why in asked:
            print(f"{why}: seed {seed} of {name}", flush=True)
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
    why. The same goes for the ``last.pth`` of an interrupted run before it is resumed."""
    from src.training.evaluation import evaluate
    from src.training.trainer import train

    overrides = [*([f"train.seed={seed}"] if seed is not None else []), *overrides]
    config = load_config(Path(configs_dir) / f"{experiment}.yaml", overrides, name=run)
    run_dir = Path(config["log"]["models_dir"]) / config["experiment"]
    root, synthetic = resolve_data_root(data_root or config["data"]["root"], preset=config["data"]["synthetic_preset"])
    data = describe_data(root, preset=config["data"]["synthetic_preset"] if synthetic else None)
    stale = stale_run(run_dir, config, data)
    if stale is None:
        return json.loads((run_dir / "results.json").read_text())
    if stale:
        print(f"{config['experiment']}: {stale}: training again", flush=True)
        for name in ("results.json", "best.pth", "last.pth"):
            (run_dir / name).unlink(missing_ok=True)
    train(config, data_root=root, resume=True)
    return evaluate(run_dir / "best.pth", data_root=root)


def run_claimed(lock: Path, experiment: str, run: str, seed: int | None = None, overrides=(), data_root=None,
                configs_dir="configs") -> dict | str:
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
        from src.training.checkpoint import (
            load_checkpoint,  # torch: imported only when needed, so bad arguments fail fast
        )

        return resume_refusal(load_checkpoint(last_path), config, data, last_path) or ""
    return ""


def runs_refusal(configs, data_root=None) -> str | None:
    """Why the runs cannot start, in one line, so that every bad config, override or data folder is named before
    any run starts: the first of ``configs``, ``(config file, overrides)`` pairs, that does not load, or the first
    data folder they read (``data_root``, else each config's ``data.root``) that is not one; ``auto`` is left to
    the runs, as it may make the synthetic twin, which is work. None when every run may start."""
    roots = set()
    for path, overrides in configs:
        try:
            config = load_config(path, overrides)
        except ConfigError as error:
            return str(error)
        roots.add(str(data_root or config["data"]["root"]))
    for root in sorted(roots - {"auto"}):
        try:
            resolve_data_root(root)
        except (OSError, ValueError) as error:
            return str(error)
    return None


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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m src.suite", description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="configs")
    parser.add_argument("--only", nargs="+", metavar="EXPERIMENT", help="run only these experiments")
    parser.add_argument("--seeds", type=at_least(1), default=5,
                        help=f"seeds for the main experiments of <configs>/{SUITE_FILE} (default 5)")
    parser.add_argument("--variant-seeds", type=at_least(0), default=None,
                        help="seeds for the other experiments, the scheduler and pretrained variants "
                             "(default: 3, or --seeds when fewer)")
    parser.add_argument("--folds", type=at_least(2), default=None, metavar="K",
                        help="K-fold cross-validation by group: every run once per fold (data.split=kfold, "
                             "data.folds=K, data.fold=1..K)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="overrides for every run")
    parser.add_argument("--data", default=None, help="prepared data folder for every run (default: config)")
    parser.add_argument("--models-dir", default=DEFAULT_MODELS_DIR,
                        help="the runs' folder (default: models); any other folder also holds the tables, "
                             "figures and TensorBoard events, see above")
    parser.add_argument("--out", default=None, help="the tables' folder (default: results for --models-dir models, "
                                                    "else the models dir)")
    parser.add_argument("--imgs", default=None, help="the figures' folder (default: imgs for --models-dir models, "
                                                     "else the models dir)")
    parser.add_argument("--tboard-dir", default=None, help="the TensorBoard events' folder (default: the config's "
                                                           "log.tboard_dir for --models-dir models, else "
                                                           "<models dir>/tboard_logs)")
    parser.add_argument("--shard", default="1/1", metavar="K/N",
                        help="run the K-th of N disjoint slices of the runs (one per machine or GPU; default 1/1)")
    parser.add_argument("--until-half-width", type=float, default=None, metavar="PP",
                        help="then add seeds, one at a time, to both experiments of every paired comparison of "
                             f"<configs>/{SUITE_FILE} among the runs whose 95 %% interval of test video accuracy is "
                             "wider than ± PP percentage points, until none is or they reach --max-seeds")
    parser.add_argument("--max-seeds", type=at_least(2), default=10,
                        help="the most paired seeds --until-half-width gives a comparison (default 10)")
    args = parser.parse_args(argv)
    try:
        k, n = parse_shard(args.shard)
    except ValueError as e:
        parser.error(str(e))
    if args.until_half_width is not None:
        if not args.until_half_width > 0:
            parser.error(f"--until-half-width {args.until_half_width:g}: give a half-width > 0 in percentage points, "
                         f"e.g. 2.5")
        if args.folds or n > 1:
            parser.error("--until-half-width chooses the next seeds from every run's results, so it runs in one "
                         "process without --folds or --shard; run the shards first, then it alone")
    for refusal in (folder_refusal("--configs", args.configs, "the experiment configs (<experiment>.yaml)"),
                    *(folder_refusal(flag, folder) for flag, folder in (
                        ("--models-dir", args.models_dir), ("--out", args.out), ("--imgs", args.imgs),
                        ("--tboard-dir", args.tboard_dir)))):
        if refusal:
            parser.error(refusal)

    configs = sorted(p.stem for p in Path(args.configs).glob("*.yaml") if p.name not in NOT_EXPERIMENTS)
    if not configs:
        parser.error(f"--configs {args.configs}: no experiment config (<experiment>.yaml) in this folder")
    try:
        plan = load_plan(args.configs)
    except ConfigError as error:
        parser.error(str(error))
    experiments = plan.experiments
    if args.only:
        unknown = sorted(set(args.only) - set(configs))
        if unknown:
            parser.error(f"no config for {', '.join(unknown)} in {args.configs}/ (have: {', '.join(configs)})")
        unplanned = sorted(set(args.only) - set(experiments))
        if unplanned:
            parser.error(f"--only {' '.join(unplanned)}: not in {plan.path}; add it under 'experiments:' "
                         f"(main or variant) to run it in the suite")
        experiments = {name: role for name, role in experiments.items() if name in args.only}
    elif set(configs) - set(experiments):
        print(f"not in {plan.path}, so not run: {', '.join(sorted(set(configs) - set(experiments)))}", flush=True)
    if args.folds:
        fixed = [item for item in args.set if item.partition("=")[0].strip() in FOLD_KEYS]
        if fixed:
            parser.error(f"--set {fixed[0]}: --folds {args.folds} sets {', '.join(FOLD_KEYS)} of every run; "
                         f"leave it out")

    defaults = output_dirs(args.models_dir)
    out_dir, imgs_dir = args.out or defaults["out"], args.imgs or defaults["imgs"]
    tboard_dir = args.tboard_dir or defaults["tboard"]
    overrides = [f"log.models_dir={args.models_dir}", *([f"log.tboard_dir={tboard_dir}"] if tboard_dir else []),
                 *args.set]  # the user's --set last: it wins
    refusal = runs_refusal(((Path(args.configs) / f"{name}.yaml", [*overrides, *fold_overrides(fold, args.folds)])
                            for name in experiments for fold in (range(1, args.folds + 1) if args.folds else [None])),
                           args.data)
    if refusal:
        parser.error(refusal)

    def run_each(runs: list[PlannedRun]) -> list[str]:
        """Run ``runs`` one after the other; return the names of those that failed."""
        failed = []
        for i, (name, run, seed, fold) in enumerate(runs, 1):
            print(f"[{i}/{len(runs)}] {run} (seed {seed}{f', fold {fold} of {args.folds}' if fold else ''})",
                  flush=True)
            start = time.time()
            lock = Path(args.models_dir) / run / LOCK_NAME
            try:
                results = run_claimed(lock, name, run, seed, [*overrides, *fold_overrides(fold, args.folds)],
                                      data_root=args.data, configs_dir=args.configs)
            except Exception as error:  # one failed run (e.g. weights not available offline) must not stop the rest
                print(f"[{i}/{len(runs)}] {run}: FAILED: {error}", flush=True)
                failed.append(run)
                continue
            if isinstance(results, str):  # another process holds the run
                print(f"[{i}/{len(runs)}] {run}: {results}; skipped", flush=True)
                continue
            print(f"[{i}/{len(runs)}] {run}: test video accuracy {results['video_accuracy']:.3f} "
                  f"({time.time() - start:.0f} s)", flush=True)
        return failed

    runs = shard(planned_runs(experiments, args.seeds, args.variant_seeds, args.folds), k, n)
    if n > 1:
        print(f"shard {k}/{n}: {len(runs)} run(s): {', '.join(planned.run for planned in runs)}", flush=True)
    failed = run_each(runs)
    if args.until_half_width is not None:
        failed += add_seeds_until_narrow(run_each, plan, experiments, args.until_half_width / 100, args.max_seeds,
                                         args.models_dir, args.data)

    compare(models_dir=args.models_dir, out_dir=out_dir, imgs_dir=imgs_dir, configs_dir=args.configs,
            data_root=args.data)
    if failed:
        print(f"{len(failed)} run(s) failed: {', '.join(failed)}; rerun 'python -m src.suite' to retry them")
        sys.exit(1)


if __name__ == "__main__":
    main()
