"""The frames of a video as they arrive, one at a time, each made into a model's input as soon as it is decoded
(issue 32; issue 33 #9: never the whole video at full resolution).

    reader = FrameReader("clip.mp4", size=64, channels=1, step=3)   # or "-", "frames_dir/", "/dev/video0", a URL
    for frame in reader:              # Frame(index, time_s, pixels uint8 (64, 64), arrived, display)
        ...

A source is one of (:func:`source_kind`):

* ``'file'``: a video file PyAV opens, a named pipe (``os.mkfifo``), or with ``follow`` a file still being
  written (FFmpeg's file protocol ``follow=1``: at its end it waits for more, until the stall timeout);
* ``'folder'``: a folder of images, sorted by name;
* ``'stdin'``: ``-``, a container stream on standard input (``av.open(sys.stdin.buffer)``; the format is
  guessed from the first bytes, or given: ``fmt="mpegts"``; an mp4 whose index is at its end cannot be read
  from a pipe, use mpegts, nut, matroska or avi);
* ``'camera'``: ``/dev/videoN``, through FFmpeg's v4l2 input;
* ``'url'``: anything with ``://`` that FFmpeg opens (rtsp, http, udp, ...).

A thread decodes the source and hands each frame it takes (every ``step``-th of the source) to the caller
through a queue of at most :data:`QUEUE_FRAMES` frames; each frame is converted (grayscale or RGB) and resized to
``size`` x ``size`` right after it is decoded, with the resize of the prepared data
(:func:`src.data.decode.small_frame`, as prepare does), so memory stays O(``QUEUE_FRAMES`` x one decoded frame) whatever
the length of the stream. The caller waits at most ``timeout`` seconds for the next frame: a source that stalls
raises :class:`StreamStalled`. A file source waits for the caller when the queue is full; a live one (camera,
URL) drops its oldest waiting frame instead, so the answers keep up with the scene (a warning says so once).

Where the stream goes on, a line is logged once (``logging``, logger ``src.inference.stream``): a frame size that
changes mid-way (every frame is resized anyway), frames dropped. Where it cannot, it raises
:class:`~src.inference.video.VideoReadError` with one line naming the source: a source that cannot be opened
(no such file, camera or answer), :class:`StreamStalled`, :class:`StreamBroken` (decoding failed after some
frames). A file that ends before the frame count its header announces sets :attr:`FrameReader.ended_early`.
"""
from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from src.data.decode import small_frame
from src.inference.video import DEFAULT_FPS, IMAGE_SUFFIXES, VideoReadError

logger = logging.getLogger(__name__)

STALL_TIMEOUT = 10.0  # seconds without a new frame before a stream counts as stalled
QUEUE_FRAMES = 8      # decoded frames waiting for the model, at most
SOURCE_KINDS = ("file", "folder", "stdin", "camera", "url")


class StreamStalled(VideoReadError):
    """No frame came for ``timeout`` seconds; the message is one line naming the source."""


class StreamBroken(VideoReadError):
    """Decoding failed after some frames (a damaged or cut stream); the message is one line naming the source."""


@dataclass(frozen=True)
class Frame:
    """One frame taken from a source."""

    index: int                 # its index among all the source's frames, 0-based
    time_s: float              # seconds since the source's first frame
    pixels: np.ndarray         # uint8 (S, S) grayscale or (S, S, 3) RGB: the model's input size
    arrived: float             # time.perf_counter() when it was decoded
    display: np.ndarray | None = None  # the same frame at the display size, when one was asked for


def source_kind(source: str) -> str:
    """Which of :data:`SOURCE_KINDS` the source ``source`` is (see the module docstring)."""
    if source == "-":
        return "stdin"
    if "://" in source:
        return "url"
    if source.startswith("/dev/video"):
        return "camera"
    return "folder" if Path(source).is_dir() else "file"


def source_name(source: str) -> str:
    """How messages name ``source``."""
    return "standard input" if source == "-" else source


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


