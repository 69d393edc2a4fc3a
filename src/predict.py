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

From Python::

    predictor = load_predictor("models/GRUCell/best.pth")     # or "gru.onnx"
    result = predict_input(predictor, "person01_boxing_d2_uncomp.mp4", timeline=True)
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import numpy as np
import torch
from PIL import Image, ImageDraw
from torchvision.transforms import v2

from src.data.dataset import TemporalSampling, evenly_spaced
from src.data.prepare import decode_video, resize_frames
from src.files import atomic_path, check_output_file

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif")
DEFAULT_FPS = 25.0  # KTH's frame rate; used for a folder of frames unless --fps says otherwise
DEFAULT_CLIPS = 10  # evenly spaced clips averaged for the whole-video prediction


class PredictError(ValueError):
    """A bad model or input; the message is one line naming the file."""


@dataclass
class Predictor:
    """A model ready for clips: ``logits_of(clips float32 (N, T, channels, S, S) in [0, 1]) -> (N, C)``,
    its class names (C, label i is ``classes[i]``), the channels of its frames (1 grayscale, 3 RGB),
    the preprocessing settings of its config, and where it came from."""

    logits_of: Callable[[torch.Tensor], torch.Tensor]
    classes: list[str]
    channels: int
    img_size: int
    max_frames: int
    slicing_step: int
    source: str
    batch_size: int = 32

    @property
    def sampling(self) -> TemporalSampling:
        """The frames of a fixed clip, as the dataset takes them: ``max_frames``, every ``slicing_step``-th."""
        return TemporalSampling(self.slicing_step, self.max_frames)

    @property
    def span(self) -> int:
        """Frames of the video one clip covers: ``(max_frames - 1) * slicing_step + 1``."""
        return self.sampling.span

    def logits(self, frames: torch.Tensor, starts: list[int]) -> torch.Tensor:
        """The logits (N, C) float32 of the clips of uint8 ``frames`` (T, channels, S, S) that start at
        ``starts`` (N), the clips made and run ``batch_size`` at a time (:func:`make_clips`)."""
        return torch.cat([self.logits_of(make_clips(frames, starts[i:i + self.batch_size], self))
                          for i in range(0, len(starts), self.batch_size)])


def _predictor_from_config(config: dict, logits_of, classes: list[str], channels: int, source: str) -> Predictor:
    data = config.get("data") if isinstance(config, dict) else None
    if not isinstance(data, dict) or not {"img_size", "max_frames", "slicing_step"} <= set(data):
        raise PredictError(f"{source}: its config lacks data.img_size, data.max_frames or data.slicing_step; give a "
                           f"checkpoint of 'python -m src.train' or its ONNX export")
    return Predictor(logits_of, classes=list(classes), channels=int(channels), img_size=int(data["img_size"]),
                     max_frames=int(data["max_frames"]), slicing_step=int(data["slicing_step"]), source=source)


def load_predictor(path: str | Path, device: str | torch.device = "cpu") -> Predictor:
    """A checkpoint of ``src.train`` (``.pth``) or an ONNX file of ``src.export`` (``.onnx``).

    Raises PredictError (one line naming the file) when it is neither, and ValueError when
    ``device`` is not a device of this machine (:func:`src.training.device.select_device`).
    """
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise PredictError(f"{path}: no such file; give an ONNX file of 'python -m src.export' "
                               f"or a checkpoint (models/<experiment>/best.pth)")
        return _load_onnx(path)
    from src.training.checkpoint import CheckpointReadError, load_model
    from src.training.device import select_device

    device = select_device(device)
    try:
        model, checkpoint = load_model(path, map_location=device)
    except (FileNotFoundError, CheckpointReadError) as e:
        raise PredictError(str(e).splitlines()[0]) from None

    @torch.inference_mode()
    def logits_of(clips: torch.Tensor) -> torch.Tensor:
        return model(clips.to(device)).float().cpu()

    return _predictor_from_config(checkpoint["config"], logits_of, checkpoint["classes"], checkpoint["channels"],
                                  str(path))


