"""Checkpoints: written atomically, loadable with a plain ``torch.load``.

A checkpoint (``models/<experiment>/best.pth`` or ``last.pth``) is a dict of plain Python
types and tensors only, so ``torch.load`` (``weights_only=True``, its default) reads it::

    checkpoint = torch.load("models/GRUCell/best.pth")
    model.load_state_dict(checkpoint["model_state_dict"])

or, rebuilding the model from the checkpoint alone::

    from src.checkpoint import load_model
    model, checkpoint = load_model("models/GRUCell/best.pth")

Keys: ``model_state_dict``, ``optimizer_state_dict``, ``scheduler_state_dict`` (None
without a scheduler), ``scaler_state_dict`` (empty unless AMP ran), ``epoch`` (epochs
completed, 1-based), ``config`` (the full experiment config), ``metrics``
(``{'history': [one dict per epoch], 'best': {...}}``), ``rng_states`` (torch, cuda,
numpy, python), ``data_root`` and ``synthetic`` (the data it was trained on), ``provenance``
(the data's fingerprint, the persons of each split as loaded, the code version, whether AMP
was used: see src/provenance.py).
"""
from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

CHECKPOINT_KEYS = ("model_state_dict", "optimizer_state_dict", "scheduler_state_dict", "scaler_state_dict",
                   "epoch", "config", "metrics", "rng_states", "data_root", "synthetic",
                   "provenance")


def save_checkpoint(checkpoint: dict, path: str | Path) -> Path:
    """Write ``checkpoint`` to ``path`` atomically: a temp file beside it, fsync, then rename.

    An interruption at any moment (kill -9 included) leaves either the old file or the new
    one, never half of one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint there; train first with "
                                f"'python -m src.train --config configs/{path.parent.name}.yaml'")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # a truncated or foreign file
        raise RuntimeError(f"{path}: not a readable checkpoint ({type(e).__name__}: {str(e).splitlines()[0]}); "
                           f"delete it and train again") from None


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild the model from a checkpoint alone. Returns ``(model in eval mode, checkpoint)``."""
    from src.classifier import build_model

    checkpoint = load_checkpoint(path, map_location)
    model = build_model(checkpoint["config"]["model"], load_pretrained=False)  # the weights come next
    model.load_state_dict(checkpoint["model_state_dict"])
    return model.to(map_location).eval(), checkpoint


def get_rng_states() -> dict:
    """Every random generator's state (torch, cuda, numpy, python) as tensors and plain types."""
    numpy_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *numpy_state[2:]],
        "python": random.getstate(),
    }


def set_rng_states(states: dict) -> None:
    """Restore the states saved by :func:`get_rng_states`."""
    torch.set_rng_state(states["torch"].cpu())
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in states["cuda"]])
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
