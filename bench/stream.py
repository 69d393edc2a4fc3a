"""Recognition as the video arrives: the latency of one new answer per new frame, batch 1, float32, CPU.

    python bench/stream.py              # the measurement; run it on a quiet machine
    python bench/stream.py --quick      # few repeats and a short stream: checks that it runs, measures nothing

Side by side, in one run, with torch's default number of threads, on the models of configs/GRUCell.yaml,
configs/OwnLSTM.yaml, configs/OwnConvLSTM.yaml and configs/R2Plus1D.yaml at their sizes (random weights,
eval mode; the timings do not depend on the weights):

* each recurrent model streamed (src/nets/streaming.py's StreamingClassifier): under the default rule
  ('window', 2 staggered states), under 'carry' (1 state) and with max_frames states (the exact sliding
  window);
* the same model recomputing its whole window of max_frames frames per frame (WindowedClassifier);
* R(2+1)D recomputing its window per frame, the only way a clip network can answer every frame;
* the parts of a streaming step: the encoder on one frame and one step of the recurrent module,
  timed apart; the remainder of the streaming step (temporal head, bookkeeping) is the difference;
* the memory of a long stream (--frames frames, default 10,000) under the default rule: the bytes of the
  tensors the stream holds and the process's resident memory, after 100 frames and after all of them.

Timings: torch.utils.benchmark.Timer; the contenders take turns, one timed run of each per round
(--repeats rounds), so that a change of load on a shared machine hits them all alike; the median and the
min of the rounds are printed. Then the ratios: streaming GRUCell / R2Plus1D window (goal <= 1/10),
streaming GRUCell / (encoder + one cell step) (goal <= 2x), and memory after --frames frames / after 100.
"""
from __future__ import annotations

import argparse
import datetime
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.benchmark import Timer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from src.config import load_config  # noqa: E402
from src.data.sources.kth import ACTIONS  # noqa: E402  (the number of classes of the models timed)
from src.nets.classifier import build_model  # noqa: E402
from src.nets.streaming import (  # noqa: E402
    DEFAULT_RULE,
    DEFAULT_STATES,
    StreamingClassifier,
    WindowedClassifier,
    recurrent_step,
    zero_state,
)
from src.training.device import cpu_description  # noqa: E402

RECURRENT = ("GRUCell", "OwnLSTM", "OwnConvLSTM")
CLIP_NETWORK = "R2Plus1D"
DEFAULT_FRAMES = 10_000
KTH_CHANNELS = 1  # what data.channels auto resolves to on KTH and on the synthetic twin
EARLY_FRAMES = 100  # the memory of the long stream is compared with its memory after these frames
RUN_SECONDS = 0.05  # each timed run lasts about this long (its number of calls is calibrated once)


def experiment(name: str) -> tuple[torch.nn.Module, dict]:
    """The model of configs/<name>.yaml (random weights, eval mode) and the config's data section."""
    config = load_config(REPO / "configs" / f"{name}.yaml")
    data = dict(config["data"])
    if data["channels"] == "auto":  # the data's channels: KTH and its twin are grayscale
        data["channels"] = KTH_CHANNELS
    model = build_model(config["model"], num_classes=len(ACTIONS), in_channels=data["channels"],
                        load_pretrained=False)
    return model.eval(), data


def contenders(frame: torch.Tensor) -> dict[str, tuple[str, Callable[[], object]]]:
    """label -> (model name, a call that gives one answer or does one part of a step), all ready to time:
    streams primed past their first window, so that they are in their steady state."""
    calls = {}
    for name in RECURRENT:
        model, data = experiment(name)
        max_frames = data["max_frames"]
        streams = {
            f"stream ({DEFAULT_RULE}, {DEFAULT_STATES} states)": StreamingClassifier(model, max_frames),
            "stream (carry, 1 state)": StreamingClassifier(model, max_frames, rule="carry"),
            f"stream (window, {max_frames} states)": StreamingClassifier(model, max_frames, states=max_frames),
            f"recompute window of {max_frames}": WindowedClassifier(model, max_frames),
        }
        for label, stream in streams.items():
            for _ in range(max_frames + 1):
                stream.step(frame)
            calls[f"{name}: {label}"] = (name, lambda stream=stream: stream.step(frame))
        with torch.inference_mode():
            features = model.encoder(frame)
            state = zero_state(model.rnn, features)
        calls[f"{name}: encoder, 1 frame"] = (name, lambda model=model: model.encoder(frame))
        calls[f"{name}: 1 cell step"] = (name, lambda model=model, features=features, state=state:
                                         recurrent_step(model.rnn, features, state))
    model, data = experiment(CLIP_NETWORK)
    window = WindowedClassifier(model, data["max_frames"])
    for _ in range(data["max_frames"]):
        window.step(frame)
    calls[f"{CLIP_NETWORK}: recompute window of {data['max_frames']}"] = (CLIP_NETWORK, lambda: window.step(frame))
    return calls


