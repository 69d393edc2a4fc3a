"""Run every experiment in sequence, resumably, then regenerate the comparison table.

    python -m src.suite [--seeds 3] [--only GRUCell OwnLSTM ...] [--set train.epochs=5 ...]

Each run trains ``configs/<experiment>.yaml`` (resuming from its ``last.pth``) and then
tests its ``best.pth``, in this process; the main recurrent experiments run once per seed
(run names ``GRUCell``, ``GRUCell_seed1``, ...). A run whose ``results.json`` exists is
skipped, an interrupted one resumes from its ``last.pth``, and a run that fails (for
example pretrained weights that are not available offline) is reported and the suite
goes on. At the end ``src.compare`` rebuilds the table and plots.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from src.compare import compare
from src.config import load_config

MAIN_RECURRENT = ("LSTMCell", "GRUCell", "OwnLSTM", "OwnGRU", "OwnConvLSTM")


def planned_runs(experiments: list[str], seeds: int) -> list[tuple[str, str, int]]:
    """``(experiment, run_name, seed)`` for every run of the suite, in order: every
    experiment once first, then the further seeds, so that a suite cut short still
    covers every experiment."""
    return [(name, name if seed == 0 else f"{name}_seed{seed}", seed)
            for seed in range(seeds) for name in experiments if seed == 0 or name in MAIN_RECURRENT]


def run_experiment(experiment: str, run: str | None = None, seed: int | None = None, overrides=(),
                   data_root=None, configs_dir="configs") -> dict:
    """Train (resuming if interrupted) and test one run of ``configs/<experiment>.yaml``;
    return its results (see src.evaluate). A run whose ``results.json`` exists is loaded,
    not trained again."""
    from src.evaluate import evaluate
    from src.train import train

    overrides = [*([f"train.seed={seed}"] if seed is not None else []), *overrides]
    config = load_config(Path(configs_dir) / f"{experiment}.yaml", overrides, name=run)
    run_dir = Path(config["log"]["models_dir"]) / config["experiment"]
    if (run_dir / "results.json").is_file():
        return json.loads((run_dir / "results.json").read_text())
    train(config, data_root=data_root, resume=True)
    return evaluate(run_dir / "best.pth", data_root=data_root)


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
        print(f"[{i}/{len(runs)}] {run} (seed {seed})", flush=True)
        start = time.time()
        try:
            results = run_experiment(name, run, seed, [f"log.models_dir={args.models_dir}", *args.set],
                                     data_root=args.data, configs_dir=args.configs)
        except Exception as error:  # one failed run (e.g. weights not available offline) must not stop the rest
            print(f"[{i}/{len(runs)}] {run}: FAILED: {error}", flush=True)
            failed.append(run)
            continue
        print(f"[{i}/{len(runs)}] {run}: test video accuracy {results['video_accuracy']:.3f} "
              f"({time.time() - start:.0f} s)", flush=True)

    compare(models_dir=args.models_dir, configs_dir=args.configs)
    if failed:
        print(f"{len(failed)} run(s) failed: {', '.join(failed)}; rerun 'python -m src.suite' to retry them")
        sys.exit(1)


if __name__ == "__main__":
    main()