class FrameReader:
    """The frames of ``source``, every ``step``-th, as uint8 ``size`` x ``size`` model inputs (see the module
    docstring). Iterate it once. After the iteration: :attr:`frames_read` (frames decoded), :attr:`ended_early`.

    Args:
        source: a path, ``-``, ``/dev/videoN`` or a URL.
        size: the side of the model's frames (``data.img_size``); channels: 1 grayscale, 3 RGB.
        step: take every ``step``-th frame (``data.slicing_step``), from the first on.
        fmt: the container format, for a source whose format cannot be guessed (a pipe); None guesses.
        timeout: seconds to wait for a frame before :class:`StreamStalled`.
        follow: for a file still being written: wait at its end for more (the stream then ends by the timeout).
        display_size: also give each frame at this side (``Frame.display``), for a GIF or video of the stream.
    """

    def __init__(self, source: str | Path, size: int, channels: int = 1, step: int = 1, fmt: str | None = None,
                 timeout: float = STALL_TIMEOUT, follow: bool = False, display_size: int | None = None):
        if channels not in (1, 3) or size < 1 or step < 1 or timeout <= 0:
            raise ValueError(f"FrameReader: channels 1 or 3, size, step >= 1 and timeout > 0; got {channels}, "
                             f"{size}, {step}, {timeout}")
        self.source, self.kind = str(source), source_kind(str(source))
        self.name = source_name(self.source)
        self.size, self.channels, self.step, self.fmt = size, channels, step, fmt
        self.timeout, self.follow, self.display_size = timeout, follow, display_size
        self.fps: float = DEFAULT_FPS
        self.announced: int | None = None  # frames the header announces (None: it does not say)
        self.frames_read = 0
        self.ended_early = False
        self._queue: queue.Queue = queue.Queue(QUEUE_FRAMES)
        self._stop = threading.Event()
        self._first_size: tuple[int, int] | None = None
        self._dropped = 0
        self._size_noted = False

    # ---------------------------------------------------------------- the caller's side

    def __iter__(self) -> Iterator[Frame]:
        self._check_source()
        thread = threading.Thread(target=self._produce, name=f"FrameReader({self.name})", daemon=True)
        thread.start()
        taken = 0
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self.timeout)
                except queue.Empty:
                    where = f"after frame {self.frames_read - 1}" if self.frames_read else "before its first frame"
                    raise StreamStalled(f"{self.name}: no frame for {self.timeout:g} s {where} (the stream stalled); "
                                        f"stopped (--timeout sets the wait)") from None
                if isinstance(item, Frame):
                    taken += 1
                    yield item
                elif isinstance(item, BaseException):
                    raise item
                else:  # the end
                    break
        finally:
            self._stop.set()
        if taken == 0:
            raise VideoReadError(f"{self.name}: not a readable video (no frame could be decoded)")

    def close(self) -> None:
        """Stop the decoding thread (it ends at its next frame)."""
        self._stop.set()

    def describe(self) -> str:
        """One line: what is read, and how (after the first frame)."""
        size = f"{self._first_size[0]}x{self._first_size[1]}" if self._first_size else "?"
        step = "every frame" if self.step == 1 else f"every {_ordinal(self.step)} frame"
        return (f"{self.name} ({self.kind}): {size} at {self.fps:g} fps, {step}, as "
                f"{'grayscale' if self.channels == 1 else 'RGB'} {self.size}x{self.size}")

    def _check_source(self) -> None:
        """The one-line refusals that need no decoding."""
        path = Path(self.source)
        if self.kind == "camera" and not path.exists():
            cameras = sorted(str(p) for p in Path("/dev").glob("video*"))
            raise VideoReadError(f"{self.source}: no such camera device (this machine has "
                                 f"{', '.join(cameras) if cameras else 'none'})")
        if self.kind == "file":
            if not path.exists():
                raise VideoReadError(f"{path}: no such file or folder")
            if path.is_file() and path.stat().st_size == 0 and not self.follow:
                raise VideoReadError(f"{path}: empty file")

    # ---------------------------------------------------------------- the decoding thread

    def _put(self, item) -> bool:
        """Hand ``item`` to the caller; False when the caller has stopped. A live source drops its oldest frame
        when the queue is full; a file waits."""
        live = self.kind in ("camera", "url")
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                if live and isinstance(item, Frame):
                    try:
                        self._queue.get_nowait()
                        self._dropped += 1
                        if self._dropped == 1:
                            logger.warning("%s: the model is slower than the source; dropping the oldest waiting "
                                           "frames so that the answers keep up", self.name)
                    except queue.Empty:
                        pass
        return False

    def _produce(self) -> None:
        try:
            frames = self._folder_images() if self.kind == "folder" else self._decoded()
            for image, time_s in frames:
                if not self._take(image, time_s):
                    return
            if self.announced is not None and self.frames_read < self.announced:
                self.ended_early = True
        except VideoReadError as e:
            self._put(e)
            return
        except Exception as e:  # noqa: BLE001  PyAV's and the OS's errors: one line in the caller's thread
            self._put(self._error(e))
            return
        self._put(None)

    def _error(self, error: Exception) -> VideoReadError:
        reason = "no video stream" if isinstance(error, IndexError) else (getattr(error, "strerror", None)
                                                                          or str(error) or type(error).__name__)
        reason = str(reason).splitlines()[0].removeprefix(f"{self.source}: ")
        if self.frames_read:
            return StreamBroken(f"{self.name}: the stream broke off after {self.frames_read} frames ({reason}); "
                                f"the answers up to there stand")
        verb = "could not open" if self.kind in ("url", "camera") else "not a readable video"
        return VideoReadError(f"{self.name}: {verb} ({reason})")

    def _take(self, image: np.ndarray | av.VideoFrame, time_s: float | None) -> bool:
        """One decoded frame (PyAV's, or uint8 (H, W) or (H, W, 3)): counted, and handed on when it is a
        ``step``-th (only those are converted)."""
        index = self.frames_read
        self.frames_read += 1
        width, height = (image.width, image.height) if isinstance(image, av.VideoFrame) else image.shape[1::-1]
        if self._first_size is None:
            self._first_size = (width, height)
        elif (width, height) != self._first_size and not self._size_noted:
            self._size_noted = True
            logger.warning("%s: the frame size changed from %dx%d to %dx%d at frame %d; every frame is resized to "
                           "%dx%d, the stream goes on", self.name, *self._first_size, width, height, index,
                           self.size, self.size)
        if index % self.step:
            return not self._stop.is_set()
        arrived = time.perf_counter()
        if isinstance(image, av.VideoFrame):
            image = image.to_ndarray(format="gray" if self.channels == 1 else "rgb24")
        pixels = small_frame(image, self.size)
        display = None
        if self.display_size is not None:
            display = pixels if self.display_size == self.size else small_frame(image, self.display_size)
        time_s = index / self.fps if time_s is None else time_s
        return self._put(Frame(index, round(time_s, 4), pixels, arrived, display))

    def _folder_images(self) -> Iterator[tuple[np.ndarray, float | None]]:
        images = sorted(p for p in Path(self.source).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise VideoReadError(f"{self.source}: a folder without image files ({', '.join(IMAGE_SUFFIXES)})")
        for path in images:
            with Image.open(path) as image:
                yield np.asarray(image.convert("RGB" if self.channels == 3 else "L")), None

    def _open(self):
        if self.kind == "stdin":
            return av.open(sys.stdin.buffer, format=self.fmt)
        if self.kind == "camera":
            return av.open(self.source, format=self.fmt or "v4l2")
        if self.kind == "url":
            return av.open(self.source, format=self.fmt, timeout=(self.timeout, self.timeout))
        return av.open(self.source, format=self.fmt, options={"follow": "1"} if self.follow else {})

    def _decoded(self) -> Iterator[tuple[av.VideoFrame, float | None]]:
        with self._open() as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            self.fps = float(Fraction(rate)) if rate else DEFAULT_FPS
            self.announced = stream.frames or None
            if self.announced is None and rate and stream.duration and stream.time_base and self.kind == "file":
                self.announced = round(stream.duration * stream.time_base * rate)
            start = None
            for frame in container.decode(stream):
                if frame.time is not None and start is None:
                    start = frame.time
                yield frame, (None if frame.time is None else frame.time - start)


def read_video(path: str | Path, size: int, channels: int = 1) -> tuple[np.ndarray, float, int | None]:
    """Every frame of a video file or folder of images, each resized as it is decoded (issue 33 #9: memory
    O(frames x ``size``²), never the video at full resolution): uint8 (T, S, S) grayscale or (T, S, S, 3) RGB,
    the fps, and the frame count the header announces (None when it does not say): more than T when the
    decoder stopped early (a truncated file). A decoding error after some frames keeps those (as a truncated
    file). Raises VideoReadError (one line naming ``path``)."""
    path = Path(path)
    if not path.exists():
        raise VideoReadError(f"{path}: no such file or folder")
    reader = FrameReader(path, size, channels)
    frames = []
    try:
        for frame in reader:
            frames.append(frame.pixels)
    except StreamBroken as e:
        logger.debug("%s", e)
    except StreamStalled:
        raise VideoReadError(f"{path}: no frame for {reader.timeout:g} s (a pipe or device that stalled?)") from None
    return np.stack(frames), reader.fps, reader.announced