def _load_onnx(path: Path) -> Predictor:
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise PredictError(f"{path}: not a readable ONNX model ({str(e).splitlines()[0]})") from None
    metadata = session.get_modelmeta().custom_metadata_map
    if "config" not in metadata:
        raise PredictError(f"{path}: holds no 'config' metadata (img_size, max_frames, slicing_step); "
                           f"export it with 'python -m src.export --checkpoint CKPT --onnx {path.name}'")
    names = metadata.get("classes", metadata.get("actions"))  # "actions": exports of older code
    if names is None:
        raise PredictError(f"{path}: holds no 'classes' metadata (the class names); export it again with "
                           f"'python -m src.export --checkpoint CKPT --onnx {path.name}'")
    clips_input = session.get_inputs()[0]
    channels = clips_input.shape[2]  # clips (batch, T, channels, S, S): only the batch is dynamic

    def logits_of(clips: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {clips_input.name: clips.numpy()})[0])

    return _predictor_from_config(json.loads(metadata["config"]), logits_of, json.loads(names), channels, str(path))


# ----------------------------------------------------------------------------- frames

def video_header(path: str | Path) -> tuple[float, int | None]:
    """What the header of the first video stream says: frames per second (``DEFAULT_FPS`` when
    it does not say) and the number of frames (its frame count, else its duration times its
    rate; None when it says neither)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        num_frames = stream.frames or None
        if num_frames is None and rate and stream.duration and stream.time_base:
            num_frames = round(stream.duration * stream.time_base * rate)
    return (float(Fraction(rate)) if rate else DEFAULT_FPS), num_frames


def read_frames(path: str | Path, channels: int = 1) -> tuple[np.ndarray, float, int | None]:
    """The frames of a video file or a folder of images, uint8 (T, H, W) grayscale for ``channels``
    1, (T, H, W, 3) RGB for 3; the fps, and the number of frames the video's header announces
    (None for a folder, or a header that does not say): more than T when the decoder stopped early
    (a truncated file)."""
    path = Path(path)
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise PredictError(f"{path}: a folder without image files ({', '.join(IMAGE_SUFFIXES)})")
        frames = [np.asarray(Image.open(p).convert("RGB" if channels == 3 else "L")) for p in images]
        if len({f.shape for f in frames}) > 1:
            raise PredictError(f"{path}: the images differ in size; give frames of one video")
        return np.stack(frames), DEFAULT_FPS, None
    if not path.is_file():
        raise PredictError(f"{path}: no such file or folder")
    if path.stat().st_size == 0:
        raise PredictError(f"{path}: empty file")
    try:
        return decode_video(path, channels), *video_header(path)
    except (av.FFmpegError, IndexError, ValueError) as e:
        reason = "no video stream" if isinstance(e, IndexError) else (getattr(e, "strerror", None) or str(e))
        reason = str(reason).removeprefix(f"{path}: ")
        raise PredictError(f"{path}: not a readable video ({reason})") from None


def evenly_spaced_starts(num_frames: int, span: int, count: int) -> list[int]:
    """Starts of ``count`` windows of ``span`` frames spread over ``num_frames``: the formula of
    ``KTHActionDataset``'s fixed clips (centred; one clip takes the middle) over one segment."""
    return evenly_spaced(max(num_frames - span, 0) + 1, count)


def sliding_starts(num_frames: int, span: int, stride: int) -> list[int]:
    """Starts of windows of ``span`` frames every ``stride`` frames; the last one ends at the video's end."""
    starts = list(range(0, max(num_frames - span, 0) + 1, stride))
    if starts[-1] + span < num_frames:
        starts.append(num_frames - span)
    return starts


