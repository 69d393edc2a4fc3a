"""Predict the action of any video with a trained model: a checkpoint or its ONNX export.

    python -m src.predict --checkpoint models/GRUCell/best.pth clip.avi other.mp4 frames_dir/
                          [--json] [--timeline] [--gif out.gif] [--gif-size 64] [--clips 10]
    python -m src.predict --checkpoint models/GRUCell/best.pth --stream SOURCE [--rule window] [--every N]
                          [--timeout 10] [--format mpegts] [--follow] [--gif out.gif] [--video out.mp4]

An input is a video file that PyAV decodes, or a folder of frames (images sorted by name).
It gets the preprocessing of training: grayscale or RGB as the model was trained
(the checkpoint's ``channels``), each frame resized as it is decoded (:mod:`src.inference.stream`; memory
O(frames x img_size²)) to the checkpoint's ``data.img_size`` (:func:`src.data.prepare.resize_frames`), clips of
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
- **--gif**: the video (every ``slicing_step``-th frame, real speed, at the model's input size or
  ``--gif-size``) with each window's action and probability drawn on it.
- **--stream SOURCE** (a file, a frame folder, ``-`` for stdin, a named pipe, ``/dev/videoN``, a URL): the
  video as it arrives, every ``slicing_step``-th frame, one JSON line on stdout after every model step
  (``{"frame", "time_s", "class", "probabilities", "answer_frames", "step_ms", "latency_ms"}``), messages on
  stderr. A recurrent model carries its state under ``--rule`` (:mod:`src.nets.streaming`); R(2+1)D recomputes
  its last window. ``--gif``/``--video`` draw the running answer. A stall (``--timeout``), a broken stream, a
  missing camera or a URL that does not answer end it with one error line and exit code 1; a stream that ends
  before its header says, or changes its frame size, gets a note and goes on. docs/inference.md.

Clips are made and run ``Predictor.batch_size`` at a time, so memory stays bounded whatever
``--clips`` or ``--stride`` asks for. A video whose decoder stops before the frame count its
header announces (a truncated file) is predicted from the frames read, with a note.

Output: a table, or with ``--json`` a list of ``{"input", "action" (the class predicted),
"probabilities": {class name: p}, "num_frames", "fps", "note"?, "timeline"?, "gif"?, "gif_error"?}`` or
``{"input", "error"}``; the table and the lines on stderr show a path holding a newline (or another character that
is not printable) escaped, ``a\\nb.avi``, the JSON as it is. A bad input gives one line and the others go on; the
exit code is 1 when any input failed. Bad arguments (``--clips 0``, a ``--device`` this machine lacks, a
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
import contextlib
import json
import logging
import sys
from pathlib import Path

from src.files import check_output_file
from src.inference.gif import LabelledWriter, gif_path
from src.inference.predictor import (
    DEFAULT_CLIPS,
    Predictor,
    describe_stream,
    load_predictor,
    predict_input,
    stream_input,
)
from src.inference.stream import STALL_TIMEOUT, FrameReader
from src.inference.video import VideoReadError
from src.nets.streaming import DEFAULT_RULE, RULES
from src.training.device import select_device


def printable(text: str) -> str:
    """``text`` with each character that is not printable (a newline, a tab, an escape) written as Python's repr
    writes it (``\\n``, ``\\t``, ``\\x1b``), so that a path holding one stays on its row of the table or its one
    line; the JSON keeps the real string."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class _PrintableFormatter(logging.Formatter):
    """The library's notes on one line each: the message :func:`printable` (a source named with a newline)."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def print_predictions(results: list[dict], classes: list[str], file=None) -> None:
    """One row per input (its class, then the probability of each of ``classes``, the model's class
    names); timelines below. Paths are shown :func:`printable`."""
    file = file or sys.stdout
    width = max([len("input")] + [len(printable(Path(r["input"]).name)) for r in results])
    column = max([12] + [len(name) for name in classes])
    print(f"{'input':<{width}}  {'action':<{column}}  " + "  ".join(f"{name:>{column}}" for name in classes),
          file=file)
    for r in results:
        name = printable(Path(r["input"]).name)
        if "error" in r:
            print(f"{name:<{width}}  error: {printable(r['error'])}", file=file)
            continue
        print(f"{name:<{width}}  {r['action']:<{column}}  "
              + "  ".join(f"{r['probabilities'][c]:>{column}.3f}" for c in classes), file=file)
    for r in results:
        if "timeline" not in r:
            continue
        print(f"\n{printable(r['input'])}: {len(r['timeline'])} windows ({r['num_frames']} frames, {r['fps']:g} fps)",
              file=file)
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
    parser.add_argument("inputs", nargs="*", help="video files (anything PyAV decodes) or folders of frames")
    parser.add_argument("--checkpoint", required=True, help="models/<experiment>/best.pth, or an .onnx of src.export")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--timeline", action="store_true", help="also one prediction per sliding window")
    parser.add_argument("--stride", type=int, default=None, help="frames between windows (default: one clip's span)")
    parser.add_argument("--gif", default=None, help="write the video with each window's prediction drawn on it")
    parser.add_argument("--clips", type=int, default=DEFAULT_CLIPS,
                        help=f"evenly spaced clips averaged per video (default {DEFAULT_CLIPS}; at most the "
                             f"number of distinct windows of the video)")
    parser.add_argument("--device", default="cpu", help="cpu (default), auto, or a device name (checkpoints only)")
    parser.add_argument("--gif-size", type=int, default=None,
                        help="side in pixels of the frames of --gif and --video (default: the model's img_size)")
    stream = parser.add_argument_group("streaming (--stream SOURCE: one JSON line per model step on stdout)")
    stream.add_argument("--stream", metavar="SOURCE", default=None,
                        help="predict as the video arrives: a file, a folder of frames, '-' (stdin), a named pipe, "
                             "/dev/videoN, or a URL (rtsp://, http://)")
    stream.add_argument("--rule", choices=RULES, default=DEFAULT_RULE,
                        help=f"the state rule of a recurrent model for streams longer than a clip (default "
                             f"{DEFAULT_RULE}: 2 staggered copies of the state)")
    stream.add_argument("--every", type=int, default=None,
                        help="frames taken between two resets of one copy of the state (default: max_frames)")
    stream.add_argument("--timeout", type=float, default=STALL_TIMEOUT,
                        help=f"seconds without a frame before the stream counts as stalled (default {STALL_TIMEOUT:g})")
    stream.add_argument("--format", default=None,
                        help="the container format of the source, when it cannot be guessed (e.g. mpegts on stdin)")
    stream.add_argument("--follow", action="store_true",
                        help="a file still being written: wait at its end for more, until --timeout")
    stream.add_argument("--video", default=None, help="write the stream with its running answer drawn on it (.mp4)")
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
        print(f"error: {printable(result['error'])}", file=sys.stderr)
    if "gif_error" in result:
        result["gif_error"] = f"--gif {result['gif_error']}"
        print(f"error: {printable(result['gif_error'])}", file=sys.stderr)
    if "note" in result:
        print(f"note: {printable(path)}: {printable(result['note'])}", file=sys.stderr)
    if not args.timeline:
        result.pop("timeline", None)
    return result


def check_numbers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """argparse's error (exit 2) for numbers out of range and flags that do not go together."""
    for flag, value in (("--clips", args.clips), ("--stride", args.stride), ("--every", args.every),
                        ("--gif-size", args.gif_size)):
        if value is not None and value < 1:
            parser.error(f"argument {flag}: must be >= 1, got {value}")
    if args.timeout <= 0:
        parser.error(f"argument --timeout: must be > 0 seconds, got {args.timeout:g}")
    if args.stream is not None and args.inputs:
        parser.error(f"give the inputs ({args.inputs[0]}, ...) or --stream SOURCE, not both")
    if args.stream is None and not args.inputs:
        parser.error("the following arguments are required: inputs (or --stream SOURCE)")
    if args.stream is None and args.video:
        parser.error("argument --video: goes with --stream SOURCE (for whole videos, use --gif)")


