"""Checkpoints: written atomically, loadable with a plain ``torch.load``.

A checkpoint (``models/<experiment>/best.pth`` or ``last.pth``) is a dict of plain Python
types and tensors only, so ``torch.load`` (``weights_only=True``, its default) reads it::

    checkpoint = torch.load("models/GRUCell/best.pth")
    model.load_state_dict(checkpoint["model_state_dict"])

or, rebuilding the model from the checkpoint alone::

    from src.training.checkpoint import load_model
    model, checkpoint = load_model("models/GRUCell/best.pth")

Its keys are the fields of :class:`Checkpoint`, the one schema (:data:`CHECKPOINT_KEYS`), which the
trainer fills; :func:`load_model` needs ``config``, ``model_state_dict``, ``classes`` and ``channels``.
"""
from __future__ import annotations

import dataclasses
import json
import random
import zipfile
from pathlib import Path

import numpy as np
import torch

from src.checks import check_saved_config
from src.config import ConfigError
from src.files import atomic_write
from src.nets.classifier import build_model
from src.training.device import select_device


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """The one schema of a checkpoint: what ``models/<experiment>/last.pth`` and ``best.pth`` hold, saved as the
    plain dict :meth:`as_dict` (its keys: :data:`CHECKPOINT_KEYS`)."""

    model_state_dict: dict
    """The weights that were validated, and that evaluation uses: with ``train.ema_decay`` their exponential moving
    average, else the trained weights."""
    ema: dict | None
    """None, or with ``train.ema_decay`` :func:`ema_record`'s ``{'decay', 'updates', 'trained_state_dict'}``."""
    optimizer_state_dict: dict
    scheduler_state_dict: dict | None
    """None without a scheduler."""
    scaler_state_dict: dict
    """Empty unless float16 AMP ran."""
    epoch: int
    """Epochs completed, 1-based."""
    config: dict
    """The full experiment config."""
    metrics: dict
    """``{'history': [one dict per epoch], 'best': {...}}``."""
    rng_states: dict
    """:func:`get_rng_states`: torch, cuda, numpy, python."""
    data_root: str
    synthetic: bool
    """The data it was trained on: its folder, and whether it is the synthetic twin."""
    provenance: dict
    """The data's fingerprint, the groups of each split as loaded, the code version, the precision:
    src/training/provenance.py."""
    classes: list
    """The class names, label i being ``classes[i]``: the model's outputs."""
    channels: int
    """Of the frames the model takes: 1 grayscale, 3 RGB."""

    def as_dict(self) -> dict:
        """The checkpoint as the dict that is saved (the values themselves, not copies)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


CHECKPOINT_KEYS = tuple(field.name for field in dataclasses.fields(Checkpoint))
"""Every key of a checkpoint of src.train, in :class:`Checkpoint`'s order."""


