"""A trained checkpoint exported to ONNX, with a dynamic batch size, or to a checkpoint for inference only.

:func:`export_pth` writes the checkpoint without what only resuming its training needs
(:func:`src.training.checkpoint.for_inference`: a quarter of the size), which load_model, the evaluation,
the predictor and this export read like the original: the model of record committed in git is made so.

:func:`export_onnx` exports the model (any rnn_type, the own cells included, and the R(2+1)D networks) in
eval mode with torch's dynamo-based exporter (``torch.onnx.export(..., dynamo=True)``, which needs
``onnxscript``): it traces the model with ``torch.export``, and so follows the Python loops over time and the
forward of OwnLSTM/OwnGRU's ``autograd.Function`` as plain tensor operations. (The older TorchScript exporter,
``dynamo=False``, cannot: it fails on the encoder's ``adaptive_avg_pool2d`` once the batch size is dynamic.)

The graph: input ``clips`` float32 (batch, T, C, S, S) in [0, 1], output ``logits`` (batch, number of
classes). T and S are fixed to the config's ``data.max_frames`` and ``data.img_size``, C to the checkpoint's
``channels`` (1 grayscale, 3 RGB). The file's ``metadata_props`` hold ``config`` (the experiment config as
JSON, from which :func:`src.inference.predictor.load_predictor` takes the preprocessing), ``classes`` (the
checkpoint's class names, in order, as JSON) and ``source_checkpoint``. Both write under a temporary name and
rename; a failed export leaves nothing behind.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from src.files import atomic_path
from src.inference.step_graph import STEP_INPUTS, STEP_OUTPUTS, StreamStep, step_example
from src.nets.classifier import ActionClassifier
from src.training.checkpoint import CheckpointWriteError, for_inference, load_model, save_checkpoint

OPSET = 18  # the default, and the lowest the dynamo exporter writes (it cannot convert its graphs lower)


class ExportError(RuntimeError):
    """An export that cannot be done; the message is one line naming the file and the reason."""


class ExportWriteError(ExportError):
    """The exported file could not be written (disk full, permissions); the message starts with its path."""


def supported_opsets() -> range:
    """The ONNX opsets the exporter writes: ``OPSET`` to the newest the installed onnx knows."""
    import onnx  # only an ONNX export needs it

    return range(OPSET, onnx.defs.onnx_opset_version() + 1)


def _first_line(error: Exception, path: Path) -> str:
    return str(error).splitlines()[0] if str(error) else f"{path}: {error!r}"


def export_onnx(checkpoint_path: str | Path, onnx_path: str | Path, opset: int = OPSET) -> Path:
    """Export the model of ``checkpoint_path`` to ``onnx_path`` (see the module docstring).

    Raises ExportError (one line) when ``opset`` is not in :func:`supported_opsets`, the checkpoint cannot be
    read, onnxscript is missing, or the exporter cannot express the model; ExportWriteError when ``onnx_path``
    cannot be written.
    """
    checkpoint_path, onnx_path = Path(checkpoint_path), Path(onnx_path)
    model, checkpoint = _load_for_onnx(checkpoint_path, opset)
    return _save(_onnx_program(model, checkpoint, checkpoint_path, opset), checkpoint, checkpoint_path, onnx_path)


def _onnx_program(model: torch.nn.Module, checkpoint: dict, checkpoint_path: Path, opset: int):
    """torch's ONNXProgram of ``model``, traced on random clips (2, T, C, S, S) with the batch dynamic."""
    data = checkpoint["config"]["data"]
    example = torch.rand(2, data["max_frames"], checkpoint["channels"], data["img_size"],
                         data["img_size"])  # batch 2: not specialised
    return _export(model, (example,), ["clips"], ["logits"], ({0: torch.export.Dim("batch")},),
                   _what(checkpoint), checkpoint_path, opset)


def _what(checkpoint: dict) -> str:
    model_config = checkpoint["config"]["model"]
    return model_config["rnn_type"] if model_config["arch"] == "rnn" else model_config["arch"]


def _export(module: torch.nn.Module, example: tuple, input_names: list[str], output_names: list[str],
            dynamic_shapes: tuple, what: str, checkpoint_path: Path, opset: int):
    """torch.onnx.export(dynamo=True) of ``module`` on ``example``; ExportError (one line) when it fails."""
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.onnx.export(
                module, example, input_names=input_names, output_names=output_names,
                dynamic_shapes=dynamic_shapes, dynamo=True, opset_version=opset, verbose=False, report=False)
    except Exception as e:  # the exporter raises many types; one line with its first line
        first_line = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise ExportError(f"{checkpoint_path}: cannot export {what} to ONNX ({type(e).__name__}: "
                          f"{first_line})") from None