@torch.inference_mode()
def time_ms(calls: dict[str, tuple[str, Callable[[], object]]], repeats: int) -> dict[str, tuple[float, float]]:
    """(median, min) over ``repeats`` rounds of the milliseconds per call of every contender; each round
    times every contender once (Timer.timeit of a number of calls calibrated to last about RUN_SECONDS)."""
    timers, numbers = {}, {}
    for label, (_, call) in calls.items():
        timers[label] = Timer(stmt="call()", globals={"call": call}, label=label)
        once = timers[label].timeit(number=3).median
        numbers[label] = max(1, round(RUN_SECONDS / once))
    samples: dict[str, list[float]] = {label: [] for label in calls}
    for round_ in range(repeats):
        for label, timer in timers.items():
            samples[label].append(1e3 * timer.timeit(number=numbers[label]).median)
        print(f"  round {round_ + 1}/{repeats}", end="\r", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return {label: (statistics.median(times), min(times)) for label, times in samples.items()}


def resident_bytes() -> int:
    """The process's resident memory now (Linux /proc/self/statm), else its peak (ru_maxrss)."""
    statm = Path("/proc/self/statm")
    if statm.is_file():
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def long_stream_memory(name: str, frames: int, frame: torch.Tensor) -> dict[str, tuple[int, int]]:
    """Memory of a stream of ``frames`` frames under the default rule: ``{"state bytes", "resident bytes",
    "peak resident bytes"}`` -> (after EARLY_FRAMES frames, after all of them)."""
    model, data = experiment(name)
    stream = StreamingClassifier(model, data["max_frames"])
    memory = {}
    for t in range(1, frames + 1):
        stream.step(frame)
        if t in (EARLY_FRAMES, frames):
            memory[t] = (sum(tensor.nbytes for tensor in stream.state_tensors()), resident_bytes(),
                         resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    early, late = memory[EARLY_FRAMES], memory[frames]
    return {what: (early[i], late[i]) for i, what in enumerate(("state bytes", "resident bytes",
                                                                "peak resident bytes"))}


def print_times(times: dict[str, tuple[float, float]]) -> None:
    """The table of timings, each recurrent model's remainder of a streaming step included."""
    print(f"  {'contender':<52} {'median':>10}    {'min':>10}")
    for label, (median, fastest) in times.items():
        print(f"  {label:<52} {median:10.3f} ms {fastest:10.3f} ms")
    stream = f"stream ({DEFAULT_RULE}, {DEFAULT_STATES} states)"
    print(f"\n  {'remainder of a streaming step (' + stream + ')':<52} {'median':>10}")
    for name in RECURRENT:
        parts = times[f"{name}: encoder, 1 frame"][0] + times[f"{name}: 1 cell step"][0]
        print(f"  {name + ': step - encoder - cell step':<52} {times[f'{name}: {stream}'][0] - parts:10.3f} ms")


def print_ratios(times: dict[str, tuple[float, float]], memory: dict[str, dict], frames: int) -> None:
    """The ratios of issue 32 with their goals, from the medians (and the mins)."""
    stream = f"stream ({DEFAULT_RULE}, {DEFAULT_STATES} states)"
    r2plus1d = next(label for label in times if label.startswith(f"{CLIP_NETWORK}:"))

    def total(labels: list[str]) -> tuple[float, float]:
        """(sum of the medians, sum of the mins) of ``labels``."""
        return sum(times[label][0] for label in labels), sum(times[label][1] for label in labels)

    ratios = [(f"streaming GRUCell / {CLIP_NETWORK} window", [f"GRUCell: {stream}"], [r2plus1d], 0.1),
              ("streaming GRUCell / (encoder + one cell step)", [f"GRUCell: {stream}"],
               ["GRUCell: encoder, 1 frame", "GRUCell: 1 cell step"], 2.0)]
    for name in RECURRENT:
        window = next(label for label in times if label.startswith(f"{name}: recompute window"))
        ratios.append((f"streaming {name} / its recomputed window", [f"{name}: {stream}"], [window], None))
    print(f"\n  {'ratio':<48} {'medians':>8} {'mins':>7}   goal")
    for label, numerator, denominator, goal in ratios:
        ratio, ratio_of_mins = (a / b for a, b in zip(total(numerator), total(denominator)))
        verdict = "" if goal is None else f"<= {goal:g}  {'met' if ratio <= goal else 'MISSED'} (medians)"
        print(f"  {label:<48} {ratio:7.3f}x {ratio_of_mins:6.3f}x   {verdict}")
    print(f"\n  memory of a stream ({DEFAULT_RULE}), after {EARLY_FRAMES} and after {frames} frames")
    for name, rows in memory.items():
        for what, (early, late) in rows.items():
            print(f"  {name + ': ' + what:<40} {early / 2**20:10.3f} MiB {late / 2**20:10.3f} MiB   "
                  f"{late / early:6.3f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=None,
                        help=f"frames of the long stream whose memory is measured (default {DEFAULT_FRAMES}; "
                             f"--quick: 1000)")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per contender (default 20; --quick: 3)")
    parser.add_argument("--quick", action="store_true", help="few rounds and a short stream: check that it runs")
    args = parser.parse_args(argv)
    frames = args.frames or (1000 if args.quick else DEFAULT_FRAMES)
    repeats = args.repeats or (3 if args.quick else 20)
    if frames <= EARLY_FRAMES or repeats < 1:
        parser.error(f"--frames must be > {EARLY_FRAMES} and --repeats >= 1")
    torch.manual_seed(0)
    _, data = experiment(RECURRENT[0])
    frame = torch.rand(1, data["channels"], data["img_size"], data["img_size"])

    print(f"Machine: {cpu_description()}; torch {torch.__version__}; {torch.get_num_threads()} threads; "
          f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}" + ("; --quick: NOT a measurement" * args.quick))
    print(f"Batch 1, float32, frames {data['channels']}x{data['img_size']}x{data['img_size']}, windows of "
          f"{data['max_frames']} frames; {repeats} interleaved rounds of about {RUN_SECONDS * 1e3:.0f} ms each.\n")
    calls = contenders(frame)
    times = time_ms(calls, repeats)
    start = time.perf_counter()
    memory = {name: long_stream_memory(name, frames, frame) for name in RECURRENT}
    print_times(times)
    print_ratios(times, memory, frames)
    print(f"\n  (the long streams took {time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
