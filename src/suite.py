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
plots, and the runs that did not finish are named: those refused (a config or a split that cannot
work, e.g. a fold that leaves a class without a training video) with their refusal's line, since a
rerun is refused the same way until what it names changes; the others with "rerun to retry them".
Ctrl-C (exit 1) and SIGTERM (a job scheduler's stop; exit 143) end it in one line, the finished runs kept and
the run under way at its last finished epoch, as src.train keeps it: the same command continues.
The planning and the running: src/planning.py.

``--folds K`` runs K-fold cross-validation by group: every planned run once per fold k = 1..K, with
``data.split=kfold data.folds=K data.fold=k`` (run names ``GRUCell_fold1``, ..., ``GRUCell_fold1_seed1``;
``--set`` may not set those three keys then); over the K folds every video is tested exactly once, and
``src.compare`` reports the mean over folds in its own table (kfold.md).

Every output goes under the folders given (src.analysis.output_dirs): with the default
``--models-dir models`` the tables go to ``results/``, the figures to ``imgs/`` and the TensorBoard
events to the config's ``log.tboard_dir`` (``tboard_logs/``); with ``--models-dir DIR``, any other
folder, everything stays in DIR: the runs in ``DIR/<run>/``, the tables and figures in
``DIR/results.md``, ``DIR/comparisons.md``, ``DIR/results.csv``, ``DIR/accuracy_vs_*.png``, the events
in ``DIR/tboard_logs/<run>/``, so a trial never rewrites the committed tables of record.
``--out``, ``--imgs`` and ``--tboard-dir`` (or ``--set log.tboard_dir=...``) put them elsewhere. The
arguments, every planned config with the overrides, and an explicit data folder are checked
before any run starts; each bad one gets one ``error:`` line.

``--until-half-width PP`` then adds seeds where the seeds given are too few: round after round, every paired
comparison of ``configs/suite.yaml`` between two of the experiments run (src.analysis.paired_differences) whose
95 % interval of test video accuracy is wider than ± PP percentage points gets its next seed for both
experiments (src.planning.seeds_to_add), until none is or each has ``--max-seeds`` paired seeds (default 10).

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
import logging
import sys
import time
from pathlib import Path

from src.analysis import RECORD_MODELS_DIR, RunsError, compare, output_dirs
from src.config import SUITE_FILE, ConfigError, experiment_configs, load_plan
from src.files import folder_refusal
from src.interrupts import exit_code, sigterm_as_interrupt, stopped_by
from src.planning import (
    FOLD_KEYS,
    REFUSED_RUN_ERRORS,
    PlannedRun,
    add_seeds_until_narrow,
    fold_overrides,
    parse_shard,
    planned_suite_runs,
    run_unless_claimed,
    runs_refusal,
    shard,
)
from src.training.runlock import LOCK_NAME


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


def shard_argument(parser: argparse.ArgumentParser, text: str) -> tuple[int, int]:
    """``--shard K/N`` as ``(K, N)``; a bad one is the parser's error."""
    try:
        return parse_shard(text)
    except ValueError as error:
        parser.error(f"--shard {text}: {error}")


def build_parser() -> argparse.ArgumentParser:
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
    parser.add_argument("--models-dir", default=RECORD_MODELS_DIR,
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
    return parser


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace, shards: int) -> None:
    """The parser's error for a bad --until-half-width (``shards``: --shard's N) or a bad folder."""
    if args.until_half_width is not None:
        if not args.until_half_width > 0:
            parser.error(f"--until-half-width {args.until_half_width:g}: give a half-width > 0 in percentage points, "
                         f"e.g. 2.5")
        if args.folds or shards > 1:
            parser.error("--until-half-width chooses the next seeds from every run's results, so it runs in one "
                         "process without --folds or --shard; run the shards first, then it alone")
    for refusal in (folder_refusal("--configs", args.configs, "the experiment configs (<experiment>.yaml)"),
                    *(folder_refusal(flag, folder) for flag, folder in (
                        ("--models-dir", args.models_dir), ("--out", args.out), ("--imgs", args.imgs),
                        ("--tboard-dir", args.tboard_dir)))):
        if refusal:
            parser.error(refusal)


def chosen_experiments(parser: argparse.ArgumentParser, args: argparse.Namespace):
    """``(the suite's plan, {experiment: role} to run)``: the plan's, or those of --only; the parser's error for a
    bad plan or a bad --only."""
    configs = [path.stem for path in experiment_configs(args.configs)]
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
    return plan, experiments


def run_each(runs: list[PlannedRun], args: argparse.Namespace, overrides: list[str],
             refused: dict[str, str]) -> list[str]:
    """Run ``runs`` one after the other, two lines each; return the names of those that failed. ``refused`` gets
    ``{run: its refusal's line}`` for those of them whose config or split cannot work (``REFUSED_RUN_ERRORS``),
    which a rerun meets again."""
    failed = []
    for i, (name, run, seed, fold) in enumerate(runs, 1):
        print(f"[{i}/{len(runs)}] {run} (seed {seed}{f', fold {fold} of {args.folds}' if fold else ''})", flush=True)
        start = time.time()
        lock = Path(args.models_dir) / run / LOCK_NAME
        try:
            results = run_unless_claimed(lock, name, run, seed, [*overrides, *fold_overrides(fold, args.folds)],
                                         data_root=args.data, configs_dir=args.configs)
        except Exception as error:  # one failed run (e.g. weights not available offline) must not stop the rest
            line = str(error).splitlines()[0] if str(error) else type(error).__name__
            if isinstance(error, REFUSED_RUN_ERRORS):
                refused[run] = line
            print(f"[{i}/{len(runs)}] {run}: {'REFUSED' if run in refused else 'FAILED'}: {error}", flush=True)
            failed.append(run)
            continue
        if isinstance(results, str):  # another process holds the run
            print(f"[{i}/{len(runs)}] {run}: {results}; skipped", flush=True)
            continue
        print(f"[{i}/{len(runs)}] {run}: test video accuracy {results['video_accuracy']:.3f} "
              f"({time.time() - start:.0f} s)", flush=True)
    return failed


def failure_lines(failed: list[str], refused: dict[str, str]) -> list[str]:
    """What the end of the suite says of the runs that did not finish: one line per refusal (its runs, its line,
    what to change: a rerun is refused the same way), then one for the runs that failed otherwise (a rerun retries
    them)."""
    by_refusal: dict[str, list[str]] = {}
    for run, refusal in refused.items():
        by_refusal.setdefault(refusal, []).append(run)
    lines = [f"{len(runs)} run(s) refused: {', '.join(runs)}: {refusal}; a rerun is refused the same way: change what "
             f"this names (in the experiment's config, with --set, or the data), then rerun 'python -m src.suite'"
             for refusal, runs in by_refusal.items()]
    others = list(dict.fromkeys(run for run in failed if run not in refused))
    if others:
        lines.append(f"{len(others)} run(s) failed: {', '.join(others)}; rerun 'python -m src.suite' to retry them")
    return lines


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    k, n = shard_argument(parser, args.shard)
    check_arguments(parser, args, n)
    plan, experiments = chosen_experiments(parser, args)
    defaults = output_dirs(args.models_dir)
    tboard_dir = args.tboard_dir or defaults["tboard"]
    overrides = [f"log.models_dir={args.models_dir}", *([f"log.tboard_dir={tboard_dir}"] if tboard_dir else []),
                 *args.set]  # the user's --set last: it wins
    refusal = runs_refusal(((Path(args.configs) / f"{name}.yaml", [*overrides, *fold_overrides(fold, args.folds)])
                            for name in experiments for fold in (range(1, args.folds + 1) if args.folds else [None])),
                           args.data)
    if refusal:
        parser.error(refusal)

    logging.basicConfig(format="%(message)s", stream=sys.stdout)  # src.planning's and src.analysis's lines, as
    logging.getLogger("src").setLevel(logging.INFO)  # this command's output
    runs = shard(planned_suite_runs(experiments, args.seeds, args.variant_seeds, args.folds), k, n)
    if n > 1:
        print(f"shard {k}/{n}: {len(runs)} run(s): {', '.join(planned.run for planned in runs)}", flush=True)
    refused: dict[str, str] = {}
    failed: list[str] = []
    try:
        with sigterm_as_interrupt():
            failed += run_each(runs, args, overrides, refused)
            if args.until_half_width is not None:
                failed += add_seeds_until_narrow(lambda asked: run_each(asked, args, overrides, refused), plan,
                                                 experiments, args.until_half_width / 100, args.max_seeds,
                                                 args.models_dir, args.data)
            compare(models_dir=args.models_dir, out_dir=args.out or defaults["out"],
                    imgs_dir=args.imgs or defaults["imgs"], configs_dir=args.configs, data_root=args.data)
    except RunsError as error:  # a results.json in another run's folder, or one run twice: no table
        for line in failure_lines(failed, refused):
            print(line, flush=True)
        parser.exit(1, f"error: {error}\n")
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM
        print(f"\n{stopped_by(e)}: the finished runs are kept and the run under way keeps its last finished epoch "
              f"(last.pth); rerun the same command to continue", file=sys.stderr)
        sys.exit(exit_code(e))
    if failed:
        print("\n".join(failure_lines(failed, refused)))
        sys.exit(1)


if __name__ == "__main__":
    main()
