"""A trained model ready for the clips of any video: a checkpoint of ``src.train`` or its ONNX export of
``src.export``, loaded as a :class:`Predictor`, and :func:`predict_input`, one video's prediction.

    predictor = load_predictor("models/GRUCell/best.pth")     # or "gru.onnx"
    result = predict_input(predictor, "person01_boxing_d2_uncomp.mp4", timeline=True)

An input gets the preprocessing of training (:mod:`src.inference.video`): grayscale or RGB as the model
was trained, resized to its config's ``data.img_size``, clips of ``data.max_frames`` frames taken every
``data.slicing_step``-th frame (:mod:`src.inference.clips`). The whole video's prediction averages the logits
of evenly spaced clips, as the video accuracy of the evaluation does; the timeline is one prediction per
sliding window of one clip's span.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torchvision.transforms import v2

from src.data.dataset import TemporalSampling
from src.inference.clips import distinct_windows, evenly_spaced_starts, make_clips, sliding_starts
from src.inference.gif import write_gif
from src.inference.step_graph import GraphStream
from src.inference.stream import Frame, read_video
from src.nets.classifier import ActionClassifier
from src.nets.streaming import DEFAULT_RULE, Stream, StreamingClassifier, WindowedClassifier
from src.training.checkpoint import CheckpointReadError, load_model
from src.training.device import select_device

DEFAULT_CLIPS = 10  # evenly spaced clips averaged for the whole-video prediction


class PredictorLoadError(ValueError):
    """A file that is no model to predict with (neither a checkpoint of src.train nor an ONNX export of
    src.export); the message is one line naming the file."""


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
    open_stream: Callable[[str, int | None], Stream] | None = None  # (rule, every) -> a new stream of frames

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
        return torch.cat([self.logits_of(make_clips(frames, starts[i:i + self.batch_size], self.sampling))
                          for i in range(0, len(starts), self.batch_size)])


def _predictor_from_config(config: dict, logits_of, classes: list[str], channels: int, source: str) -> Predictor:
    data = config.get("data") if isinstance(config, dict) else None
    if not isinstance(data, dict) or not {"img_size", "max_frames", "slicing_step"} <= set(data):
        raise PredictorLoadError(f"{source}: its config lacks data.img_size, data.max_frames or data.slicing_step; "
                                 f"give a checkpoint of 'python -m src.train' or its ONNX export")
    return Predictor(logits_of, classes=list(classes), channels=int(channels), img_size=int(data["img_size"]),
                     max_frames=int(data["max_frames"]), slicing_step=int(data["slicing_step"]), source=source)


def load_predictor(path: str | Path, device: str | torch.device = "cpu") -> Predictor:
    """A checkpoint of ``src.train`` (``.pth``) on ``device``, or an ONNX file of ``src.export`` (``.onnx``,
    on the CPU through onnxruntime).

    Raises PredictorLoadError (one line naming the file) when it is neither, and ValueError when
    ``device`` is not a device of this machine (:func:`src.training.device.select_device`).
    """
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        if not path.is_file():
            raise PredictorLoadError(f"{path}: no such file; give an ONNX file of 'python -m src.export' "
                                     f"or a checkpoint (models/<experiment>/best.pth)")
        return _load_onnx(path)
    device = select_device(device)
    try:
        model, checkpoint = load_model(path, map_location=device)
    except (FileNotFoundError, CheckpointReadError) as e:
        raise PredictorLoadError(str(e).splitlines()[0]) from None

    @torch.inference_mode()
    def logits_of(clips: torch.Tensor) -> torch.Tensor:
        return model(clips.to(device)).float().cpu()

    predictor = _predictor_from_config(checkpoint["config"], logits_of, checkpoint["classes"], checkpoint["channels"],
                                       str(path))

    def open_stream(rule: str = DEFAULT_RULE, every: int | None = None) -> Stream:
        """A StreamingClassifier (a recurrent model) or WindowedClassifier (a clip network) on ``device``."""
        if isinstance(model, ActionClassifier):
            return OnDevice(StreamingClassifier(model, predictor.max_frames, rule=rule, every=every), device)
        return OnDevice(WindowedClassifier(model, predictor.max_frames), device)
    predictor.open_stream = open_stream
    return predictor


class OnDevice:
    """A stream whose model is on ``device``: frames go there, logits come back float32 on the CPU."""

    def __init__(self, stream: StreamingClassifier | WindowedClassifier, device: torch.device):
        self.stream, self.device = stream, device

    @property
    def answer_frames(self) -> int:
        return self.stream.answer_frames

    def reset(self) -> None:
        self.stream.reset()

    def step(self, frame: torch.Tensor) -> torch.Tensor:
        """frame (B, C, H, W) float in [0, 1] -> logits (B, classes)."""
        return self.stream.step(frame.to(self.device)).float().cpu()


class ClipFunction(torch.nn.Module):
    """A clips -> logits function (an ONNX session) as a module, for :class:`WindowedClassifier`."""

    def __init__(self, logits_of: Callable[[torch.Tensor], torch.Tensor], in_channels: int):
        super().__init__()
        self.logits_of, self.in_channels = logits_of, in_channels

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.logits_of(clips.contiguous())


def _load_onnx(path: Path) -> Predictor:
    import onnxruntime  # only ONNX models need it

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise PredictorLoadError(f"{path}: not a readable ONNX model ({str(e).splitlines()[0]})") from None
    metadata = session.get_modelmeta().custom_metadata_map
    for key, what in (("config", "img_size, max_frames, slicing_step"), ("classes", "the class names")):
        if key not in metadata:
            raise PredictorLoadError(f"{path}: holds no {key!r} metadata ({what}); export it again with "
                                     f"'python -m src.export --checkpoint CKPT --onnx {path.name}'")
    if metadata.get("stream_step") == "1":
        return _onnx_step_predictor(session, path, metadata)
    clips_input = session.get_inputs()[0]
    channels = clips_input.shape[2]  # clips (batch, T, channels, S, S): only the batch is dynamic

    def logits_of(clips: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(None, {clips_input.name: clips.numpy()})[0])

    predictor = _predictor_from_config(json.loads(metadata["config"]), logits_of, json.loads(metadata["classes"]),
                                       channels, str(path))
    predictor.open_stream = lambda rule=DEFAULT_RULE, every=None: WindowedClassifier(
        ClipFunction(logits_of, channels), predictor.max_frames)
    return predictor


def _onnx_step_predictor(session, path: Path, metadata: dict) -> Predictor:
    """A predictor of the one-step graph of :func:`src.inference.export.export_stream_onnx`: its streams are
    :class:`GraphStream` around the session; a clip's logits are the stream's after its last frame (rule 'carry':
    the clip forward itself)."""
    inputs = session.get_inputs()
    names = [i.name for i in inputs]
    outputs = [o.name for o in session.get_outputs()]
    row_shapes = [tuple(i.shape[1:]) for i in inputs if i.name in ("window", "total") or i.name.startswith("state")]

    def step_fn(arrays: list[np.ndarray]) -> list[np.ndarray]:
        return session.run(outputs, dict(zip(names, arrays)))

    def logits_of(clips: torch.Tensor) -> torch.Tensor:
        stream = GraphStream(step_fn, row_shapes, clips.shape[1], rule="carry")
        for t in range(clips.shape[1]):
            logits = stream.step(clips[:, t])
        return logits

    predictor = _predictor_from_config(json.loads(metadata["config"]), logits_of, json.loads(metadata["classes"]),
                                       inputs[0].shape[1], str(path))
    predictor.open_stream = lambda rule=DEFAULT_RULE, every=None: GraphStream(step_fn, row_shapes,
                                                                               predictor.max_frames, rule, every)
    return predictor


def model_tensor(pixels: np.ndarray) -> torch.Tensor:
    """uint8 frames (T, S, S) grayscale or (T, S, S, 3) RGB -> uint8 (T, C, S, S)."""
    frames = torch.from_numpy(pixels)
    return frames.unsqueeze(1) if frames.dim() == 3 else frames.permute(0, 3, 1, 2)


def predict_input(predictor: Predictor, path: str | Path, clips: int = DEFAULT_CLIPS, timeline: bool = False,
                  stride: int | None = None, gif: str | Path | None = None, gif_size: int | None = None) -> dict:
    """Predict one video file or frame folder.

    Returns ``{"input", "action" (the most probable class), "probabilities": {class name: p}, "num_frames",
    "fps"}``, plus ``"note"`` (one line; its parts joined by '; ') when the decoder read fewer frames than the
    video's header announces, when ``clips`` was capped at the number of distinct windows, or
    when the video is shorter than one clip (padded), ``"timeline"`` (a list of
    ``{"start_frame", "end_frame", "start_s", "end_s", "action", "probability"}``; frames
    0-based, end exclusive; one window every ``stride`` frames, default one clip's span) when asked or when
    ``gif`` is given, and ``"gif"`` (its path), or ``"gif_error"`` (one line naming it) when it could not be
    written; the gif is drawn at ``gif_size`` (default the model's ``img_size``), every ``slicing_step``-th frame.
    Raises :class:`src.inference.video.VideoReadError` for an input that cannot be read. The frames are resized
    as they are decoded (:func:`src.inference.stream.read_video`): memory is O(frames x ``img_size``²).
    """
    pixels, fps, announced = read_video(path, predictor.img_size, predictor.channels)  # (T, S, S) or (T, S, S, 3)
    frames = model_tensor(pixels)                                                     # uint8 (T, C, S, S)
    num_frames = len(frames)
    notes = []
    if announced is not None and num_frames < announced:
        notes.append(f"the decoder read {num_frames} of the {announced} frames {Path(path).name} announces "
                     f"(a truncated or damaged file?); predicted from those")
    windows = distinct_windows(num_frames, predictor.span)
    if clips > windows:
        notes.append(f"--clips {clips} capped at {windows}, the number of distinct {predictor.span}-frame windows "
                     f"of its {num_frames} frames")
        clips = windows
    probabilities = predictor.logits(frames, evenly_spaced_starts(num_frames, predictor.span, clips)).mean(0)
    probabilities = probabilities.softmax(0)                                  # (C,)
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
        result["timeline"] = predict_windows(predictor, frames, fps, stride or predictor.span)
    if gif is not None:
        try:
            result["gif"] = str(write_gif(pixels, fps, result["timeline"], gif, every=predictor.slicing_step,
                                          size=gif_size))
        except OSError as e:  # disk full, or the folder changed since it was checked: the prediction stays
            result["gif_error"] = f"{gif}: could not be written ({e.strerror or e}); the prediction is kept"
    return result


def predict_windows(predictor: Predictor, frames: torch.Tensor, fps: float, stride: int) -> list[dict]:
    """One prediction per sliding window of one clip's span, ``stride`` frames apart, over uint8 ``frames``
    (T, C, S, S): ``{"start_frame", "end_frame" (exclusive), "start_s", "end_s", "action", "probability"}``."""
    num_frames = len(frames)
    starts = sliding_starts(num_frames, predictor.span, stride)
    probabilities = predictor.logits(frames, starts).softmax(1)  # (windows, C)
    windows = []
    for start, probs in zip(starts, probabilities):
        end = min(start + predictor.span, num_frames)
        windows.append({"start_frame": start, "end_frame": end, "start_s": round(start / fps, 3),
                        "end_s": round(end / fps, 3), "action": predictor.classes[int(probs.argmax())],
                        "probability": round(float(probs.max()), 4)})
    return windows


def stream_input(predictor: Predictor, frames: Iterator[Frame], rule: str = DEFAULT_RULE, every: int | None = None,
                 stream: Stream | None = None) -> Iterator[tuple[dict, Frame]]:
    """The answer after every frame of ``frames`` (a :class:`src.inference.stream.FrameReader`, which takes
    every ``slicing_step``-th frame of the source at the model's size), through ``predictor.open_stream(rule,
    every)`` (or ``stream``, one opened so): a recurrent model carries its state
    (:class:`src.nets.streaming.StreamingClassifier`), a clip network recomputes its last window
    (:class:`~src.nets.streaming.WindowedClassifier`).

    Yields ``({"frame" (its index in the source), "time_s", "class", "probabilities": {class: p},
    "answer_frames" (how many of the latest frames taken the answer rests on), "step_ms" (the model's step),
    "latency_ms" (from the frame's decoding to its answer, waiting included)}, the frame)``.
    """
    stream = predictor.open_stream(rule, every) if stream is None else stream
    classes = predictor.classes
    for frame in frames:
        x = v2.functional.to_dtype(model_tensor(frame.pixels[None]), torch.float32, scale=True)  # (1, C, S, S)
        started = time.perf_counter()
        probabilities = stream.step(x)[0].softmax(0)
        done = time.perf_counter()
        yield ({"frame": frame.index, "time_s": frame.time_s, "class": classes[int(probabilities.argmax())],
                "probabilities": {name: round(float(p), 4) for name, p in zip(classes, probabilities, strict=True)},
                "answer_frames": stream.answer_frames, "step_ms": round(1000 * (done - started), 3),
                "latency_ms": round(1000 * (done - frame.arrived), 3)}, frame)


def describe_stream(stream: Stream) -> str:
    """How ``stream`` (of :attr:`Predictor.open_stream`) answers, in a few words."""
    inner = getattr(stream, "stream", stream)
    if isinstance(inner, WindowedClassifier):
        return f"recomputing its last {inner.window}-frame window at every step"
    return f"carrying its state, rule {inner.rule!r} (every {inner.every} frames, {inner.states} staggered copies)"
