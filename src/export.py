"""Export a trained checkpoint to ONNX, with a dynamic batch size, or to a checkpoint for inference only.

    python -m src.export --checkpoint models/GRUCell/best.pth --onnx gru.onnx
    python -m src.export --checkpoint models/GRUCell_seed1/best.pth --pth gru_seed1.pth
    python -m src.export --checkpoint models/GRUCell/best.pth --onnx gru_step.onnx --stream

``--pth`` writes the checkpoint without what only resuming its training needs (a quarter of the size), which
src.evaluate, src.predict and this export read like the original; ``--onnx`` writes the model as an ONNX graph
with a dynamic batch size and the config and class names in its metadata, so that

    python -m src.predict --checkpoint gru.onnx clip.avi

works like the checkpoint itself. With ``--stream`` the ONNX graph is a recurrent model's one streaming step, its
state as explicit inputs and outputs, for ``python -m src.predict --checkpoint gru_step.onnx --stream SOURCE``
(equal to the checkpoint's stream; it predicts whole videos too). How: src/inference/export.py. An export that
cannot work stops with one line naming the reason: a bad ``--opset``, ``--onnx`` or ``--pth`` path (not
``.onnx``/``.pth``, a folder, under a file, not writable, the checkpoint itself) before the checkpoint is read, a
missing or foreign ``--checkpoint`` before the export. A failed export leaves nothing behind.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from src.files import check_output_file
from src.inference.export import (
    OPSET,
    ExportError,
    ExportWriteError,
    export_onnx,
    export_pth,
    export_stream_onnx,
    supported_opsets,
)


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse bad ``--onnx``, ``--opset`` and ``--pth`` before any checkpoint is read: ValueError, one line
    naming the flag."""
    if args.onnx:
        onnx_path = Path(args.onnx)
        opsets = supported_opsets()
        if args.opset not in opsets:
            raise ValueError(f"--opset {args.opset}: out of range; the exporter writes opsets {opsets[0]} to "
                             f"{opsets[-1]} (default {OPSET})")
        if onnx_path.suffix.lower() != ".onnx":
            raise ValueError(f"--onnx {onnx_path}: the name must end in .onnx (src.predict tells an ONNX model by "
                             f"it); e.g. --onnx {onnx_path.with_suffix('.onnx')}")
        check_output_file(onnx_path, key="--onnx")
    if args.pth:
        checkpoint, pth_path = Path(args.checkpoint), Path(args.pth)
        if pth_path.suffix.lower() != ".pth":
            raise ValueError(f"--pth {pth_path}: the name must end in .pth; e.g. --pth {pth_path.with_suffix('.pth')}")
        if pth_path.exists() and checkpoint.exists() and pth_path.samefile(checkpoint):
            raise ValueError(f"--pth {pth_path}: is the --checkpoint itself; give another path")
        check_output_file(pth_path, key="--pth")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="e.g. models/GRUCell/best.pth")
    parser.add_argument("--onnx", help="the ONNX file to write, e.g. gru.onnx")
    parser.add_argument("--pth", help="a checkpoint for inference only to write (no optimizer or RNG states), "
                                      "e.g. models/GRUCell/best.pth")
    parser.add_argument("--opset", type=int, default=OPSET, help=f"ONNX opset (default {OPSET})")
    parser.add_argument("--stream", action="store_true",
                        help="with --onnx: export a recurrent model's one streaming step, its state as inputs and "
                             "outputs (for src.predict --stream)")
    args = parser.parse_args(argv)
    if not (args.onnx or args.pth):
        parser.error("give --onnx FILE.onnx, --pth FILE.pth, or both")
    if args.stream and not args.onnx:
        parser.error("argument --stream: goes with --onnx FILE.onnx")
    try:
        check_arguments(args)
        if args.pth:
            path = export_pth(args.checkpoint, args.pth)
            print(f"{args.checkpoint} -> {path} ({path.stat().st_size / 1e6:.1f} MB, for inference; "
                  f"use it with: python -m src.predict --checkpoint {shlex.quote(str(path))} VIDEO)")
        if args.onnx:
            try:
                export = export_stream_onnx if args.stream else export_onnx
                path = export(args.checkpoint, args.onnx, opset=args.opset)
            except ExportWriteError as e:  # it names the file: name the flag too
                raise ExportError(f"--onnx {e}") from None
            what, use = ("one streaming step, the state explicit", "--stream SOURCE") if args.stream else \
                ("dynamic batch size", "VIDEO")
            print(f"{args.checkpoint} -> {path} ({what}; use it with: "
                  f"python -m src.predict --checkpoint {shlex.quote(str(path))} {use})")
    except (ExportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
