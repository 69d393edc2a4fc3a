"""src.compare and src.suite: the table over finished runs."""
import json

import pytest

from src.compare import compare, experiment_of
from src.kth import ACTIONS
from src.suite import planned_runs

SYNTHETIC = {"root": "data/synth", "synthetic": True, "preset": "tiny", "fingerprint": "sha1:0000"}


def write_result(models_dir, run, video_acc, params=1000, epoch_s=2.0, val_acc=0.5, data=SYNTHETIC):
    (models_dir / run).mkdir(parents=True)
    (models_dir / run / "results.json").write_text(json.dumps({
        "experiment": run, "seed": 0, "num_params": params, "epoch_time_s": epoch_s,
        "latency_ms": 1.0, "throughput_clips_per_s": 100.0, "val_accuracy": val_acc,
        "clip_accuracy": video_acc - 0.1, "video_accuracy": video_acc, "synthetic": True, "device": "cpu",
        "per_class_accuracy": {a: video_acc for a in ACTIONS},
        **({"provenance": {"data": data, "train_data": data, "train_device": "cpu"}} if data else {})}))


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
    assert summary.loc["GRUCell", "test video acc std"] == pytest.approx(0.1 * 2 ** 0.5)  # sample std, ddof=1
    table = (tmp_path / "results" / "results.md").read_text()
    assert "70.0 ± 14.1" in table and "synthetic twin (preset tiny)" in table
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


def test_compare_never_mixes_data_and_leaves_out_results_without_provenance(tmp_path, capsys):
    models, configs = tmp_path / "models", tmp_path / "configs"
    configs.mkdir()
    synthetic = {"root": "data/synth", "synthetic": True, "preset": "full", "fingerprint": "sha1:aaaa"}
    real = {"root": "data/kth", "synthetic": False, "preset": None, "fingerprint": "sha1:bbbb"}
    write_result(models, "GRUCell", 0.9, val_acc=0.6, data=synthetic)
    write_result(models, "OwnGRU", 0.5, val_acc=0.8, data=synthetic)
    write_result(models, "LSTMCell", 0.3, val_acc=0.7, data=synthetic)
    write_result(models, "GRUCell_seed1", 0.2, data=real)
    write_result(models, "OwnLSTM", 0.99, data=None)  # made by older code
    summary = compare(models, tmp_path / "results", tmp_path / "imgs", configs)
    out = capsys.readouterr().out
    assert "left out 1 results.json without provenance (made by older code): OwnLSTM" in out
    assert "left out 1 runs made on other data (real KTH: GRUCell_seed1)" in out
    assert list(summary.index) == ["OwnGRU", "LSTMCell", "GRUCell"]  # by validation accuracy, not by test
    table = (tmp_path / "results" / "results.md").read_text()
    assert table.startswith("Measured on the synthetic twin (preset full), **not on real KTH**")
    assert "sample standard deviation (ddof=1)" in table and "validation included" in table
    assert "99.0" not in table and "20.0" not in table
