"""What the CRC-32 check of every checkpoint load costs (src/training/checkpoint.py's damaged_record).

    python bench/checkpoint_integrity.py [--repeats 7]

For models/GRUCell/best.pth (2.3 MB) and a 57 MB torch archive (the size of an R(2+1)D run's checkpoint, random
weights written to a temporary folder): the best of ``--repeats`` timings of ``torch.load`` and of the check, and
their ratio (check / load), on the CPU.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from src.training.checkpoint import damaged_record  # noqa: E402


def best_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        big = Path(folder) / "57MB.pth"
        torch.save({"model_state_dict": {"weight": torch.randn(57_000_000 // 4)}}, big)
        for path in (Path(__file__).resolve().parents[1] / "models" / "GRUCell" / "best.pth", big):
            load = best_seconds(lambda: torch.load(path, map_location="cpu", weights_only=True), args.repeats)
            check = best_seconds(lambda: damaged_record(path), args.repeats)
            print(f"{path.name} ({path.stat().st_size / 1e6:.1f} MB): torch.load {1000 * load:.1f} ms, CRC check "
                  f"{1000 * check:.1f} ms, check/load {check / load:.2f}")


if __name__ == "__main__":
    main()
