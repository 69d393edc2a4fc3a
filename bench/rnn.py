"""Speed of the own recurrent cells against PyTorch's: forward + backward, float32.

    python bench/rnn.py                     # CPU, 2 threads (the default)
    python bench/rnn.py --device cuda       # GPU, when there is one
    python bench/rnn.py --compile           # also torch.compile(OwnLSTM), torch.compile(OwnGRU)

Prints the median (and min) time of one training step (forward, sum of the output,
backward) of each contender and the ratios of issue 2, from the medians (and the mins:
on a shared machine the min is the steadier estimate of the unloaded time):

* OwnLSTM / torch.nn.LSTM, OwnLSTM / a loop of torch.nn.LSTMCell and OwnGRU / torch.nn.GRU,
  at B=32, T=10, 128 -> 128, 2 layers (goal: OwnLSTM <= 1.3x torch.nn.LSTM);
* OwnConvLSTM / a plain ConvLSTM that convolves [x_t, h_{t-1}] with one convolution per
  step (written here as the reference), at B=8, T=10, 64 -> 64 channels, 16x16, k=3
  (goal: <= 1.0x).

With ``--compile``: ``torch.compile(OwnLSTM)`` and ``torch.compile(OwnGRU)`` (inductor,
default mode) against the same torch.nn.LSTM / torch.nn.GRU (goal: compiled OwnLSTM <= 1.0x,
eager OwnLSTM <= 1.2x), and the compile time of each (its first forward + backward,
printed separately, not in the step times), with the number of graph breaks.
"""
from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from src.nets.cells import OwnConvLSTM, OwnGRU, OwnLSTM  # noqa: E402