def ema_record(decay: float, updates: int, trained_state_dict: dict) -> dict:
    """A checkpoint's ``ema`` under ``train.ema_decay``: the decay, the optimizer steps averaged, and the trained
    weights, which a resumed run trains on (``model_state_dict`` holds their average)."""
    return {"decay": decay, "updates": updates, "trained_state_dict": trained_state_dict}


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, no permission, file too large); the file that was
    at the path before is kept, and the message says so (one line)."""


def save_checkpoint(checkpoint: dict, path: str | Path) -> Path:
    """Write ``checkpoint`` to ``path`` atomically (:func:`src.files.atomic_write`: a temp file
    beside it, fsync, then rename).

    An interruption at any moment (kill -9 included) leaves either the old file or the new
    one, never half of one. The temp file ``.<name>.<host>.<pid>.<random>.tmp`` is this call's
    alone, and is removed when the write fails; the trainer removes those of killed writers
    (:func:`src.files.remove_temp_files`).

    Raises:
        CheckpointWriteError: the folder or the file cannot be written (``torch.save``'s
            ``RuntimeError: [enforce fail at inline_container.cc...]`` or an OSError); the message
            names ``path``, the reason and the epoch of the previous file, which is kept.
    """
    path = Path(path)
    try:
        with atomic_write(path) as f:
            torch.save(checkpoint, f)
    except BaseException as error:
        reason = _write_failure(error)
        if reason is None:
            raise
        raise CheckpointWriteError(f"{path}: could not write the checkpoint ({reason}); {_kept(path)}") from error
    return path


def _write_failure(error: BaseException) -> str | None:
    """Why a write failed (``'No space left on device'``), or None when ``error`` is no write failure.
    ``torch.save`` reports a failed write to a file object as a RuntimeError of its stream writer,
    the OSError of the write being its context."""
    if isinstance(error, RuntimeError) and "inline_container" in str(error):
        context = error.__context__
        return _write_failure(context) if isinstance(context, OSError) else str(error).splitlines()[0]
    if isinstance(error, OSError):
        return error.strerror or str(error)
    return None


def _kept(path: Path) -> str:
    """What is left at ``path`` after a failed write: ``'the previous last.pth (epoch 3) was kept'``."""
    if not path.is_file():
        return f"there was no previous {path.name}"
    try:
        epoch = torch.load(path, map_location="cpu", weights_only=True, mmap=True)["epoch"]
    except Exception:  # not ours to read: kept all the same
        return f"the previous {path.name} was kept"
    return f"the previous {path.name} (epoch {epoch}) was kept"


class CheckpointReadError(ValueError):
    """A file that is not a checkpoint of src.train (or not a whole one): a bad input, not a fault
    of the environment; the message is one line that names the file, says what it is, and what
    to give instead."""


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``), every record of its zip
    archive checked against its CRC-32 first (:func:`damaged_record`). Every reader of a checkpoint comes here:
    :func:`load_model` (src.evaluate, src.predict, src.export, the notebook), the trainer's resume, the suite.

    ``map_location`` is checked (:func:`src.training.device.select_device`) before the file is read, so
    that a device this machine lacks is never taken for an unreadable file.

    Raises:
        ValueError: ``map_location`` is not a device of this machine (one line naming it).
        FileNotFoundError: nothing at ``path``.
        CheckpointReadError: ``path`` is a folder, or a file that is not a checkpoint (empty, truncated,
            an evaluation's results.json, an ONNX export, ...), or a damaged one (a record failing its CRC); one
            line saying what it is and what to give instead.
    """
    map_location = select_device(str(map_location), key="map_location")
    path = Path(path)
    if path.is_dir():
        raise CheckpointReadError(f"{path}: a folder, not a checkpoint; give {_checkpoint_instead(path / '_')}")
    if not path.exists():
        experiment = path.parent.name or "<experiment>"
        raise FileNotFoundError(f"{path}: no checkpoint there; train first with "
                                f"'python -m src.train --config configs/{experiment}.yaml'")
    if (record := damaged_record(path)) is not None:
        raise CheckpointReadError(f"{path}: a damaged checkpoint (its record {record} fails the archive's CRC-32 "
                                  f"check: a corrupted copy or disk); copy it again, or give "
                                  f"{_checkpoint_instead(path)}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # a truncated or foreign file; the device was checked above
        raise CheckpointReadError(f"{path}: {_what_file_is(path, e)}, not a checkpoint of src.train; give "
                                  f"{_checkpoint_instead(path)}") from None
    if not isinstance(checkpoint, dict):
        raise CheckpointReadError(f"{path}: a torch file holding a {type(checkpoint).__name__}, not a checkpoint "
                                  f"of src.train (a dict); give {_checkpoint_instead(path)}")
    return checkpoint


def damaged_record(path: Path) -> str | None:
    """The first record of the torch zip archive at ``path`` whose bytes fail the CRC-32 that the archive stores for
    it (``zipfile.ZipFile.testzip``: every record read once), e.g. ``'archive/data/24'``; None when every record
    passes, or when ``path`` is no readable zip archive (a legacy torch pickle, a truncated or foreign file: what
    ``torch.load`` then says of it is reported instead). ``torch.load`` itself checks no CRC: a flipped byte in a
    tensor's record loads as another weight. Costs a fraction of the load: 1.2 ms for models/GRUCell/best.pth
    (2.3 MB; torch.load 4.3 ms), 18 ms for 57 MB (torch.load 26 ms) on an Intel Xeon core."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):  # no zip archive, or unreadable: torch.load says
        return None


def _what_file_is(path: Path, error: Exception) -> str:
    """What the file at ``path`` that ``torch.load`` failed on (with ``error``) is, in a few words."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as e:
        return f"a file that cannot be read ({e.strerror or e})"
    first_sentence = f"{type(error).__name__}: {(str(error).splitlines() or [''])[0].split('. ')[0]}"
    if not head:
        return "an empty file (an interrupted copy?)"
    if path.suffix.lower() == ".onnx":
        return "an ONNX export of src.export"
    if head.lstrip()[:1] in (b"{", b"["):
        try:
            content = json.loads(path.read_text())
        except (OSError, ValueError):
            return "a damaged JSON file"
        if isinstance(content, dict) and "clip_accuracy" in content:
            return "the results of an evaluation (src.evaluate)"
        return "a JSON file"
    if path.suffix.lower() in (".yaml", ".yml"):
        return "a config file"
    if "can still be loaded" in str(error) or "unsupported GLOBAL" in str(error):  # weights_only refused its objects
        return "a torch file of other Python objects (torch.save of a whole model, or a crafted pickle; none was run)"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):  # torch's zip format, or its legacy pickle
        return f"a truncated or damaged torch file ({first_sentence})"
    return "a file torch cannot read"


