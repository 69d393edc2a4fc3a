"""The frames of a video file (anything PyAV decodes) or of a folder of images (sorted by name), read as
training reads them (:func:`src.data.prepare.decode_video`, :func:`src.data.prepare.resize_frames`)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from src.data.prepare import decode_video, resize_frames

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".gif")
DEFAULT_FPS = 25.0  # KTH's frame rate; the rate of a folder of frames, and of a video whose header says none


class VideoReadError(ValueError):
    """An input that is no readable video or frame folder; the message is one line naming it."""


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


def read_frame_folder(path: Path, channels: int = 1) -> np.ndarray:
    """The images of folder ``path``, sorted by name: uint8 (T, H, W) grayscale for ``channels`` 1,
    (T, H, W, 3) RGB for 3."""
    images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise VideoReadError(f"{path}: a folder without image files ({', '.join(IMAGE_SUFFIXES)})")
    frames = [np.asarray(Image.open(p).convert("RGB" if channels == 3 else "L")) for p in images]
    if len({f.shape for f in frames}) > 1:
        raise VideoReadError(f"{path}: the images differ in size; give frames of one video")
    return np.stack(frames)


def read_frames(path: str | Path, channels: int = 1) -> tuple[np.ndarray, float, int | None]:
    """The frames of a video file or a folder of images, uint8 (T, H, W) grayscale for ``channels``
    1, (T, H, W, 3) RGB for 3; the fps, and the number of frames the video's header announces
    (None for a folder, or a header that does not say): more than T when the decoder stopped early
    (a truncated file). Raises VideoReadError."""
    path = Path(path)
    if path.is_dir():
        return read_frame_folder(path, channels), DEFAULT_FPS, None
    if not path.is_file():
        raise VideoReadError(f"{path}: no such file or folder")
    if path.stat().st_size == 0:
        raise VideoReadError(f"{path}: empty file")
    try:
        return decode_video(path, channels), *video_header(path)
    except (av.FFmpegError, IndexError, ValueError) as e:
        reason = "no video stream" if isinstance(e, IndexError) else (getattr(e, "strerror", None) or str(e))
        reason = str(reason).removeprefix(f"{path}: ")
        raise VideoReadError(f"{path}: not a readable video ({reason})") from None


def model_frames(frames: np.ndarray, img_size: int) -> torch.Tensor:
    """uint8 frames (T, H, W) grayscale or (T, H, W, 3) RGB -> uint8 (T, C, S, S) with S = ``img_size``,
    resized as the prepared data is."""
    resized = torch.from_numpy(resize_frames(frames, img_size))
    return resized.unsqueeze(1) if resized.dim() == 3 else resized.permute(0, 3, 1, 2)
