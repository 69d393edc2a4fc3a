"""Running a model over data and scoring it: the pieces that training, evaluation and the
benchmarks share.

- :func:`select_device`: the device a name asks for ('auto': cuda, then mps, then cpu), if this machine has it;
- :func:`training_precision`, :func:`native_bf16` and :func:`autocast`: the precision ``train.amp`` asks for on a
  device ('float32' | 'bfloat16' | 'float16'), and the autocast that runs a model in it; :func:`cpu_description`
  for the benchmarks' headers;
- :func:`timed`: a loader's batches with the time spent waiting for each;
- :func:`clip_logits`: the logits of every clip of a loader, in loader order (not a video's
  prediction: that is :mod:`src.predict`);
- :func:`classification_metrics`: clip and video accuracy, per-class accuracy, confusion matrix;
- :func:`summarize`: a training run's headline numbers from its per-epoch history.
"""
from __future__ import annotations

import contextlib
import functools
import os
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


def available_devices() -> list[str]:
    """The device names this machine can run on: ``auto``, ``cpu``, then ``cuda`` and ``cuda:0`` ..
    ``cuda:N-1`` when torch sees N CUDA devices, and ``mps`` when it is available."""
    names = ["auto", "cpu"]
    if torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        names.append("mps")
    return names


def select_device(name: str = "auto", key: str = "device") -> torch.device:
    """The device ``name`` names, when this machine has it: ``'auto'`` is cuda, then mps, then cpu;
    ``'cpu'``; ``'cuda'`` or ``'cuda:N'`` when torch sees CUDA (N below the device count); ``'mps'``
    when available.

    Raises:
        ValueError: one line ``<key> must be a device of this machine (<available_devices()>), got <name>``;
            ``key`` says where the name came from (``'train.device'``, ``'--device'``).
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):  # not a device string ('foo', 'cuda:x', '')
        device = None
    kind = getattr(device, "type", None)
    cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if (kind == "cpu" or (kind == "cuda" and (device.index or 0) < cuda_devices)
            or (kind == "mps" and torch.backends.mps.is_available())):
        return device
    reason = {"cuda": f" (torch sees {cuda_devices or 'no'} CUDA device{'' if cuda_devices == 1 else 's'} here)",
              "mps": " (MPS is not available here)"}.get(kind, "")
    raise ValueError(f"{key} must be a device of this machine ({', '.join(available_devices())}), "
                     f"got {name!r}{reason}")


PRECISIONS = ("float32", "bfloat16", "float16")


@functools.cache
def cpu_info(cpuinfo: str | Path = "/proc/cpuinfo") -> tuple[str, frozenset[str]]:
    """``(model name, flags)`` of this machine's CPU from Linux's ``cpuinfo`` (what ``lscpu`` shows);
    elsewhere (no such file) ``(platform.processor(), {})``."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return platform.processor() or platform.machine(), frozenset()
    # every CPU lists the same model and flags
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    return fields.get("model name", platform.processor() or "unknown CPU"), frozenset(fields.get("flags", "").split())


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively: the ``avx512_bf16`` or ``amx_bf16`` flag
    (:func:`cpu_info`). Without it bfloat16 is emulated, slower than float32."""
    return bool(cpu_info()[1] & {"avx512_bf16", "amx_bf16"})


def cpu_description() -> str:
    """This machine's CPU for a benchmark's header: ``'AMD EPYC, 2 logical CPUs, no native bf16'``."""
    return (f"{cpu_info()[0]}, {os.cpu_count()} logical CPUs, "
            f"{'native bf16' if native_bf16() else 'no native bf16'}")


def machine_description(device: torch.device) -> str:
    """What ``device`` is, for the record of a run's timings: the GPU's name on CUDA
    (``'NVIDIA H200'``), else :func:`cpu_description`."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type if device.type != "cpu" else cpu_description()


def training_precision(amp: str | bool, device: torch.device) -> str:
    """The precision ``train.amp`` (``'auto'``, True or False) gives on ``device``: ``'float16'``
    (autocast, with a GradScaler) on CUDA unless False; on a CPU ``'bfloat16'`` autocast with True, or
    with ``'auto'`` where the CPU has native bf16 (:func:`native_bf16`); ``'float32'`` otherwise
    (False, MPS)."""
    if amp is False or device.type not in ("cuda", "cpu"):
        return "float32"
    if device.type == "cuda":
        return "float16"
    return "bfloat16" if amp is True or native_bf16() else "float32"


