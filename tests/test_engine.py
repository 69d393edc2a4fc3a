"""src.engine: metrics over clips and videos."""
import pytest
import torch

from src.engine import classification_metrics


def test_classification_metrics_average_clip_logits_per_video():
    # video 0 (label 0): clips say 0, 1, 0 -> video right; video 1 (label 2): one confident wrong clip
    logits = torch.tensor([[2.0, 0, 0], [0, 1, 0], [2, 0, 0], [0, 0, 1], [0, 5, 0]])
    labels = torch.tensor([0, 0, 0, 2, 2])
    videos = torch.tensor([0, 0, 0, 1, 1])
    metrics = classification_metrics(logits, labels, videos, num_classes=3)
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["video_accuracy"] == pytest.approx(1 / 2)
    assert metrics["confusion_matrix"] == [[2, 1, 0], [0, 0, 0], [0, 1, 1]]
    assert metrics["per_class_accuracy"] == pytest.approx([2 / 3, 0.0, 1 / 2])
