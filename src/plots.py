"""Figures for the notebook, TensorBoard and the report. Each returns a matplotlib Figure.

Clips are float tensors ``[T, 1, H, W]`` in [0, 1], as the dataset gives them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torchvision.utils import make_grid

from src.kth import ACTIONS


def confusion_matrix_figure(confusion: Sequence[Sequence[int]], class_names: Sequence[str] = ACTIONS,
                            title: str = "confusion matrix"):
    """Row-normalised confusion matrix ``[C, C]`` (rows: true class, columns: predicted),
    with the counts written in the cells."""
    counts = np.asarray(confusion, dtype=float)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if rates[i, j] > 0.5 else "black")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def clip_strip_figure(clips: Sequence[torch.Tensor], row_titles: Sequence[str], title: str | None = None):
    """One row per clip ``[T, 1, H, W]``, its frames side by side."""
    fig, axes = plt.subplots(len(clips), 1, figsize=(1.2 * clips[0].shape[0], 1.35 * len(clips)), squeeze=False)
    for ax, clip, row_title in zip(axes[:, 0], clips, row_titles):
        grid = make_grid(clip.float().cpu(), nrow=clip.shape[0], padding=1, pad_value=1.0)
        ax.imshow(grid[0].numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_axis_off()
        ax.set_title(row_title, fontsize=8, loc="left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_clip_gif(clip: torch.Tensor, path: str | Path, fps: int = 8, scale: int = 2) -> Path:
    """Write a clip ``[T, 1, H, W]`` in [0, 1] as an animated GIF (PIL)."""
    from PIL import Image

    frames = (clip[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    images = [Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST) for f in frames]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path


def learning_curves_figure(tboard_dir: str | Path, runs: Sequence[str],
                           tags: Sequence[str] = ("loss/train", "loss/val", "accuracy/train", "accuracy/val")):
    """Per-epoch scalars of several runs, read back from their TensorBoard event files,
    one panel per tag."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    fig, axes = plt.subplots(1, len(tags), figsize=(4 * len(tags), 3.4), squeeze=False)
    for run in runs:
        events = EventAccumulator(str(Path(tboard_dir) / run), size_guidance={"scalars": 0})
        events.Reload()
        available = set(events.Tags()["scalars"])
        for ax, tag in zip(axes[0], tags):
            if tag in available:
                points = events.Scalars(tag)
                ax.plot([p.step for p in points], [p.value for p in points], label=run)
    for ax, tag in zip(axes[0], tags):
        ax.set_title(tag)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Save a figure (creating its folder) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path
