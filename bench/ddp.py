"""Speed of data-parallel training: 2 processes under torchrun against 1 process.

    python bench/ddp.py [--data data/synth] [--config configs/GRUCell.yaml] [--epochs 3] [--repeats 1]

Trains the experiment (default: the default experiment, GRUCell) for ``--epochs`` epochs with

- ``python -m src.train`` (1 process, OMP_NUM_THREADS=2), and
- ``torchrun --standalone --nproc_per_node=2 -m src.train`` (2 processes, OMP_NUM_THREADS=1
  each, as torchrun sets by default; gloo on CPU, SyncBatchNorm on, the same global batch),

on the same data, into a temporary folder, and prints the epoch times (train + validation,
from the runs' last.pth; the first epoch is left out as warm-up) and their ratio. On a 2-core
CPU expect no speed-up: both use the 2 cores, and DDP adds the all-reduces. Thread counts
follow the number of cores: ``--threads`` for the single process, ``--threads / 2`` per rank.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def run(command: list[str], threads: int, out: Path, name: str, args) -> tuple[list[float], float]:
    """Train once; return (epoch times after the first, wall seconds of the whole command)."""
    overrides = [f"train.epochs={args.epochs}", f"log.models_dir={out / 'models'}",
                 f"log.tboard_dir={out / 'tboard'}", "train.device=cpu"]
    full = [*command, "-m", "src.train", "--config", args.config, *(["--data", args.data] if args.data else []),
            "--name", name, "--set", *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    result = subprocess.run(full, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"{' '.join(full)} failed:\n{result.stderr[-2000:]}")
    history = torch.load(out / "models" / name / "last.pth")["metrics"]["history"]
    return [row["epoch_time_s"] for row in history[1:]], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/GRUCell.yaml")
    parser.add_argument("--data", default=None, help="prepared data folder (default: the config's data.root)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run; the first is left out")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each, alternating")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads of the single process")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first is warm-up)")

    one, two, walls = [], [], {"1": [], "2": []}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            times, wall = run([sys.executable], args.threads, Path(tmp), f"single{repeat}", args)
            one += times
            walls["1"].append(wall)
            times, wall = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"],
                              max(1, args.threads // 2), Path(tmp), f"ddp{repeat}", args)
            two += times
            walls["2"].append(wall)

    def describe(times):
        return (f"median {statistics.median(times):.2f} s, min {min(times):.2f}, max {max(times):.2f} "
                f"({len(times)} epochs)")

    print(f"{args.config}, {args.epochs} epochs x {args.repeats} run(s), CPU, float32; epoch = train + validation")
    print(f"1 process  x {args.threads} threads : {describe(one)}; whole command {statistics.median(walls['1']):.1f} s")
    print(f"2 processes x {max(1, args.threads // 2)} thread(s): {describe(two)}; "
          f"whole command {statistics.median(walls['2']):.1f} s")
    print(f"epoch time, 2 processes / 1 process: {statistics.median(two) / statistics.median(one):.2f}x "
          f"(speed-up {statistics.median(one) / statistics.median(two):.2f}x)")


if __name__ == "__main__":
    main()