def autocast(device: torch.device, precision: str):
    """The context that runs a model on ``device`` in ``precision`` (one of :data:`PRECISIONS`):
    ``torch.autocast`` in bfloat16 or float16, no autocast for float32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=getattr(torch, precision))


def timed(loader):
    """Yield ``(batch, seconds blocked waiting for it)`` from a DataLoader."""
    iterator = iter(loader)
    while True:
        start = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:
            return
        yield batch, time.perf_counter() - start


@torch.no_grad()
def clip_logits(model, loader, device, precision: str = "float32",
                desc: str = "eval") -> tuple[torch.Tensor, torch.Tensor, float]:
    """Logits of every clip in loader order, the model run in ``precision`` (:func:`autocast`).
    Returns ``(logits (N, C) float32 CPU, labels (N,) int64 CPU, seconds blocked waiting for data)``."""
    model.eval()
    all_logits, all_labels, data_wait = [], [], 0.0
    for (clips, labels, *_), wait in tqdm(timed(loader), total=len(loader), desc=desc, leave=False, dynamic_ncols=True):
        data_wait += wait
        with autocast(device, precision):
            logits = model(clips.to(device, non_blocking=True))
        all_logits.append(logits.float().cpu())
        all_labels.append(labels)
    return torch.cat(all_logits), torch.cat(all_labels), data_wait


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, video_index: torch.Tensor,
                           num_classes: int | None = None) -> dict:
    """Clip and video accuracy, per-class (clip) accuracy, confusion matrix.

    Args:
        logits: (N, C) clip logits.
        labels: (N,) true labels, in 0..C-1.
        video_index: (N,) which video each clip comes from; a video's prediction is the
            argmax of its clips' mean logits.
        num_classes: C, the number of classes (the dataset's or the checkpoint's); default the
            logits' width.

    Returns:
        ``{'loss', 'accuracy', 'video_accuracy', 'per_class_accuracy': [C],
        'confusion_matrix': [C][C] (rows true, columns predicted; counts of clips)}``.
    """
    num_classes = logits.shape[1] if num_classes is None else num_classes
    if logits.shape[1] != num_classes:
        raise ValueError(f"classification_metrics: logits of {logits.shape[1]} classes, num_classes is {num_classes}")
    predictions = logits.argmax(1)
    confusion = torch.bincount(labels * num_classes + predictions, minlength=num_classes ** 2)
    confusion = confusion.reshape(num_classes, num_classes)
    per_class = confusion.diag() / confusion.sum(1).clamp(min=1)
    videos, video_of_clip = torch.unique(video_index, return_inverse=True)
    video_logits = torch.zeros(len(videos), num_classes).index_add_(0, video_of_clip, logits)
    video_labels = torch.zeros(len(videos), dtype=torch.long).scatter_(0, video_of_clip, labels)
    return {
        "loss": F.cross_entropy(logits, labels).item(),
        "accuracy": (predictions == labels).float().mean().item(),
        "video_accuracy": (video_logits.argmax(1) == video_labels).float().mean().item(),
        "per_class_accuracy": per_class.tolist(),
        "confusion_matrix": confusion.tolist(),
    }


def clip_video_index(dataset) -> torch.Tensor:
    """(N,) the video index of every item of a clip dataset, in item order."""
    return torch.tensor([video for video, _ in dataset.clips])


def first_epoch_reaching(history: list[dict], level: float) -> int | None:
    """The first epoch of ``history`` (the trainer's per-epoch rows) whose validation clip accuracy is at least
    ``level`` (a fraction), or None."""
    return next((row["epoch"] for row in history if row["val_accuracy"] >= level - 1e-12), None)


def plateau_epoch(history: list[dict], tolerance: float = 0.005) -> int:
    """The epoch a run reached its plateau: the first whose validation clip accuracy lies within ``tolerance``
    (default half a point) of the last epoch's, or above it."""
    return first_epoch_reaching(history, history[-1]["val_accuracy"] - tolerance)


def summarize(history: list[dict], best: dict) -> dict:
    """The run's headline numbers from its per-epoch history."""
    epoch_times = [row["epoch_time_s"] for row in history]
    return {
        "best_val_accuracy": best["val_accuracy"],
        "best_val_video_accuracy": best["val_video_accuracy"],
        "best_epoch": best["epoch"],
        "epochs": len(history),
        "time_per_epoch_s": sum(epoch_times) / len(epoch_times),
        "data_wait_share": sum(row["data_wait_s"] for row in history) / sum(epoch_times),
        "time_to_best_s": sum(epoch_times[:best["epoch"]]),
        "total_time_s": sum(epoch_times),
    }
