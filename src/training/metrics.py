"""Running a model over a loader and scoring it: what training, evaluation and the benchmarks share.

- :func:`timed`: a loader's batches with the time spent waiting for each;
- :func:`clip_logits`: the logits (N, C) of every clip of a loader, in loader order (not a video's
  prediction: that is :mod:`src.predict`);
- :func:`classification_metrics`: clip and video accuracy, per-class accuracy (NaN for a class without clips),
  confusion matrix;
- :func:`summarize_history`, :func:`first_epoch_reaching`, :func:`plateau_epoch`: a training run's headline
  numbers from its per-epoch history.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from src.progress import tqdm
from src.training.device import autocast


def timed(loader):
    """Yield ``(batch, seconds blocked waiting for it)`` from a DataLoader."""
    iterator = iter(loader)
    while True:
        start = time.perf_counter()
        try:
            batch = next(iterator)
        except StopIteration:
            return
        yield batch, time.perf_counter() - start


@torch.no_grad()
def clip_logits(model, loader, device, precision: str = "float32",
                desc: str = "eval") -> tuple[torch.Tensor, torch.Tensor, float]:
    """Logits of every clip in loader order, the model run in ``precision`` (:func:`autocast`).
    Returns ``(logits (N, C) float32 CPU, labels (N,) int64 CPU, seconds blocked waiting for data)``."""
    model.eval()
    all_logits, all_labels, data_wait = [], [], 0.0
    for (clips, labels, *_), wait in tqdm(timed(loader), total=len(loader), desc=desc, leave=False, dynamic_ncols=True):
        data_wait += wait
        with autocast(device, precision):
            logits = model(clips.to(device, non_blocking=True))
        all_logits.append(logits.float().cpu())
        all_labels.append(labels)
    return torch.cat(all_logits), torch.cat(all_labels), data_wait


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, video_index: torch.Tensor,
                           num_classes: int | None = None) -> dict:
    """Clip and video accuracy, per-class (clip) accuracy, confusion matrix.

    Args:
        logits: (N, C) clip logits.
        labels: (N,) true labels, in 0..C-1.
        video_index: (N,) which video each clip comes from; a video's prediction is the
            argmax of its clips' mean logits.
        num_classes: C, the number of classes (the dataset's or the checkpoint's); default the
            logits' width.

    Returns:
        ``{'loss', 'accuracy', 'video_accuracy', 'per_class_accuracy': [C] (NaN for a class without clips: no
        accuracy, not 0), 'confusion_matrix': [C][C] (rows true, columns predicted; counts of clips)}``.
    """
    num_classes = logits.shape[1] if num_classes is None else num_classes
    if logits.shape[1] != num_classes:
        raise ValueError(f"classification_metrics: logits of {logits.shape[1]} classes, num_classes is {num_classes}")
    predictions = logits.argmax(1)
    confusion = torch.bincount(labels * num_classes + predictions, minlength=num_classes ** 2)
    confusion = confusion.reshape(num_classes, num_classes)
    clips_per_class = confusion.sum(1)
    per_class = torch.where(clips_per_class > 0, confusion.diag() / clips_per_class.clamp(min=1), float("nan"))
    videos, video_of_clip = torch.unique(video_index, return_inverse=True)
    video_logits = torch.zeros(len(videos), num_classes).index_add_(0, video_of_clip, logits)
    video_labels = torch.zeros(len(videos), dtype=torch.long).scatter_(0, video_of_clip, labels)
    return {
        "loss": F.cross_entropy(logits, labels).item(),
        "accuracy": (predictions == labels).float().mean().item(),
        "video_accuracy": (video_logits.argmax(1) == video_labels).float().mean().item(),
        "per_class_accuracy": per_class.tolist(),
        "confusion_matrix": confusion.tolist(),
    }


def clip_video_index(dataset) -> torch.Tensor:
    """(N,) the video index of every item of a clip dataset, in item order."""
    return torch.tensor([video for video, _ in dataset.clips])


def first_epoch_reaching(history: list[dict], level: float) -> int | None:
    """The first epoch of ``history`` (the trainer's per-epoch rows) whose validation clip accuracy is at least
    ``level`` (a fraction), or None."""
    return next((row["epoch"] for row in history if row["val_accuracy"] >= level - 1e-12), None)


def plateau_epoch(history: list[dict], tolerance: float = 0.005) -> int:
    """The epoch a run reached its plateau: the first whose validation clip accuracy lies within ``tolerance``
    (default half a point) of the last epoch's, or above it."""
    return first_epoch_reaching(history, history[-1]["val_accuracy"] - tolerance)


def summarize_history(history: list[dict], best: dict) -> dict:
    """The run's headline numbers from its per-epoch history."""
    epoch_times = [row["epoch_time_s"] for row in history]
    return {
        "best_val_accuracy": best["val_accuracy"],
        "best_val_video_accuracy": best["val_video_accuracy"],
        "best_epoch": best["epoch"],
        "epochs": len(history),
        "time_per_epoch_s": sum(epoch_times) / len(epoch_times),
        "data_wait_share": sum(row["data_wait_s"] for row in history) / sum(epoch_times),
        "time_to_best_s": sum(epoch_times[:best["epoch"]]),
        "total_time_s": sum(epoch_times),
    }
