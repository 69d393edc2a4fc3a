"""A video's frames one at a time, each made small as it is decoded: memory O(frames x output size).

:func:`iter_frames` yields the frames of a video file (the first video stream, PyAV) or of a frame folder (its
images in name order, :data:`src.data.sources.common.IMAGE_SUFFIXES`), each uint8 (H, W) grayscale or
(H, W, 3) RGB; :func:`small_frame` resizes one (PIL, bilinear with antialiasing); :func:`read_small_frames`
stacks the resized frames, holding one full-size frame at a time::

    frames = read_small_frames("clip.mp4", size=64, channels=3)   # uint8 (T, 64, 64, 3)

A 400-frame 640x360 video read whole before resizing was a 276 MB array (586 MB peak) for 4.9 MB of
64x64 RGB output; here the peak is one decoded frame plus the output. :mod:`src.data.prepare` decodes
with it; any reader of videos (``src.inference``) may.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import av
import numpy as np
from PIL import Image

from src.data.sources.common import is_image

CHANNELS = (1, 3)  # grayscale, RGB


def check_channels(channels: int, where: str = "channels") -> None:
    """Refuse ``channels`` other than 1 (grayscale) or 3 (RGB): ValueError naming ``where``."""
    if isinstance(channels, bool) or channels not in CHANNELS:
        raise ValueError(f"{where}: channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")


def frame_folder_images(path: Path) -> list[Path]:
    """The images of frame folder ``path``, sorted by name (hidden ones left out)."""
    return sorted(p for p in path.iterdir() if p.is_file() and is_image(p) and not p.name.startswith("."))


def iter_frames(path: str | Path, channels: int = 1) -> Iterator[np.ndarray]:
    """The frames of a video file or a frame folder, one at a time: uint8 (H, W) for ``channels`` 1,
    (H, W, 3) RGB for 3. A video's frames are converted by libswscale (PyAV's ``to_ndarray``), an image's
    by PIL (``convert('L')`` or ``'RGB'``). Raises what PyAV or PIL raise for a file they cannot read."""
    check_channels(channels, "iter_frames")
    path = Path(path)
    if path.is_dir():
        for image_path in frame_folder_images(path):
            with Image.open(image_path) as image:
                yield np.asarray(image.convert("L" if channels == 1 else "RGB"))
        return
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="gray" if channels == 1 else "rgb24")


def small_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """uint8 (H, W) or (H, W, 3) -> (size, size) or (size, size, 3), bilinear with antialiasing (PIL)."""
    return np.asarray(Image.fromarray(frame).resize((size, size), Image.Resampling.BILINEAR))


def read_small_frames(path: str | Path, size: int, channels: int = 1) -> np.ndarray:
    """Every frame of a video file or frame folder (:func:`iter_frames`), each resized to ``size`` as it
    is decoded (:func:`small_frame`): uint8 (T, size, size), or (T, size, size, 3) for ``channels`` 3.
    ValueError naming ``path`` when it has no frame."""
    frames = [small_frame(frame, size) for frame in iter_frames(path, channels)]
    if not frames:
        raise ValueError(f"{path}: no frame could be decoded")
    return np.stack(frames)