def _checkpoint_instead(path: Path) -> str:
    """What to give instead of ``path``: the run's best.pth or last.pth beside it (in its folder), when
    there is one."""
    for name in ("best.pth", "last.pth"):
        candidate = path.with_name(name)
        if candidate != path and candidate.is_file():
            return str(candidate)
    return "a checkpoint of 'python -m src.train' (models/<experiment>/best.pth)"


RESUME_ONLY_KEYS = ("optimizer_state_dict", "scheduler_state_dict", "scaler_state_dict", "rng_states")


def for_inference(checkpoint: dict) -> dict:
    """``checkpoint`` without what only resuming its training reads: the optimizer's, scheduler's and
    scaler's states, the RNG states and the EMA's trained weights (``ema`` keeps ``decay`` and
    ``updates``). What :func:`load_model`, src.evaluate, src.predict and src.export read is kept, so the
    result works with each of them; for a GRUCell run with EMA it is a quarter of the size (2.3 of 9.0 MB).
    A new dict; ``checkpoint`` is not changed."""
    slim = {key: value for key, value in checkpoint.items() if key not in RESUME_ONLY_KEYS}
    if isinstance(slim.get("ema"), dict):
        slim["ema"] = {key: value for key, value in slim["ema"].items() if key != "trained_state_dict"}
    return slim


MODEL_KEYS = ("config", "model_state_dict", "classes", "channels")
"""What :func:`load_model` reads of a checkpoint to rebuild its model."""


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild the model from a checkpoint alone, with the weights that were validated (``model_state_dict``: the
    average of the weights for a run with ``train.ema_decay``). Returns ``(model in eval mode, checkpoint)``; the
    class names are ``checkpoint["classes"]``.

    Raises what :func:`load_checkpoint` raises, and CheckpointReadError when the checkpoint lacks
    :data:`MODEL_KEYS`, its config is refused as a YAML file's would be (:func:`src.checks.check_saved_config`:
    keys, types, ranges, choices, sizes that cannot fit this machine's memory; not ``train.device``), or its weights
    do not fit the model its config, classes and channels describe.
    """
    path = Path(path)
    checkpoint = load_checkpoint(path, map_location)
    missing = [key for key in MODEL_KEYS if key not in checkpoint]
    if missing:
        raise CheckpointReadError(f"{path}: a torch file without {' or '.join(map(repr, missing))}, not a checkpoint "
                                  f"of src.train; give {_checkpoint_instead(path)}")
    try:
        num_classes, channels = len(checkpoint["classes"]), int(checkpoint["channels"])
        check_saved_config(checkpoint["config"], f"{path} (its config)", channels=channels, num_classes=num_classes)
        model = build_model(checkpoint["config"]["model"], num_classes=num_classes, in_channels=channels,
                            load_pretrained=False)  # the weights come next
    except ConfigError as e:  # as a YAML file's would be: a key, type or value not allowed, a size that cannot fit
        raise CheckpointReadError(f"{e}; give {_checkpoint_instead(path)}") from None
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointReadError(f"{path}: its config describes no model this code can build ({type(e).__name__}: "
                                  f"{(str(e).splitlines() or [''])[0]}); give {_checkpoint_instead(path)}") from None
    try:
        model.load_state_dict(checkpoint["model_state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointReadError(f"{path}: its weights do not fit the model its config describes ({type(e).__name__}: "
                                  f"{(str(e).splitlines() or [''])[0]}); give {_checkpoint_instead(path)}") from None
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
