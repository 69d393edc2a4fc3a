"""The video with each window's prediction drawn on it, as an animated GIF."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from src.files import atomic_path

BAND = 14  # pixels of the text band above each frame


def write_gif(frames: np.ndarray, fps: float, timeline: list[dict], path: str | Path, every: int = 1,
              scale: int = 2) -> Path:
    """Write uint8 (T, H, W) grayscale or (T, H, W, 3) RGB ``frames`` (every ``every``-th, enlarged
    ``scale`` times, at real speed) as an animated GIF with each frame's window class and probability
    (``timeline``: windows of :func:`src.inference.predictor.predict_input`) on a band above it.
    Atomic (:func:`src.files.atomic_path`)."""
    path = Path(path)
    height, width = frames.shape[1:3]
    mode = "RGB" if frames.ndim == 4 else "L"
    images = []
    for t in range(0, len(frames), every):
        window = next(w for w in reversed(timeline) if w["start_frame"] <= t) if t >= timeline[0]["start_frame"] \
            else timeline[0]
        canvas = Image.new(mode, (width * scale, height * scale + BAND), "black")
        canvas.paste(Image.fromarray(frames[t]).resize((width * scale, height * scale)), (0, BAND))
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
