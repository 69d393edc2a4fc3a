"""src.compare and src.suite: the table over finished runs."""
import json

import pytest

from src.compare import compare, experiment_of
from src.kth import ACTIONS
from src.suite import planned_runs


def write_result(models_dir, run, video_acc, params=1000, epoch_s=2.0):
    (models_dir / run).mkdir(parents=True)
    (models_dir / run / "results.json").write_text(json.dumps({
        "experiment": run, "seed": 0, "num_params": params, "train_time_per_epoch_s": epoch_s,
        "latency_ms": 1.0, "throughput_clips_per_s": 100.0, "val_accuracy": 0.5,
        "clip_accuracy": video_acc - 0.1, "video_accuracy": video_acc, "synthetic": True, "device": "cpu",
        "per_class_accuracy": {a: video_acc for a in ACTIONS}}))


def test_compare_averages_seeds_and_names_missing_experiments(tmp_path, capsys):
    models, configs = tmp_path / "models", tmp_path / "configs"
    configs.mkdir()
    for name in ("base", "GRUCell", "OwnLSTM", "R2Plus1D"):
        (configs / f"{name}.yaml").write_text("{}")
    write_result(models, "GRUCell", 0.8)
    write_result(models, "GRUCell_seed1", 0.6)
    write_result(models, "OwnLSTM", 0.7, params=5000)
    summary = compare(models, tmp_path / "results", tmp_path / "imgs", configs)
    assert "no results yet for: R2Plus1D" in capsys.readouterr().out
    assert summary.loc["GRUCell", "seeds"] == 2
    assert summary.loc["GRUCell", "test video acc mean"] == pytest.approx(0.7)
    assert summary.loc["GRUCell", "test video acc std"] == pytest.approx(0.1)
    table = (tmp_path / "results" / "results.md").read_text()
    assert "70.0 ± 10.0" in table and "synthetic KTH twin" in table
    assert len((tmp_path / "results" / "results.csv").read_text().splitlines()) == 4
    assert (tmp_path / "imgs" / "accuracy_vs_params.png").stat().st_size > 0


def test_compare_without_results_says_so(tmp_path, capsys):
    assert compare(tmp_path / "models", tmp_path / "results", tmp_path / "imgs", tmp_path) is None
    assert "nothing to compare" in capsys.readouterr().out


def test_suite_runs_seeds_only_for_the_main_recurrent_experiments():
    assert experiment_of("GRUCell_seed12") == "GRUCell"
    runs = planned_runs(["GRUCell", "R2Plus1D"], seeds=3)
    assert runs == [("GRUCell", "GRUCell", 0), ("R2Plus1D", "R2Plus1D", 0),
                    ("GRUCell", "GRUCell_seed1", 1), ("GRUCell", "GRUCell_seed2", 2)]
