"""bench/stream.py runs and prints what docs/speed.md reads from it: the ratios with their goals and the memory
of a long stream (``--quick``: a check that it runs, no measurement; a speed goal is never a test)."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.cli import REPO


@pytest.mark.slow
def test_stream_bench_prints_its_ratios_and_flat_memory():
    result = subprocess.run([sys.executable, str(REPO / "bench" / "stream.py"), "--quick", "--frames", "200",
                             "--repeats", "1"], cwd=REPO, text=True, capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "--quick: NOT a measurement" in out
    for ratio in ("streaming GRUCell / R2Plus1D window", "streaming GRUCell / (encoder + one cell step)"):
        assert re.search(re.escape(ratio) + r"\s+\d+\.\d{3}x\s+\d+\.\d{3}x\s+<= \S+\s+(met|MISSED)", out), ratio
    for name in ("GRUCell", "OwnLSTM", "OwnConvLSTM"):  # a stream's state does not grow: 1.000x after 200 frames
        assert re.search(rf"{name}: state bytes\s+[\d.]+ MiB\s+[\d.]+ MiB\s+1\.000x", out), name
