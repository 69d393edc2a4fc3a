"""src.training.metrics: metrics over clips and videos, and a run's history."""
import pytest
import torch

from src.training.metrics import classification_metrics, first_epoch_reaching, plateau_epoch


def test_classification_metrics_average_clip_logits_per_video():
    # video 0 (label 0): clips say 0, 1, 0 -> video right; video 1 (label 2): one confident wrong clip
    logits = torch.tensor([[2.0, 0, 0], [0, 1, 0], [2, 0, 0], [0, 0, 1], [0, 5, 0]])
    labels = torch.tensor([0, 0, 0, 2, 2])
    videos = torch.tensor([0, 0, 0, 1, 1])
    metrics = classification_metrics(logits, labels, videos, num_classes=3)
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["video_accuracy"] == pytest.approx(1 / 2)
    assert metrics["confusion_matrix"] == [[2, 1, 0], [0, 0, 0], [0, 1, 1]]
    # class 1 has no clip: no accuracy (NaN), not 0 %
    assert metrics["per_class_accuracy"] == pytest.approx([2 / 3, float("nan"), 1 / 2], nan_ok=True)
    default = classification_metrics(logits, labels, videos)  # the number of classes: the logits' width
    assert default["per_class_accuracy"] == pytest.approx(metrics.pop("per_class_accuracy"), nan_ok=True)
    assert {key: value for key, value in default.items() if key != "per_class_accuracy"} == metrics
    with pytest.raises(ValueError, match="logits of 3 classes, num_classes is 6"):
        classification_metrics(logits, labels, videos, num_classes=6)


def test_a_class_without_clips_has_no_accuracy_and_a_class_all_wrong_has_zero():
    logits = torch.tensor([[0.0, 1, 0], [0, 1, 0], [1, 0, 0]])  # class 0: one clip, wrong; class 2: none
    labels = torch.tensor([0, 1, 1])
    per_class = classification_metrics(logits, labels, torch.tensor([0, 1, 2]), num_classes=3)["per_class_accuracy"]
    assert per_class[0] == 0.0 and per_class[1] == pytest.approx(0.5) and per_class[2] != per_class[2]  # NaN


def test_the_plateau_is_the_first_epoch_within_half_a_point_of_the_last():
    history = [{"epoch": e, "val_accuracy": acc} for e, acc in enumerate([0.5, 0.896, 0.85, 0.93, 0.9, 0.9], 1)]
    assert first_epoch_reaching(history, 0.9) == 4 and first_epoch_reaching(history, 0.95) is None
    assert plateau_epoch(history) == 2  # 0.896 >= 0.9 - 0.005, though epoch 3 dips below again
    assert plateau_epoch(history, tolerance=0.001) == 4  # above the last counts too
    assert plateau_epoch(history[:1]) == 1
