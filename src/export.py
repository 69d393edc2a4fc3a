"""Export a trained checkpoint to ONNX, with a dynamic batch size, or to a checkpoint for inference only.

    python -m src.export --checkpoint models/GRUCell/best.pth --onnx gru.onnx
    python -m src.export --checkpoint models/GRUCell_seed1/best.pth --pth gru_seed1.pth

``--pth`` writes the checkpoint without what only resuming its training needs
(:func:`src.training.checkpoint.for_inference`: a quarter of the size), which load_model, src.evaluate,
src.predict and this export read like the original: the model of record committed in git is made so.

The model (any rnn_type, the own cells included, and the R(2+1)D networks) is exported in
eval mode with torch's dynamo-based exporter (``torch.onnx.export(..., dynamo=True)``,
which needs ``onnxscript``): it traces the model with ``torch.export``, and so follows the
Python loops over time and the forward of OwnLSTM/OwnGRU's ``autograd.Function`` as plain
tensor operations. (The older TorchScript exporter, ``dynamo=False``, cannot: it fails on
the encoder's ``adaptive_avg_pool2d`` once the batch size is dynamic.)

The graph: input ``clips`` float32 (batch, T, C, S, S) in [0, 1], output ``logits``
(batch, number of classes). T and S are fixed to the config's ``data.max_frames`` and
``data.img_size``, C to the checkpoint's ``channels`` (1 grayscale, 3 RGB). The file's
``metadata_props`` hold ``config`` (the experiment config as JSON, from which ``src.predict``
takes the preprocessing) and ``classes`` (the checkpoint's class names, in order, as JSON; also
under ``actions``, the key older readers know), so

    python -m src.predict --checkpoint gru.onnx clip.avi

works like the checkpoint itself. An export that cannot work stops with one line naming
the reason: a bad ``--opset`` or ``--onnx`` path (not ``.onnx``, a folder, under a file, not
writable) before the checkpoint is read, a missing or foreign ``--checkpoint`` before the
export. The file is written under a temporary name and renamed; a failed export leaves
nothing behind.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import torch

from src.files import atomic_path, check_output_file
from src.training.checkpoint import CheckpointWriteError, for_inference, load_model, save_checkpoint

OPSET = 18  # the default, and the lowest the dynamo exporter writes (it cannot convert its graphs lower)


class ExportError(RuntimeError):
    """An export that cannot be done; the message is one line naming the file and the reason."""


def export_onnx(checkpoint_path: str | Path, onnx_path: str | Path, opset: int = OPSET) -> Path:
    """Export the model of ``checkpoint_path`` to ``onnx_path`` (see the module docstring).

    Raises ExportError (one line) when ``opset`` is out of range, ``onnx_path`` cannot be
    written, the checkpoint cannot be read, onnxscript is missing, or the exporter cannot
    express the model.
    """
    import onnx

    checkpoint_path, onnx_path = Path(checkpoint_path), Path(onnx_path)
    newest = onnx.defs.onnx_opset_version()
    if not OPSET <= opset <= newest:
        raise ExportError(f"--opset {opset}: out of range; the exporter writes opsets {OPSET} to {newest} "
                          f"(default {OPSET})")
    if onnx_path.suffix.lower() != ".onnx":
        raise ExportError(f"--onnx {onnx_path}: the name must end in .onnx (src.predict tells an ONNX model by it); "
                          f"e.g. --onnx {onnx_path.with_suffix('.onnx')}")
    try:
        check_output_file(onnx_path, key="--onnx")
        model, checkpoint = load_model(checkpoint_path)
    except (FileNotFoundError, ValueError) as e:  # CheckpointReadError is a ValueError
        raise ExportError(str(e).splitlines()[0] if str(e) else f"{checkpoint_path}: {e!r}") from None
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError:
        raise ExportError("the ONNX exporter needs onnxscript: pip install -r requirements.txt") from None
    config = checkpoint["config"]
    data, model_config = config["data"], config["model"]
    what = model_config["rnn_type"] if model_config["arch"] == "rnn" else model_config["arch"]
    example = torch.rand(2, data["max_frames"], checkpoint["channels"], data["img_size"],
                         data["img_size"])  # batch 2: not specialised
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, (example,), input_names=["clips"], output_names=["logits"],
                dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, opset_version=opset,
                verbose=False, report=False)
    except Exception as e:  # the exporter raises many types; one line with its first line
        first_line = next((line for line in str(e).splitlines() if line.strip()), type(e).__name__)
        raise ExportError(f"{checkpoint_path}: cannot export {what} to ONNX ({type(e).__name__}: "
                          f"{first_line})") from None
    program.model.metadata_props["config"] = json.dumps(config)
    program.model.metadata_props["classes"] = json.dumps(checkpoint["classes"])
    program.model.metadata_props["actions"] = program.model.metadata_props["classes"]  # for readers of older code
    program.model.metadata_props["source_checkpoint"] = str(checkpoint_path)

    try:
        with atomic_path(onnx_path) as tmp:  # program.save takes a path, not a file object
            program.save(str(tmp))
    except OSError as e:  # disk full, permissions changed since the check
        raise ExportError(f"--onnx {onnx_path}: could not be written ({e.strerror or e}); nothing was "
                          f"written") from None
    return onnx_path


def export_pth(checkpoint_path: str | Path, pth_path: str | Path) -> Path:
    """Write ``checkpoint_path``'s checkpoint without its training state to ``pth_path``
    (:func:`src.training.checkpoint.for_inference`), atomically, after checking that its model loads.

    Raises ExportError (one line) when ``pth_path`` is not a ``.pth`` file this process can write, is
    ``checkpoint_path`` itself, or the checkpoint cannot be read.
    """
    checkpoint_path, pth_path = Path(checkpoint_path), Path(pth_path)
    if pth_path.suffix.lower() != ".pth":
        raise ExportError(f"--pth {pth_path}: the name must end in .pth; e.g. --pth {pth_path.with_suffix('.pth')}")
    if pth_path.exists() and checkpoint_path.exists() and pth_path.samefile(checkpoint_path):
        raise ExportError(f"--pth {pth_path}: is the --checkpoint itself; give another path")
    try:
        check_output_file(pth_path, key="--pth")
        _, checkpoint = load_model(checkpoint_path)
        return save_checkpoint(for_inference(checkpoint), pth_path)
    except (FileNotFoundError, ValueError, CheckpointWriteError) as e:  # CheckpointReadError is a ValueError
        raise ExportError(str(e).splitlines()[0] if str(e) else f"{checkpoint_path}: {e!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="e.g. models/GRUCell/best.pth")
    parser.add_argument("--onnx", help="the ONNX file to write, e.g. gru.onnx")
    parser.add_argument("--pth", help="a checkpoint for inference only to write (no optimizer or RNG states), "
                                      "e.g. models/GRUCell/best.pth")
    parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    args = parser.parse_args(argv)
    if not (args.onnx or args.pth):
        parser.error("give --onnx FILE.onnx, --pth FILE.pth, or both")
    try:
        if args.pth:
            path = export_pth(args.checkpoint, args.pth)
            print(f"{args.checkpoint} -> {path} ({path.stat().st_size / 1e6:.1f} MB, for inference; "
                  f"use it with: python -m src.predict --checkpoint {path} VIDEO)")
        if args.onnx:
            path = export_onnx(args.checkpoint, args.onnx, opset=args.opset)
            print(f"{args.checkpoint} -> {path} (dynamic batch size; "
                  f"use it with: python -m src.predict --checkpoint {path} VIDEO)")
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