def run_stream(predictor: Predictor, args: argparse.Namespace) -> int:
    """``--stream``: one JSON line per model step on stdout, messages on stderr; 1 when the stream stopped on
    an error (it could not be opened, it stalled, it broke off), 0 otherwise (its end, or Ctrl-C)."""
    log = logging.getLogger("src")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_PrintableFormatter("note: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    drawing = bool(args.gif or args.video)
    size = args.gif_size or predictor.img_size
    reader = FrameReader(args.stream, predictor.img_size, predictor.channels, step=predictor.slicing_step,
                         fmt=args.format, timeout=args.timeout, follow=args.follow,
                         display_size=size if drawing else None)
    stream = predictor.open_stream(args.rule, args.every)
    how = describe_stream(stream)
    if how.startswith("recomputing") and (args.every is not None or args.rule != DEFAULT_RULE):
        print("note: --rule and --every apply to recurrent models; this one has no state to carry", file=sys.stderr)
    error, answers = None, 0
    with contextlib.ExitStack() as writers:
        try:
            for answer, frame in stream_input(predictor, reader, stream=stream):
                if answers == 0:
                    print(f"streaming {reader.describe()} into {Path(predictor.source).name}, {how}", file=sys.stderr)
                    rate = reader.fps / predictor.slicing_step
                    drawn = [writers.enter_context(LabelledWriter(path, rate, size)) for path in (args.gif, args.video)
                             if path]
                print(json.dumps(answer, ensure_ascii=False), flush=True)
                for writer in drawn:
                    writer.add(frame.display, answer["class"], answer["probabilities"][answer["class"]],
                               answer["time_s"])
                answers += 1
        except VideoReadError as e:  # StreamStalled, StreamBroken included
            error = str(e)
        except KeyboardInterrupt:
            print(f"note: {reader.name}: interrupted; stopped", file=sys.stderr)
        except BrokenPipeError:  # stdout's reader left (| head): stop quietly
            sys.stdout = None
            return 0
    if reader.ended_early:
        print(f"note: {reader.name}: the stream ended after {reader.frames_read} of the {reader.announced} frames its "
              f"header announces (a cut or damaged file?)", file=sys.stderr)
    if error:
        print(f"error: {printable(error)}", file=sys.stderr)
        if not answers:  # it never started: the one line says it all
            return 1
    written = [f"{flag} {path}" for flag, path in (("--gif", args.gif), ("--video", args.video)) if path and answers]
    print(f"{reader.name}: {reader.frames_read} frames read, {answers} answers"
          + (f"; written: {', '.join(written)}" if written else ""), file=sys.stderr)
    return int(error is not None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    as_json = any(len(arg) > 2 and "--json".startswith(arg) for arg in argv)  # argparse takes prefixes too

    def fail(message: str, code: int = 1) -> int:
        """One line on stderr, and with --json the same as JSON on stdout."""
        if as_json:
            print(json.dumps({"error": message}, ensure_ascii=False))
        print(f"error: {printable(message)}", file=sys.stderr)
        return code

    parser = build_parser(as_json)
    args = parser.parse_args(argv)
    check_numbers(parser, args)
    try:
        device = select_device(args.device, key="--device")
        if args.stream is not None:
            for flag, path in (("--gif", args.gif), ("--video", args.video)):
                if path:
                    check_output_file(path, key=flag)
            return run_stream(load_predictor(args.checkpoint, device), args)
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
                print(f"gif written to {printable(r['gif'])}")
    return int(any("error" in r or "gif_error" in r for r in results))


if __name__ == "__main__":
    sys.exit(main())
