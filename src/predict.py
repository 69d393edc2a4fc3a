"""Predict the action of any video with a trained model: a checkpoint or its ONNX export.

    python -m src.predict --checkpoint models/GRUCell/best.pth clip.avi other.mp4 frames_dir/
                          [--json] [--timeline] [--gif out.gif] [--clips 10]

An input is a video file that PyAV decodes, or a folder of frames (images sorted by name).
It gets the preprocessing of training: grayscale or RGB as the model was trained
(the checkpoint's ``channels``; :func:`src.data.prepare.decode_video`),
resized to the checkpoint's ``data.img_size`` (:func:`src.data.prepare.resize_frames`), clips of
``data.max_frames`` frames taken every ``data.slicing_step``-th frame
(:class:`src.data.dataset.TemporalSampling`, the dataset's own rule: a window shorter than
one clip is padded by repeating its last frame taken).

- **Whole video**: the logits of ``--clips`` evenly spaced clips (the windows of
  ``KTHActionDataset``'s fixed clips over the whole video) are averaged, as the video
  accuracy of ``src.evaluate`` does; softmax gives the probability of every class. The class
  names are the model's: the checkpoint's ``classes``, or the ONNX file's ``classes`` metadata.
  ``--clips`` above the number of distinct windows of the video (``frames - span + 1``) is
  capped there, and the result's note says so.
- **--timeline**: one prediction per sliding window of one clip's span (``--stride``
  frames apart, default one span: back-to-back windows), with start and end in frames
  and seconds.
- **--gif**: the video (every ``slicing_step``-th frame, real speed) with each window's
  action and probability drawn on it.

Clips are made and run ``Predictor.batch_size`` at a time, so memory stays bounded whatever
``--clips`` or ``--stride`` asks for. A video whose decoder stops before the frame count its
header announces (a truncated file) is predicted from the frames read, with a note.

Output: a table, or with ``--json`` a list of ``{"input", "action" (the class predicted),
"probabilities": {class name: p}, "num_frames", "fps", "note"?, "timeline"?, "gif"?, "gif_error"?}`` or
``{"input", "error"}``. A bad input gives one line and the others go on; the exit code is 1
when any input failed. Bad arguments (``--clips 0``, a ``--device`` this machine lacks, a
``--gif`` path that cannot be written, a ``--checkpoint`` that is no checkpoint) stop
everything with one line before any input is read; with ``--json`` that line is also on
stdout as ``{"error": ...}``. A gif that fails to write at the end (disk full) keeps the
prediction, with ``gif_error``, and exit code 1.

From Python (src/inference/predictor.py)::

    from src.inference.predictor import load_predictor, predict_input
    predictor = load_predictor("models/GRUCell/best.pth")     # or "gru.onnx"
    result = predict_input(predictor, "person01_boxing_d2_uncomp.mp4", timeline=True)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from src.files import check_output_file
from src.inference.gif import gif_path
from src.inference.predictor import DEFAULT_CLIPS, Predictor, load_predictor, predict_input
from src.inference.video import VideoReadError
from src.training.device import select_device


def print_predictions(results: list[dict], classes: list[str], file=None) -> None:
    """One row per input (its class, then the probability of each of ``classes``, the model's class
    names); timelines below."""
    file = file or sys.stdout
    width = max([len("input")] + [len(Path(r["input"]).name) for r in results])
    column = max([12] + [len(name) for name in classes])
    print(f"{'input':<{width}}  {'action':<{column}}  " + "  ".join(f"{name:>{column}}" for name in classes),
          file=file)
    for r in results:
        name = Path(r["input"]).name
        if "error" in r:
            print(f"{name:<{width}}  error: {r['error']}", file=file)
            continue
        print(f"{name:<{width}}  {r['action']:<{column}}  "
              + "  ".join(f"{r['probabilities'][c]:>{column}.3f}" for c in classes), file=file)
    for r in results:
        if "timeline" not in r:
            continue
        print(f"\n{r['input']}: {len(r['timeline'])} windows ({r['num_frames']} frames, {r['fps']:g} fps)", file=file)
        print(f"  {'start s':>8} {'end s':>7} {'frames':>11}  {'action':<{column}} {'prob':>5}", file=file)
        for w in r["timeline"]:
            print(f"  {w['start_s']:8.2f} {w['end_s']:7.2f} {w['start_frame']:>5}-{w['end_frame']:<5}  "
                  f"{w['action']:<{column}} {w['probability']:5.2f}", file=file)


def check_gif_paths(gif: str | Path, inputs: list[str]) -> list[Path]:
    """The gif path of each input (:func:`gif_path`), refused before any work: one that cannot
    be written (:func:`src.files.check_output_file`), or two inputs that would write the same
    file. Raises ValueError, one line naming ``--gif`` and the path."""
    paths = [gif_path(gif, path, len(inputs) > 1) for path in inputs]
    for path in dict.fromkeys(paths):
        check_output_file(path, key="--gif")
    if len(set(paths)) < len(paths):
        twice = next(path for path in paths if paths.count(path) > 1)
        same = [name for name, path in zip(inputs, paths) if path == twice]
        raise ValueError(f"--gif {gif}: the inputs {same[0]} and {same[1]} would both write {twice}; predict them "
                         f"separately, each with its own --gif")
    return paths


def build_parser(as_json: bool) -> argparse.ArgumentParser:
    """The parser; with ``as_json`` its own errors (a missing or malformed argument) are JSON on stdout too."""
    parser = argparse.ArgumentParser(prog="python -m src.predict", description=__doc__.split("\n\n")[0])
    if as_json:
        usage_error = parser.error

        def json_error(message: str):
            print(json.dumps({"error": f"{parser.prog}: {message}"}))
            usage_error(message)
        parser.error = json_error
    parser.add_argument("inputs", nargs="+", help="video files (anything PyAV decodes) or folders of frames")
    parser.add_argument("--checkpoint", required=True, help="models/<experiment>/best.pth, or an .onnx of src.export")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--timeline", action="store_true", help="also one prediction per sliding window")
    parser.add_argument("--stride", type=int, default=None, help="frames between windows (default: one clip's span)")
    parser.add_argument("--gif", default=None, help="write the video with each window's prediction drawn on it")
    parser.add_argument("--clips", type=int, default=DEFAULT_CLIPS,
                        help=f"evenly spaced clips averaged per video (default {DEFAULT_CLIPS}; at most the "
                             f"number of distinct windows of the video)")
    parser.add_argument("--device", default="cpu", help="cpu (default), auto, or a device name (checkpoints only)")
    return parser


def predict_one(predictor: Predictor, path: str, gif: Path | None, args: argparse.Namespace) -> dict:
    """The result of one input (:func:`predict_input`), or ``{"input", "error"}``; its errors and note on
    stderr (an input's error in the table's row instead, without ``--json``)."""
    try:
        result = predict_input(predictor, path, clips=args.clips, timeline=args.timeline, stride=args.stride,
                               gif=gif)
    except VideoReadError as e:
        result = {"input": path, "error": str(e)}
    except Exception as e:  # anything else about this input: report it and go on with the others
        result = {"input": path, "error": f"{path}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
    if "error" in result and args.json:
        print(f"error: {result['error']}", file=sys.stderr)
    if "gif_error" in result:
        result["gif_error"] = f"--gif {result['gif_error']}"
        print(f"error: {result['gif_error']}", file=sys.stderr)
    if "note" in result:
        print(f"note: {path}: {result['note']}", file=sys.stderr)
    if not args.timeline:
        result.pop("timeline", None)
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    as_json = any(len(arg) > 2 and "--json".startswith(arg) for arg in argv)  # argparse takes prefixes too

    def fail(message: str, code: int = 1) -> int:
        """One line on stderr, and with --json the same as JSON on stdout."""
        if as_json:
            print(json.dumps({"error": message}, ensure_ascii=False))
        print(f"error: {message}", file=sys.stderr)
        return code

    parser = build_parser(as_json)
    args = parser.parse_args(argv)
    for flag, value in (("--clips", args.clips), ("--stride", args.stride)):
        if value is not None and value < 1:
            parser.error(f"argument {flag}: must be >= 1, got {value}")
    try:
        device = select_device(args.device, key="--device")
        gifs = check_gif_paths(args.gif, args.inputs) if args.gif else [None] * len(args.inputs)
        predictor = load_predictor(args.checkpoint, device)
    except ValueError as e:  # PredictorLoadError included
        return fail(str(e))

    results = [predict_one(predictor, path, gif, args) for path, gif in zip(args.inputs, gifs)]
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        print_predictions(results, predictor.classes)
        for r in results:
            if "gif" in r:
                print(f"gif written to {r['gif']}")
    return int(any("error" in r or "gif_error" in r for r in results))


if __name__ == "__main__":
    sys.exit(main())
