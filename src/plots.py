"""Figures for the notebook, TensorBoard and the report. Each returns a matplotlib Figure.

Clips are float tensors ``[T, C, H, W]`` in [0, 1] (C = 1 grayscale or 3 RGB), as the dataset
gives them. Class names are passed in: the dataset's ``classes``, a checkpoint's or a results.json's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.ticker import MaxNLocator
from torchvision.utils import make_grid


def confusion_matrix_figure(confusion: Sequence[Sequence[int]], class_names: Sequence[str],
                            title: str = "confusion matrix"):
    """Confusion matrix ``[C, C]`` (rows: true class, columns: predicted) as a heatmap of
    the row-normalised rates, with the clip counts written in the cells; ``class_names`` (C)
    label the rows and columns."""
    counts = np.asarray(confusion, dtype=float)
    if counts.shape != (len(class_names), len(class_names)):
        raise ValueError(f"confusion_matrix_figure: a {list(counts.shape)} matrix for {len(class_names)} class names")
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = max(1.0, len(class_names) / 6)  # the size six classes had, grown with more
    fig, ax = plt.subplots(figsize=(5.8 * side, 4.8 * side))
    sns.heatmap(rates, annot=counts.astype(int), fmt="d", cmap="Blues", vmin=0, vmax=1, square=True,
                xticklabels=class_names, yticklabels=class_names, cbar_kws={"label": "share of the true class"},
                annot_kws={"fontsize": 8}, ax=ax)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.tick_params(axis="x", rotation=45)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def per_class_accuracy_figure(per_class: dict[str, dict[str, float | None]],
                              title: str = "test clip accuracy per class"):
    """Grouped bars: ``{run: {class name: accuracy in [0, 1]}}``, one group per class. A class without test clips
    (accuracy NaN, or None as results.json's null) has no bar, but keeps its place on the axis."""
    table = pd.DataFrame([{"run": run, "class": name, "accuracy (%)": 100 * (np.nan if accuracy is None else accuracy)}
                          for run, accuracies in per_class.items() for name, accuracy in accuracies.items()])
    classes = list(dict.fromkeys(table["class"]))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(classes) + 0.25 * len(per_class)), 3.8))
    sns.barplot(table, x="class", y="accuracy (%)", hue="run", order=classes, hue_order=list(per_class), ax=ax)
    ax.set_ylim(0, 100)
    ax.set_xlabel("")
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def clip_strip_figure(clips: Sequence[torch.Tensor], row_titles: Sequence[str], title: str | None = None):
    """One row per clip ``[T, C, H, W]`` (C = 1 or 3), its frames side by side."""
    fig, axes = plt.subplots(len(clips), 1, figsize=(1.2 * clips[0].shape[0], 1.35 * len(clips)), squeeze=False)
    for ax, clip, row_title in zip(axes[:, 0], clips, row_titles):
        grid = make_grid(clip.float().cpu(), nrow=clip.shape[0], padding=1, pad_value=1.0)  # [3, H', W']: gray repeated
        ax.imshow(grid.clamp(0, 1).permute(1, 2, 0).numpy())
        ax.set_axis_off()
        ax.set_title(row_title, fontsize=8, loc="left")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_clip_gif(clip: torch.Tensor, path: str | Path, fps: int = 8, scale: int = 2) -> Path:
    """Write a clip ``[T, C, H, W]`` in [0, 1] (C = 1 grayscale or 3 RGB) as an animated GIF (PIL)."""
    from PIL import Image

    frames = (clip.clamp(0, 1) * 255).round().to(torch.uint8).cpu()
    frames = (frames[:, 0] if frames.shape[1] == 1 else frames.permute(0, 2, 3, 1)).numpy()  # [T, H, W(, 3)]
    images = [Image.fromarray(f).resize((f.shape[1] * scale, f.shape[0] * scale), Image.NEAREST) for f in frames]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path


def learning_curves_figure(histories: dict[str, Sequence[dict]],
                           keys: Sequence[str] = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")):
    """Per-epoch values of several runs, one panel per key: ``{run: history}``, a history
    being the list of per-epoch rows that results.json and the checkpoints carry."""
    table = pd.DataFrame([{"run": run, **row} for run, history in histories.items() for row in history])
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.4), squeeze=False)
    for i, (ax, key) in enumerate(zip(axes[0], keys)):
        sns.lineplot(table, x="epoch", y=key, hue="run", ax=ax, legend=i == len(keys) - 1)
        ax.set_title(key.replace("_", " "))
        ax.set_ylabel("")
        ax.grid(alpha=0.3)
    if len(histories):
        axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def early_recognition_figure(steps, shares, order: Sequence[str] | None = None):
    """Accuracy against the frames seen, two panels: after t steps of a test clip (``steps``) and after p % of a
    test subsequence (``shares``), each a :class:`src.early_analysis.Curve` (``mean``, ``std``: one row per
    experiment, one column per t or p, shares in [0, 1]; ``seeds``). One curve per experiment (its mean over
    seeds; ``order``: the legend's order), the band mean ± std where it has several seeds."""
    names = [name for name in (order or []) if name in steps.mean.index]
    names += sorted(set(steps.mean.index) - set(names))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    colours = sns.color_palette(n_colors=max(len(names), 1))
    panels = ((axes[0], steps, "steps of a test clip seen (frames, one every slicing_step)"),
              (axes[1], shares, "share of a test subsequence seen (%)"))
    for ax, curve, xlabel in panels:
        for colour, name in zip(colours, names):
            if name not in curve.mean.index:
                continue
            mean = curve.mean.loc[name].dropna()
            x, y = np.asarray(mean.index, dtype=float), 100 * mean.to_numpy(dtype=float)
            ax.plot(x, y, marker="o", markersize=3, color=colour, label=f"{name} (n={int(curve.seeds[name])})")
            std = curve.std.loc[name, mean.index].to_numpy(dtype=float)
            if curve.seeds[name] > 1 and not np.isnan(std).all():
                ax.fill_between(x, y - 100 * std, y + 100 * std, color=colour, alpha=0.2, linewidth=0)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel("test accuracy (%)")
    axes[0].set_ylim(0, 100)
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle("early recognition: accuracy against the frames seen (mean over seeds, band ± std)")
    fig.tight_layout()
    return fig


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Save a figure (creating its folder) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path
