"""Run every experiment in sequence, resumably, then regenerate the comparison table.

    python -m src.suite [--seeds 3] [--only GRUCell OwnLSTM ...] [--set train.epochs=5 ...]

Each run is ``python -m src.train --config configs/<experiment>.yaml --resume`` followed
by ``python -m src.evaluate``; the main recurrent experiments run once per seed
(run names ``GRUCell``, ``GRUCell_seed1``, ...). A run whose ``results.json`` exists is
skipped, an interrupted one resumes from its ``last.pth``, and a run that fails (for
example pretrained weights that are not available offline) is reported and the suite
goes on. At the end ``src.compare`` rebuilds the table and plots.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from src.compare import compare

MAIN_RECURRENT = ("LSTMCell", "GRUCell", "OwnLSTM", "OwnGRU", "OwnConvLSTM")


def planned_runs(experiments: list[str], seeds: int) -> list[tuple[str, str, int]]:
    """``(experiment, run_name, seed)`` for every run of the suite, in order."""
    runs = []
    for name in experiments:
        for seed in range(seeds if name in MAIN_RECURRENT else 1):
            runs.append((name, name if seed == 0 else f"{name}_seed{seed}", seed))
    return runs


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m src.suite", description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="configs")
    parser.add_argument("--only", nargs="+", metavar="EXPERIMENT", help="run only these experiments")
    parser.add_argument("--seeds", type=int, default=3, help=f"seeds for {', '.join(MAIN_RECURRENT)} (default 3)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="overrides for every run")
    parser.add_argument("--data", default=None, help="prepared data folder for every run (default: config)")
    parser.add_argument("--models-dir", default="models")
    args = parser.parse_args(argv)

    experiments = sorted(p.stem for p in Path(args.configs).glob("*.yaml") if p.stem != "base")
    if args.only:
        unknown = sorted(set(args.only) - set(experiments))
        if unknown:
            parser.error(f"no config for {', '.join(unknown)} in {args.configs}/ (have: {', '.join(experiments)})")
        experiments = [e for e in experiments if e in args.only]

    failed = []
    runs = planned_runs(experiments, args.seeds)
    for i, (name, run, seed) in enumerate(runs, 1):
        run_dir = Path(args.models_dir) / run
        if (run_dir / "results.json").is_file():
            print(f"[{i}/{len(runs)}] {run}: done, skipped")
            continue
        overrides = [f"train.seed={seed}", f"log.models_dir={args.models_dir}", *args.set]
        data = ["--data", args.data] if args.data else []
        train = [sys.executable, "-m", "src.train", "--config", f"{args.configs}/{name}.yaml", "--name", run,
                 "--resume", *data, "--set", *overrides]
        evaluate = [sys.executable, "-m", "src.evaluate", "--checkpoint", str(run_dir / "best.pth"), *data]
        print(f"[{i}/{len(runs)}] {run}: training (seed {seed})", flush=True)
        start = time.time()
        if subprocess.run(train).returncode != 0 or subprocess.run(evaluate).returncode != 0:
            print(f"[{i}/{len(runs)}] {run}: FAILED after {time.time() - start:.0f} s; going on", flush=True)
            failed.append(run)
            continue
        print(f"[{i}/{len(runs)}] {run}: finished in {time.time() - start:.0f} s", flush=True)

    compare(models_dir=args.models_dir, configs_dir=args.configs)
    if failed:
        print(f"{len(failed)} run(s) failed: {', '.join(failed)}; rerun 'python -m src.suite' to retry them")
        sys.exit(1)


if __name__ == "__main__":
    main()
