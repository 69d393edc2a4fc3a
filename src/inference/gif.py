"""The video with the model's running answer drawn on it: an animated GIF of a whole video's windows
(:func:`write_gif`), or a GIF or video written frame by frame as a stream is predicted (:class:`LabelledWriter`).

Frames are drawn at the model's input size (``data.img_size``: what the model saw), or at ``size``, and only the
frames the model takes (every ``slicing_step``-th), at real speed (issue 33 #10: a 640x360 video of a minute gave a
97 MB GIF when every frame was drawn at twice its size; at 64x64 every 3rd frame it is a few MB). The label is a
band above the frame: the class, then its probability and the time, in a font as large as fits the width.
"""
from __future__ import annotations

import contextlib
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from src.files import atomic_path

LABEL_SIZES = range(16, 5, -1)  # font sizes tried, largest first
MUXERS = {"mkv": "matroska", "mov": "mov"}  # the muxer of a suffix whose name is not its own


@lru_cache(maxsize=8)
def label_font(width: int) -> ImageFont.ImageFont:
    """The largest default font (:data:`LABEL_SIZES`) in which 'handclapping' and '100%  00.0 s' fit ``width``."""
    for size in LABEL_SIZES:
        font = ImageFont.load_default(size=size)
        if max(font.getlength(text) for text in ("handclapping", "100%  00.0 s")) <= width - 4:
            return font
    return ImageFont.load_default(size=LABEL_SIZES[-1])


def band_height(width: int) -> int:
    """Pixels of the label band above a frame ``width`` pixels wide: two lines of :func:`label_font`."""
    return 2 * (label_font(width).size + 2) + 2


def labelled_frame(frame: np.ndarray, action: str, probability: float, time_s: float,
                   size: int | None = None) -> Image.Image:
    """uint8 ``frame`` (H, W) or (H, W, 3), resized to ``size`` x ``size`` when given, under a band that reads
    ``action`` / ``probability`` and ``time_s``."""
    image = Image.fromarray(frame)
    if size is not None and image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    width, height = image.size
    band = band_height(width)
    canvas = Image.new(image.mode, (width, height + band), "black")
    canvas.paste(image, (0, band))
    font = label_font(width)
    draw = ImageDraw.Draw(canvas)
    draw.text((2, 1), action, fill="white", font=font)
    draw.text((2, font.size + 3), f"{probability:.0%}  {time_s:4.1f} s", fill="white", font=font)
    return canvas


def write_gif(frames: np.ndarray, fps: float, timeline: list[dict], path: str | Path, every: int = 1,
              size: int | None = None) -> Path:
    """Write uint8 (T, S, S) grayscale or (T, S, S, 3) RGB ``frames`` (every ``every``-th, at real speed, at
    ``size`` x ``size`` when given, else as they are: the model's input size) as an animated GIF with each
    frame's window class and probability (``timeline``: windows of
    :func:`src.inference.predictor.predict_input`) on a band above it. Atomic (:func:`src.files.atomic_path`)."""
    path = Path(path)
    images = []
    for t in range(0, len(frames), every):
        window = next(w for w in reversed(timeline) if w["start_frame"] <= t) if t >= timeline[0]["start_frame"] \
            else timeline[0]
        images.append(labelled_frame(frames[t], window["action"], window["probability"], t / fps, size))
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                       duration=round(1000 * every / fps), loop=0)
    return path


def gif_path(gif: str | Path, input_path: str | Path, several: bool) -> Path:
    """``out.gif`` for one input; ``out_<input name>.gif`` for each of several."""
    gif = Path(gif)
    return gif.with_name(f"{gif.stem}_{Path(input_path).stem}{gif.suffix or '.gif'}") if several else gif


class LabelledWriter:
    """A GIF (``.gif``) or video (any other suffix PyAV muxes: ``.mp4`` in H.264, ``.mkv``, ``.avi``) written
    frame by frame, each frame with its label (:func:`labelled_frame`): memory stays one frame whatever the
    stream's length. ``rate``: frames per second of the frames given (the source's fps / the frame step).

    ``with LabelledWriter(path, rate, size) as writer: writer.add(frame, action, probability, time_s)``: the file
    is written under a temporary name and renamed when the block ends without an exception
    (:func:`src.files.atomic_path`); an exception leaves nothing.
    """

    def __init__(self, path: str | Path, rate: float, size: int):
        self.path, self.size = Path(path), size
        self.rate = Fraction(rate).limit_denominator(1000)
        self.gif = self.path.suffix.lower() == ".gif"
        self._stack = contextlib.ExitStack()
        self._container = self._stream = None

    def __enter__(self) -> LabelledWriter:
        tmp = self._stack.enter_context(atomic_path(self.path))
        suffix = self.path.suffix.lower().lstrip(".")
        self._container = self._stack.enter_context(av.open(str(tmp), "w", format=MUXERS.get(suffix, suffix)))
        return self

    def _open_stream(self, width: int, height: int) -> None:
        codec = "gif" if self.gif else "libx264" if self.path.suffix.lower() in (".mp4", ".mkv", ".mov") else "mpeg4"
        self._stream = self._container.add_stream(codec, rate=self.rate)
        self._stream.width, self._stream.height = width, height
        self._stream.pix_fmt = "rgb8" if self.gif else "yuv420p"

    def add(self, frame: np.ndarray, action: str, probability: float, time_s: float) -> None:
        """One more frame, uint8 (H, W) or (H, W, 3), drawn at ``size`` with its label."""
        image = labelled_frame(frame, action, probability, time_s, self.size).convert("RGB")
        if not self.gif:  # yuv420p needs even sides
            image = image.crop((0, 0, image.width - image.width % 2, image.height - image.height % 2))
        if self._stream is None:
            self._open_stream(image.width, image.height)
        for packet in self._stream.encode(av.VideoFrame.from_image(image)):
            self._container.mux(packet)

    def __exit__(self, *exc_info) -> None:
        if exc_info[0] is None and self._stream is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
        self._stack.__exit__(*exc_info)
