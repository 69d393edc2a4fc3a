"""What reading a video can say: the error of an unreadable input, the image files of a frame folder, the frame
rate assumed where a source gives none. The reading itself, frame by frame: :mod:`src.inference.stream`."""
from __future__ import annotations

from src.data.sources.common import IMAGE_SUFFIXES as PREPARED_IMAGE_SUFFIXES

IMAGE_SUFFIXES = (*PREPARED_IMAGE_SUFFIXES, ".gif")  # predict also reads a folder of GIF frames; prepare has never
# taken .gif files (neither frames nor videos), and keeps that
DEFAULT_FPS = 25.0  # KTH's frame rate; the rate of a folder of frames, and of a video whose header says none


class VideoReadError(ValueError):
    """An input that is no readable video or frame folder; the message is one line naming it."""