class LSTMCellLoop(nn.Module):
    """A stack of torch.nn.LSTMCell run step by step: x (B, T, I) -> (B, T, H)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int):
        super().__init__()
        self.cells = nn.ModuleList(nn.LSTMCell(input_size if layer == 0 else hidden_size, hidden_size)
                                   for layer in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for cell in self.cells:
            state = None
            outputs = []
            for t in range(x.shape[1]):
                state = cell(x[:, t], state)
                outputs.append(state[0])
            x = torch.stack(outputs, dim=1)
        return x


class ReferenceConvLSTM(nn.Module):
    """The plain ConvLSTM: one Conv2d over [x_t, h_{t-1}] per step. x (B, T, C, H, W) -> (B, T, Ch, H, W)."""

    def __init__(self, input_channels: int, hidden_channels: int, kernel_size: int):
        super().__init__()
        self.hidden_channels = hidden_channels
        self.conv = nn.Conv2d(input_channels + hidden_channels, 4 * hidden_channels, kernel_size,
                              padding=kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _, H, W = x.shape
        h = c = x.new_zeros(B, self.hidden_channels, H, W)
        outputs = []
        for t in range(T):
            i, f, g, o = self.conv(torch.cat([x[:, t], h], dim=1)).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs, dim=1)


def train_step(model: nn.Module, x: torch.Tensor) -> None:
    """One forward and backward pass; the loss is the sum of the output sequence."""
    out = model(x)
    out = out[0] if isinstance(out, tuple) else out
    out.sum().backward()


def time_ms(contenders: dict[str, tuple[nn.Module, torch.Tensor]], rounds: int,
            device: torch.device) -> dict[str, tuple[float, float]]:
    """(median, min) time of :func:`train_step` in milliseconds for every (model, input) contender.

    The contenders take turns, one step each per round, so that a change of load on a
    shared machine hits them all alike. Two warm-up steps each come first.
    """
    def timed_step(model: nn.Module, x: torch.Tensor) -> float:
        model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        train_step(model, x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    for model, x in contenders.values():
        for _ in range(2):
            timed_step(model, x)
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in tqdm(range(rounds), desc=f"{len(contenders)} contenders", leave=False):
        for name, (model, x) in contenders.items():
            samples[name].append(timed_step(model, x))
    return {name: (1e3 * statistics.median(times), 1e3 * min(times)) for name, times in samples.items()}


def machine(device: torch.device) -> str:
    """The CPU (or GPU) model, torch version, threads and date, in one line."""
    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = f"{names[0]} ({len(names)} logical cores)" if names else cpu
    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return (f"{cpu}{gpu}; torch {torch.__version__}; threads: {torch.get_num_threads()}; "
            f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default: 2)")
    parser.add_argument("--rounds", type=int, default=60, help="timed steps per LSTM/GRU contender (default: 60)")
    parser.add_argument("--compile", action="store_true", help="add torch.compile(OwnLSTM) and (OwnGRU)")
    parser.add_argument("--conv-rounds", type=int, default=12, help="timed steps per ConvLSTM contender (default: 12)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("bench/rnn.py: --device cuda asked for, but torch sees no CUDA device; run without --device")
    torch.manual_seed(0)

    B, T, I, H, L = 32, 10, 128, 128, 2
    sequence = torch.randn(B, T, I, device=device)
    rnn_models = {
        "torch.nn.LSTM": nn.LSTM(I, H, L, batch_first=True),
        "torch.nn.LSTMCell loop": LSTMCellLoop(I, H, L),
        "OwnLSTM": OwnLSTM(I, H, L),
        "torch.nn.GRU": nn.GRU(I, H, L, batch_first=True),
        "OwnGRU": OwnGRU(I, H, L),
    }
    CB, CT, C, CH, S, K = 8, 10, 64, 64, 16, 3
    frames = torch.randn(CB, CT, C, S, S, device=device)
    conv_models = {
        "ConvLSTM reference (one conv of [x, h] per step)": ReferenceConvLSTM(C, CH, K),
        "OwnConvLSTM": OwnConvLSTM(C, CH, K),
    }

    compile_s = {}
    if args.compile:
        for name in ("OwnLSTM", "OwnGRU"):
            eager = rnn_models[name].to(device)
            breaks = torch._dynamo.explain(eager)(sequence).graph_break_count
            compiled = torch.compile(eager)
            start = time.perf_counter()
            train_step(compiled, sequence)  # compiles forward and backward
            compile_s[name] = (time.perf_counter() - start, breaks)
            rnn_models[f"compiled {name}"] = compiled

    print(f"Machine: {machine(device)}")
    print(f"Forward + backward, float32, {device.type}; {args.rounds} (LSTM/GRU) and {args.conv_rounds} (ConvLSTM) "
          f"interleaved steps each.\n")
    times = time_ms({name: (model.to(device), sequence) for name, model in rnn_models.items()}, args.rounds, device)
    times.update(time_ms({name: (model.to(device), frames) for name, model in conv_models.items()},
                         args.conv_rounds, device))
    shapes = {**{name: f"B={B} T={T} {I}->{H} L={L}" for name in rnn_models},
              **{name: f"B={CB} T={CT} {C}->{CH}ch {S}x{S} k={K}" for name in conv_models}}
    print(f"  {'model':<50} {'shape':<28} {'median':>9}    {'min':>9}")
    for name, (median, fastest) in times.items():
        print(f"  {name:<50} {shapes[name]:<28} {median:9.3f} ms {fastest:9.3f} ms")

    ratios = [
        ("OwnLSTM / torch.nn.LSTM", "OwnLSTM", "torch.nn.LSTM", 1.2),
        ("OwnLSTM / torch.nn.LSTMCell loop", "OwnLSTM", "torch.nn.LSTMCell loop", None),
        ("torch.nn.LSTMCell loop / torch.nn.LSTM", "torch.nn.LSTMCell loop", "torch.nn.LSTM", None),
        ("OwnGRU / torch.nn.GRU", "OwnGRU", "torch.nn.GRU", None),
        *([("compiled OwnLSTM / torch.nn.LSTM", "compiled OwnLSTM", "torch.nn.LSTM", 1.0),
           ("compiled OwnGRU / torch.nn.GRU", "compiled OwnGRU", "torch.nn.GRU", None)] if args.compile else []),
        ("OwnConvLSTM / ConvLSTM reference", "OwnConvLSTM", "ConvLSTM reference (one conv of [x, h] per step)", 1.0),
    ]
    print(f"\n  {'ratio':<42} {'medians':>8} {'mins':>7}   goal")
    for label, numerator, denominator, goal in ratios:
        ratio = times[numerator][0] / times[denominator][0]
        ratio_of_mins = times[numerator][1] / times[denominator][1]
        verdict = "" if goal is None else f"<= {goal:.1f}  {'met' if ratio <= goal else 'MISSED'} (medians)"
        print(f"  {label:<42} {ratio:7.2f}x {ratio_of_mins:6.2f}x   {verdict}")
    for name, (seconds, breaks) in compile_s.items():
        print(f"  compiling {name}: {seconds:.1f} s (first forward + backward), {breaks} graph breaks")

if __name__ == "__main__":
    main()