def make_clips(frames: torch.Tensor, starts: list[int], predictor: Predictor) -> torch.Tensor:
    """The clips starting at ``starts`` (N): uint8 frames (T, C, S, S) -> float32 (N, max_frames, C, S, S).
    Memory grows with N: :meth:`Predictor.logits` calls it one batch at a time."""
    sampling = predictor.sampling
    clips = torch.stack([sampling(frames[start:start + sampling.span]) for start in starts])  # uint8
    return v2.functional.to_dtype(clips, torch.float32, scale=True)


# ----------------------------------------------------------------------------- prediction

def predict_input(predictor: Predictor, path: str | Path, clips: int = DEFAULT_CLIPS, timeline: bool = False,
                  stride: int | None = None, gif: str | Path | None = None) -> dict:
    """Predict one video file or frame folder.

    Returns ``{"input", "action" (the most probable class), "probabilities": {class name: p}, "num_frames",
    "fps"}``, plus
    ``"note"`` (one line; its parts joined by '; ') when the decoder read fewer frames than the
    video's header announces, when ``clips`` was capped at the number of distinct windows, or
    when the video is shorter than one clip (padded), ``"timeline"`` (a list of
    ``{"start_frame", "end_frame", "start_s", "end_s", "action", "probability"}``; frames
    0-based, end exclusive) when asked or when ``gif`` is given, and ``"gif"`` (its path), or
    ``"gif_error"`` (one line naming it) when it could not be written.
    Raises PredictError for an input that cannot be read.
    """
    raw, fps, announced = read_frames(path, predictor.channels)              # uint8 (T, H, W) or (T, H, W, 3)
    frames = torch.from_numpy(resize_frames(raw, predictor.img_size))
    frames = frames.unsqueeze(1) if frames.dim() == 3 else frames.permute(0, 3, 1, 2)  # (T, C, S, S)
    num_frames = len(frames)
    notes = []
    if announced is not None and num_frames < announced:
        notes.append(f"the decoder read {num_frames} of the {announced} frames {Path(path).name} announces "
                     f"(a truncated or damaged file?); predicted from those")
    windows = max(num_frames - predictor.span, 0) + 1  # distinct clip windows
    if clips > windows:
        notes.append(f"--clips {clips} capped at {windows}, the number of distinct {predictor.span}-frame windows "
                     f"of its {num_frames} frames")
        clips = windows
    starts = evenly_spaced_starts(num_frames, predictor.span, clips)
    probabilities = predictor.logits(frames, starts).mean(0).softmax(0)       # (C,)
    classes = predictor.classes
    result = {"input": str(path), "action": classes[int(probabilities.argmax())],
              "probabilities": {name: round(float(p), 4) for name, p in zip(classes, probabilities, strict=True)},
              "num_frames": num_frames, "fps": fps}
    if num_frames < predictor.span:
        notes.append(f"only {num_frames} frames, shorter than one clip ({predictor.max_frames} frames, every "
                     f"{predictor.slicing_step}th: {predictor.span} frames); padded by repeating the last frame")
    if notes:
        result["note"] = "; ".join(notes)
    if timeline or gif is not None:
        window_starts = sliding_starts(num_frames, predictor.span, stride or predictor.span)
        window_probs = predictor.logits(frames, window_starts).softmax(1)  # (windows, C)
        result["timeline"] = []
        for start, probs in zip(window_starts, window_probs):
            end = min(start + predictor.span, num_frames)
            result["timeline"].append({
                "start_frame": start, "end_frame": end, "start_s": round(start / fps, 3), "end_s": round(end / fps, 3),
                "action": classes[int(probs.argmax())], "probability": round(float(probs.max()), 4)})
    if gif is not None:
        try:
            result["gif"] = str(write_gif(raw, fps, result["timeline"], gif, every=predictor.slicing_step))
        except OSError as e:  # disk full, or the folder changed since main checked it: the prediction stays
            result["gif_error"] = f"--gif {gif}: could not be written ({e.strerror or e}); the prediction is kept"
    return result


