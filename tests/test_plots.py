"""src.plots: figures render and say what they show."""
import pytest
import torch
from PIL import Image

from src import plots


def test_confusion_matrix_figure_writes_counts_under_the_class_names(tmp_path):
    confusion = torch.eye(4, dtype=torch.long) * 3
    confusion[0, 1] = 2
    names = ["wave", "clap", "box", "walk"]
    fig = plots.confusion_matrix_figure(confusion.tolist(), names)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("3") == 4 and "2" in texts
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == names
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == names
    assert plots.save_figure(fig, tmp_path / "cm.png").stat().st_size > 0
    with pytest.raises(ValueError, match=r"a \[4, 4\] matrix for 6 class names"):
        plots.confusion_matrix_figure(confusion.tolist(), [*names, "run", "jog"])


@pytest.mark.parametrize("channels", [1, 3])
def test_clip_gif_has_one_frame_per_clip_frame(tmp_path, channels):
    clip = torch.rand(7, channels, 16, 16)
    clip[0, :, 0, 0] = torch.tensor([1.0, 0.0, 0.0])[:channels]  # red in colour, white in gray
    path = plots.save_clip_gif(clip, tmp_path / "clip.gif", scale=1)
    with Image.open(path) as gif:
        assert gif.n_frames == 7 and gif.size == (16, 16)
        assert gif.convert("RGB").getpixel((0, 0)) == ((255, 0, 0) if channels == 3 else (255, 255, 255))


@pytest.mark.parametrize("channels", [1, 3])
def test_clip_strip_figure_has_a_row_per_clip(channels):
    fig = plots.clip_strip_figure([torch.rand(4, channels, 8, 8)] * 3, ["a", "b", "c"])
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["a", "b", "c"]
    assert fig.axes[0].get_images()[0].get_array().shape == (10, 37, 3)  # 4 frames of 8 + 5 borders of 1


def test_per_class_accuracy_figure_has_a_bar_per_run_and_class():
    fig = plots.per_class_accuracy_figure({"A": {"walking": 0.5, "boxing": 1.0}, "B": {"walking": 0.25, "boxing": 0}})
    heights = sorted(round(bar.get_height()) for bar in fig.axes[0].patches if bar.get_width() > 0)
    assert heights[-4:] == [0, 25, 50, 100]


def test_a_class_without_test_clips_has_no_bar_but_keeps_its_place():
    """NaN in memory, None as read from results.json's null: no bar (not a bar of 0 %)."""
    fig = plots.per_class_accuracy_figure({"A": {"walking": 0.5, "boxing": float("nan"), "running": 1.0},
                                           "B": {"walking": 0.25, "boxing": None, "running": 0.0}})
    ax = fig.axes[0]
    assert [label.get_text() for label in ax.get_xticklabels()] == ["walking", "boxing", "running"]
    bars = [bar for bar in ax.patches if bar.get_width() > 0]
    assert len(bars) == 4  # 2 runs x 3 classes, less boxing's two
    assert sorted(round(bar.get_height()) for bar in bars) == [0, 25, 50, 100]
    boxing = 1  # the x position of boxing's group
    assert not [bar for bar in bars if abs(bar.get_x() + bar.get_width() / 2 - boxing) < 0.5]


def test_learning_curves_come_from_histories():
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 2 / e, "train_accuracy": e / 10, "val_accuracy": e / 20}
               for e in (1, 2, 3)]
    fig = plots.learning_curves_figure({"run": history})
    assert [list(line.get_ydata()) for line in fig.axes[0].lines][0] == [1, 0.5, 1 / 3]
    assert [ax.get_title() for ax in fig.axes] == ["train loss", "val loss", "train accuracy", "val accuracy"]
