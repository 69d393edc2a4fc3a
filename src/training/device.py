"""The device a run uses and the precision it runs in.

- :func:`select_device`: the device a name asks for ('auto': cuda, then mps, then cpu), if this machine has it;
- :func:`training_precision`, :func:`native_bf16` and :func:`autocast`: the precision ``train.amp`` asks for on a
  device ('float32' | 'bfloat16' | 'float16'), and the autocast that runs a model in it;
- :func:`cpu_info`, :func:`cpu_description` and :func:`machine_description`: what the machine is, for the
  record of a run's timings and the benchmarks' headers.
"""
from __future__ import annotations

import contextlib
import functools
import os
import platform
from pathlib import Path

import torch


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