def write_gif(frames: np.ndarray, fps: float, timeline: list[dict], path: str | Path, every: int = 1,
              scale: int = 2) -> Path:
    """Write uint8 (T, H, W) grayscale or (T, H, W, 3) RGB ``frames`` (every ``every``-th, enlarged
    ``scale`` times, at real speed) as an animated GIF with each frame's window class and probability
    on a band above it. Atomic (:func:`src.files.atomic_path`)."""
    path = Path(path)
    height, width = frames.shape[1:3]
    mode = "RGB" if frames.ndim == 4 else "L"
    band = 14
    images = []
    for t in range(0, len(frames), every):
        window = next(w for w in reversed(timeline) if w["start_frame"] <= t) if t >= timeline[0]["start_frame"] \
            else timeline[0]
        canvas = Image.new(mode, (width * scale, height * scale + band), "black")
        canvas.paste(Image.fromarray(frames[t]).resize((width * scale, height * scale)), (0, band))
        ImageDraw.Draw(canvas).text((3, 1), f"{window['action']} {window['probability']:.0%}  "
                                            f"{t / fps:5.1f} s", fill="white")
        images.append(canvas)
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=round(1000 * every / fps), loop=0)
    return path


def gif_path(gif: str | Path, input_path: str | Path, several: bool) -> Path:
    """``out.gif`` for one input; ``out_<input name>.gif`` for each of several."""
    gif = Path(gif)
    return gif.with_name(f"{gif.stem}_{Path(input_path).stem}{gif.suffix or '.gif'}") if several else gif


# ----------------------------------------------------------------------------- output

def print_table(results: list[dict], classes: list[str], file=None) -> None:
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    as_json = any(len(arg) > 2 and "--json".startswith(arg) for arg in argv)  # argparse takes prefixes too

    def fail(message: str, code: int = 1) -> int:
        """One line on stderr, and with --json the same as JSON on stdout."""
        if as_json:
            print(json.dumps({"error": message}, ensure_ascii=False))
        print(f"error: {message}", file=sys.stderr)
        return code

    parser = argparse.ArgumentParser(prog="python -m src.predict", description=__doc__.split("\n\n")[0])
    if as_json:  # argparse's own errors (a missing or malformed argument) as JSON too
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
    args = parser.parse_args(argv)
    for flag, value in (("--clips", args.clips), ("--stride", args.stride)):
        if value is not None and value < 1:
            parser.error(f"argument {flag}: must be >= 1, got {value}")
    from src.training.device import select_device

    try:
        device = select_device(args.device, key="--device")
        gifs = check_gif_paths(args.gif, args.inputs) if args.gif else [None] * len(args.inputs)
        predictor = load_predictor(args.checkpoint, device)
    except ValueError as e:  # PredictError included
        return fail(str(e))

    results = []
    for path, gif in zip(args.inputs, gifs):
        try:
            result = predict_input(predictor, path, clips=args.clips, timeline=args.timeline, stride=args.stride,
                                   gif=gif)
        except PredictError as e:
            result = {"input": path, "error": str(e)}
        except Exception as e:  # anything else about this input: report it and go on with the others
            result = {"input": path, "error": f"{path}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
        if "error" in result and args.json:  # the table shows it in its row
            print(f"error: {result['error']}", file=sys.stderr)
        if "gif_error" in result:
            print(f"error: {result['gif_error']}", file=sys.stderr)
        if "note" in result:
            print(f"note: {path}: {result['note']}", file=sys.stderr)
        if not args.timeline:
            result.pop("timeline", None)
        results.append(result)
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        print_table(results, predictor.classes)
        for r in results:
            if "gif" in r:
                print(f"gif written to {r['gif']}")
    return int(any("error" in r or "gif_error" in r for r in results))


if __name__ == "__main__":
    sys.exit(main())