def _save(program, checkpoint: dict, checkpoint_path: Path, onnx_path: Path, **metadata: str) -> Path:
    """Write ``program`` with the config, classes and source checkpoint (and ``metadata``) in its metadata_props."""
    program.model.metadata_props["config"] = json.dumps(checkpoint["config"])
    program.model.metadata_props["classes"] = json.dumps(checkpoint["classes"])
    program.model.metadata_props["source_checkpoint"] = str(checkpoint_path)
    program.model.metadata_props.update(metadata)
    try:
        with atomic_path(onnx_path) as tmp:  # program.save takes a path, not a file object
            program.save(str(tmp))
    except OSError as e:  # disk full, permissions changed since the check
        raise ExportWriteError(f"{onnx_path}: could not be written ({e.strerror or e}); nothing was written") from None
    return onnx_path


def export_stream_onnx(checkpoint_path: str | Path, onnx_path: str | Path, opset: int = OPSET) -> Path:
    """Export the one streaming step of a recurrent checkpoint (:class:`src.inference.step_graph.StreamStep`)
    to ``onnx_path``: inputs ``frame`` (batch, C, S, S), ``rows`` (R,), ``window``, ``total``, ``seen``,
    ``count``, ``state0``... (R, ...), outputs ``logits`` (R, classes), ``window_out``, ``total_out``,
    ``state0_out``...; the batch and R dynamic. Its metadata adds ``stream_step`` ("1"), which
    :func:`src.inference.predictor.load_predictor` reads to stream through it (:class:`GraphStream`).

    Raises ExportError (one line) for a clip network (R(2+1)D: nothing to carry; its clip export streams by the
    window) and as :func:`export_onnx` does.
    """
    checkpoint_path, onnx_path = Path(checkpoint_path), Path(onnx_path)
    model, checkpoint = _load_for_onnx(checkpoint_path, opset)
    if not isinstance(model, ActionClassifier):
        raise ExportError(f"{checkpoint_path}: {_what(checkpoint)} is a clip network with no state to carry; export "
                          f"it without --stream (src.predict --stream over that .onnx recomputes the last window)")
    data = checkpoint["config"]["data"]
    example = step_example(model, checkpoint["channels"], data["img_size"])
    states = len(example) - len(STEP_INPUTS)
    batch, rows = torch.export.Dim("batch"), torch.export.Dim("rows")
    dynamic = ({0: batch}, *({0: rows} for _ in STEP_INPUTS[1:]), tuple({0: rows} for _ in range(states)))
    program = _export(StreamStep(model), example, [*STEP_INPUTS, *(f"state{i}" for i in range(states))],
                      [*STEP_OUTPUTS, *(f"state{i}_out" for i in range(states))], dynamic, _what(checkpoint),
                      checkpoint_path, opset)
    return _save(program, checkpoint, checkpoint_path, onnx_path, stream_step="1")


def _load_for_onnx(checkpoint_path: Path, opset: int) -> tuple[torch.nn.Module, dict]:
    """The model and checkpoint, after checking ``opset`` and onnxscript; ExportError (one line) otherwise."""
    opsets = supported_opsets()
    if opset not in opsets:
        raise ExportError(f"opset {opset}: out of range; the exporter writes opsets {opsets[0]} to {opsets[-1]} "
                          f"(default {OPSET})")
    try:
        model, checkpoint = load_model(checkpoint_path)
    except (FileNotFoundError, ValueError) as e:  # CheckpointReadError is a ValueError
        raise ExportError(_first_line(e, checkpoint_path)) from None
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError:
        raise ExportError("the ONNX exporter needs onnxscript: pip install -r requirements.txt") from None
    return model, checkpoint


def export_pth(checkpoint_path: str | Path, pth_path: str | Path) -> Path:
    """Write ``checkpoint_path``'s checkpoint without its training state to ``pth_path``
    (:func:`src.training.checkpoint.for_inference`), atomically, after checking that its model loads.

    Raises ExportError (one line) when ``pth_path`` is ``checkpoint_path`` itself, the checkpoint cannot be
    read, or ``pth_path`` cannot be written.
    """
    checkpoint_path, pth_path = Path(checkpoint_path), Path(pth_path)
    if pth_path.exists() and checkpoint_path.exists() and pth_path.samefile(checkpoint_path):
        raise ExportError(f"{pth_path}: is the checkpoint itself; give another path")
    try:
        _, checkpoint = load_model(checkpoint_path)
        return save_checkpoint(for_inference(checkpoint), pth_path)
    except (FileNotFoundError, ValueError, CheckpointWriteError) as e:  # CheckpointReadError is a ValueError
        raise ExportError(_first_line(e, checkpoint_path)) from None
