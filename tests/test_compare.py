"""src.analysis and its command line src.compare: the table over finished runs."""
import dataclasses
import json
import logging
from pathlib import Path

import pytest

from src.analysis import (
    best_of,
    compare,
    experiment_of,
    kfold_summary,
    load_runs,
    output_dirs,
    paired_differences,
    seeds_for_half_width,
    smallest_detectable_difference,
    t_half_width,
    t_interval,
)
from src.compare import main
from src.config import CONFIG_DIR, load_plan
from src.data.sources.kth import ACTIONS
from src.planning import planned_suite_runs

REPO = Path(__file__).resolve().parents[1]
SYNTHETIC = {"root": "data/synth", "synthetic": True, "preset": "tiny", "fingerprint": "sha1:0000"}
COURSE_SPLIT = {"protocol": "course", "fold": None,
                "groups": {"train": list(range(1, 15)), "val": [15, 16], "test": list(range(17, 26))}}


@pytest.fixture(autouse=True)
def info_logs(caplog):
    """src.analysis reports what it leaves out and writes through logging, at INFO: capture it."""
    caplog.set_level(logging.INFO)


def write_plan(configs, experiments=None):
    """``configs/suite.yaml`` with its experiments' configs (empty files: compare only needs them to exist):
    ``experiments`` as main ones, no comparison; default the repository's plan."""
    configs.mkdir(exist_ok=True)
    if experiments is None:
        (configs / "suite.yaml").write_text((CONFIG_DIR / "suite.yaml").read_text())
        experiments = load_plan().experiments
    else:
        (configs / "suite.yaml").write_text("experiments:\n" + "".join(f"  {name}: main\n" for name in experiments))
    for name in experiments:
        (configs / f"{name}.yaml").write_text("{}")
    return configs


def write_result(models_dir, run, video_acc, params=1000, epoch_s=2.0, val_acc=0.5, data=SYNTHETIC, seed=0,
                 classes=ACTIONS, provenance=None):
    """A fake results.json; ``provenance`` (more of its keys: split, persons; the course split unless it says
    otherwise) and ``classes`` other than ACTIONS as src.evaluate writes them, else with per_class_accuracy over
    KTH's actions and no "classes"."""
    (models_dir / run).mkdir(parents=True)
    provenance = {"data": data, "train_data": data, "train_device": "cpu", "split": COURSE_SPLIT, **(provenance or {})}
    (models_dir / run / "results.json").write_text(json.dumps({
        "experiment": run, "seed": seed, "num_params": params, "epoch_time_s": epoch_s,
        "latency_ms": 1.0, "throughput_clips_per_s": 100.0, "val_accuracy": val_acc,
        "clip_accuracy": video_acc - 0.1, "video_accuracy": video_acc, "synthetic": True, "device": "cpu",
        **({} if classes == ACTIONS else {"classes": list(classes)}),
        "per_class_accuracy": {name: video_acc for name in classes},
        **({"provenance": provenance} if data else {})}))


def test_compare_averages_seeds_and_names_missing_experiments(tmp_path, caplog):
    models, configs = tmp_path / "models", write_plan(tmp_path / "configs", ["GRUCell", "OwnLSTM", "R2Plus1D"])
    write_result(models, "GRUCell", 0.8)
    write_result(models, "GRUCell_seed1", 0.6, seed=1)
    write_result(models, "OwnLSTM", 0.7, params=5000)
    summary = compare(models, tmp_path / "results", tmp_path / "imgs", configs)
    assert "no results yet for: R2Plus1D" in caplog.text
    assert summary.loc["GRUCell", "seeds"] == 2
    assert summary.loc["GRUCell", "test video acc mean"] == pytest.approx(0.7)
    assert summary.loc["GRUCell", "test video acc std"] == pytest.approx(0.1 * 2 ** 0.5)  # sample std, ddof=1
    table = (tmp_path / "results" / "results.md").read_text()
    assert "70.0 ± 14.1" in table and "synthetic twin (preset tiny)" in table
    assert len((tmp_path / "results" / "results.csv").read_text().splitlines()) == 4
    assert (tmp_path / "imgs" / "accuracy_vs_params.png").stat().st_size > 0


def write_seeds(models_dir, experiment, video_accs, val_acc=0.5, seeds=None):
    """One fake run per seed (0, 1, ... unless ``seeds``), named like src.suite's runs."""
    for seed, acc in zip(seeds if seeds is not None else range(len(video_accs)), video_accs):
        run = experiment if seed == 0 else f"{experiment}_seed{seed}"
        write_result(models_dir, run, acc, val_acc=val_acc, seed=seed)


# Student t quantiles at 2 degrees of freedom, by hand: t_p = (2p - 1) / sqrt(2p(1 - p)) for df = 2
T_975_2 = 4.302653  # 0.95 / sqrt(0.04875)
T_80_2 = 1.060660  # 0.6 / sqrt(0.32)
T_975_3 = 3.182446  # Student t quantile 0.975 at 3 degrees of freedom, from a table


def test_t_interval_is_the_student_t_interval_of_the_mean():
    low, high = t_interval([0.8, 0.9, 1.0])
    half_width = T_975_2 * 0.1 / 3 ** 0.5  # sample std of [0.8, 0.9, 1.0] is 0.1
    assert (low, high) == pytest.approx((0.9 - half_width, 0.9 + half_width), abs=1e-6)
    assert all(x != x for x in t_interval([0.7]))  # NaN: no interval from one value


def test_power_of_a_paired_comparison_from_known_numbers():
    # sd 0.01 over n = 3 pairs: half-width t(0.975, 2)·s/√3, detectable (t(0.975, 2) + t(0.8, 2))·s/√3
    assert t_half_width(0.01, 3) == pytest.approx(T_975_2 * 0.01 / 3 ** 0.5, abs=1e-7)  # 0.0248
    assert smallest_detectable_difference(0.01, 3) == pytest.approx((T_975_2 + T_80_2) * 0.01 / 3 ** 0.5,
                                                                     abs=1e-7)  # 0.0310
    # ±2 points at sd 0.01: n = 3 gives 0.0248 > 0.02, n = 4 gives t(0.975, 3)·0.01/2 = 0.0159
    assert T_975_2 * 0.01 / 3 ** 0.5 > 0.02 >= T_975_3 * 0.01 / 2
    assert seeds_for_half_width(0.01) == 4
    # sd 0.05: the normal approximation says 25; the t quantiles want 27 (the smallest n that gets there)
    n = seeds_for_half_width(0.05)
    assert n == 27 and t_half_width(0.05, n) <= 0.02 < t_half_width(0.05, n - 1)
    assert seeds_for_half_width(0.0) == 2  # no spread: the fewest seeds with an interval
    assert all(x != x for x in (t_half_width(0.01, 1), smallest_detectable_difference(0.01, 1),
                                seeds_for_half_width(float("nan"))))  # NaN: no std from one pair


def test_results_table_has_t_interval_over_seeds_and_a_dash_for_a_single_run(tmp_path):
    models, configs = tmp_path / "models", write_plan(tmp_path / "configs", ["GRUCell", "OwnLSTM"])
    write_seeds(models, "GRUCell", [0.8, 0.9, 1.0])
    write_seeds(models, "OwnLSTM", [0.7])
    summary = compare(models, tmp_path / "results", tmp_path / "imgs", configs)
    half_width = T_975_2 * 0.1 / 3 ** 0.5
    assert summary.loc["GRUCell", "test video acc ci low"] == pytest.approx(0.9 - half_width, abs=1e-6)
    assert summary.loc["GRUCell", "test video acc ci high"] == pytest.approx(0.9 + half_width, abs=1e-6)
    lines = (tmp_path / "results" / "results.md").read_text().splitlines()
    header = [cell.strip() for cell in next(line for line in lines if line.startswith("| experiment")).split("|")]
    ci = header.index("test video acc % 95% CI")
    row = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")] for line in lines
           if line.startswith("| ") and not line.startswith("| experiment")}
    assert row["GRUCell"][ci] == f"[{100 * (0.9 - half_width):.1f}, {100 * (0.9 + half_width):.1f}]" == "[65.2, 114.8]"
    assert row["GRUCell"][header.index("test video acc %")] == "90.0 ± 10.0"
    assert row["OwnLSTM"][ci] == "–"
    assert "t-interval over seeds" in lines[-1] and "n-1 degrees of freedom, n = 'seeds'" in lines[-1]


def make_comparison_runs(models):
    """Fake runs for the comparisons of configs/suite.yaml; differences A - B per seed in comments."""
    write_seeds(models, "LSTMCell", [0.70, 0.72, 0.74], val_acc=0.5)
    write_seeds(models, "OwnLSTM", [0.80, 0.84, 0.85, 0.10], val_acc=0.6)  # +0.10, +0.12, +0.11; seed 3 unpaired
    write_seeds(models, "GRUCell", [0.60, 0.62, 0.64], val_acc=0.9)  # best recurrent by validation, worst on test
    write_seeds(models, "OwnGRU", [0.65, 0.57, 0.65], val_acc=0.7)  # +0.05, -0.05, +0.01
    write_seeds(models, "GRUCell_NoScheduler", [0.5], seeds=[1])  # one seed in common with GRUCell
    write_seeds(models, "R2Plus1D", [0.50, 0.53], val_acc=0.95)  # -0.10, -0.09 against GRUCell
    # no LSTMCell_NoScheduler


def test_paired_differences_pair_common_seeds_and_give_verdicts(tmp_path):
    make_comparison_runs(tmp_path / "models")
    runs, _ = load_runs(tmp_path / "models")
    table = paired_differences(runs).set_index("A")
    own_lstm = table.loc["OwnLSTM"]
    assert own_lstm["B"] == "LSTMCell" and own_lstm["n"] == 3 and own_lstm["seeds"] == "0, 1, 2"
    half_width = T_975_2 * 0.01 / 3 ** 0.5  # differences 0.10, 0.12, 0.11: mean 0.11, sample std 0.01
    assert own_lstm["video diff mean"] == pytest.approx(0.11)
    assert own_lstm["video diff std"] == pytest.approx(0.01)
    assert (own_lstm["video diff ci low"], own_lstm["video diff ci high"]) == pytest.approx(
        (0.11 - half_width, 0.11 + half_width), abs=1e-6)
    assert own_lstm["clip diff mean"] == pytest.approx(0.11)  # the fakes' clip accuracy is video - 0.1
    assert own_lstm["verdict"] == "OwnLSTM higher"
    assert own_lstm["video half width"] == pytest.approx(half_width, abs=1e-7)
    assert own_lstm["video detectable diff"] == pytest.approx((T_975_2 + T_80_2) * 0.01 / 3 ** 0.5, abs=1e-7)
    assert own_lstm["video seeds for 2 pp"] == 4 and own_lstm["clip seeds for 2 pp"] == 4
    assert table.loc["OwnGRU", "verdict"] == "no measurable difference"
    assert table.loc["OwnGRU", "video diff ci low"] < 0 < table.loc["OwnGRU", "video diff ci high"]
    assert table.loc["GRUCell", "n"] == 1 and table.loc["GRUCell", "seeds"] == "1"
    assert table.loc["GRUCell", "verdict"] == "needs ≥ 2 paired seeds (have 1)"
    assert table.loc["GRUCell", "video diff mean"] == pytest.approx(0.62 - 0.5)
    assert table.loc["GRUCell", ["video half width", "video detectable diff", "video seeds for 2 pp"]].isna().all()
    r2plus1d = table.loc["R2Plus1D"]  # GRUCell: best validation accuracy, though OwnLSTM is best on test
    assert r2plus1d["B"] == "GRUCell" and r2plus1d["B chosen as"] == "best recurrent by val acc"
    assert r2plus1d["video diff mean"] == pytest.approx(-0.095) and r2plus1d["verdict"] == "GRUCell higher"
    assert "LSTMCell" not in table.index  # LSTMCell vs LSTMCell_NoScheduler: no runs of the latter
    assert table.attrs["skipped"] == ["LSTMCell vs LSTMCell_NoScheduler: no runs of LSTMCell_NoScheduler",
                                      "GRUCell_EveryStepLoss vs GRUCell: no runs of GRUCell_EveryStepLoss"]
    only_r2plus1d = dataclasses.replace(load_plan(), comparisons=[("R2Plus1D", "best recurrent")])
    assert paired_differences(runs[runs["experiment"] == "R2Plus1D"], only_r2plus1d).empty


def test_a_tie_for_the_best_on_validation_is_compared_with_each_tied_experiment(tmp_path):
    # OwnGRU and OwnLSTM: the same clips right on validation, stored in float32 (0.98166668 and 0.98166662)
    write_seeds(tmp_path / "models", "OwnGRU", [0.80, 0.82], val_acc=0.98166668)
    write_seeds(tmp_path / "models", "OwnLSTM", [0.84, 0.86], val_acc=0.98166662)
    write_seeds(tmp_path / "models", "GRUCell", [0.95, 0.96], val_acc=0.9)  # best on test, not on validation
    write_seeds(tmp_path / "models", "R2Plus1D", [0.90, 0.91], val_acc=0.99)
    runs, _ = load_runs(tmp_path / "models")
    assert best_of(runs, ["GRUCell", "OwnLSTM", "OwnGRU"]) == ["OwnLSTM", "OwnGRU"]
    assert best_of(runs, ["LSTMCell"]) == []
    only_r2plus1d = dataclasses.replace(load_plan(), comparisons=[("R2Plus1D", "best recurrent")])
    table = paired_differences(runs, only_r2plus1d)
    assert list(table["B"]) == ["OwnLSTM", "OwnGRU"]
    assert set(table["B chosen as"]) == {"best recurrent by val acc, a 2-way tie"}
    assert list(table["video diff mean"]) == pytest.approx([0.055, 0.095])


def test_compare_writes_the_paired_comparisons(tmp_path, caplog):
    configs = write_plan(tmp_path / "configs")
    make_comparison_runs(tmp_path / "models")
    compare(tmp_path / "models", tmp_path / "results", tmp_path / "imgs", configs)
    assert "comparison skipped, LSTMCell vs LSTMCell_NoScheduler: no runs of LSTMCell_NoScheduler" in caplog.text
    text = (tmp_path / "results" / "comparisons.md").read_text()
    assert text.startswith("Measured on the synthetic twin (preset tiny)")
    own_lstm = next(line for line in text.splitlines() if line.startswith("| OwnLSTM"))
    cells = [cell.strip() for cell in own_lstm.split("|")[1:-1]]
    assert cells == ["OwnLSTM", "LSTMCell", "3", "+11.0 ± 1.0", "[+8.5, +13.5]", "+11.0 ± 1.0", "[+8.5, +13.5]",
                     "OwnLSTM higher", "2.5", "3.1", "4"]  # half-width, detectable at power 0.8, seeds for ±2 pp
    header = next(line for line in text.splitlines() if line.startswith("| A "))
    assert all(name in header for name in ("video CI half-width (pp)", "smallest detectable video diff (pp)",
                                           "seeds for video CI ±2 pp"))
    gru = next(line for line in text.splitlines() if line.startswith("| GRUCell "))
    assert [cell.strip() for cell in gru.split("|")[1:-1]][-3:] == ["–", "–", "–"]  # one paired seed
    assert "(t(0.975, n-1) + t(0.8, n-1))·s/√n" in text and "power 0.8" in text and "two-sided paired t-test" in text
    assert "| R2Plus1D | GRUCell (best recurrent by val acc) |" in text.replace("  ", "")
    assert "Skipped LSTMCell vs LSTMCell_NoScheduler: no runs of LSTMCell_NoScheduler." in text


def test_outputs_of_a_models_dir_other_than_the_default_stay_in_it(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    assert output_dirs("models") == output_dirs(tmp_path / "models") == {
        "out": Path("results"), "imgs": Path("imgs"), "tboard": None}  # the folders of record: default models/ only
    trial = tmp_path / "trial"
    assert output_dirs(trial) == {"out": trial, "imgs": trial, "tboard": trial / "tboard_logs"}
    configs = write_plan(tmp_path / "configs")
    make_comparison_runs(trial)
    main(["--models-dir", str(trial), "--configs", str(configs)])
    assert sorted(p.name for p in trial.iterdir() if p.is_file()) == [
        "accuracy_vs_epoch_time.png", "accuracy_vs_params.png", "comparisons.md", "results.csv", "results.md"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configs", "trial"]  # no results/, no imgs/
    assert len(load_runs(trial)[0]) == 16  # the tables beside the runs are not taken for runs
    assert f"-> {trial}/results.md" in caplog.text
    main(["--models-dir", str(trial), "--configs", str(configs), "--out", "table", "--imgs", "figures"])
    assert (tmp_path / "table" / "comparisons.md").is_file()
    assert (tmp_path / "figures" / "accuracy_vs_params.png").is_file()


@pytest.mark.parametrize("flag, value, message", [
    ("--models-dir", "absent", "--models-dir absent: no such folder"),
    ("--models-dir", "a_file", "--models-dir a_file: not a folder"),
    ("--configs", "absent", "--configs absent: no such folder"),
    ("--out", "a_file", "--out a_file: a file, not a folder"),
    ("--imgs", "a_file", "--imgs a_file: a file, not a folder"),
])
def test_compare_refuses_a_bad_folder_in_one_line(tmp_path, monkeypatch, capsys, flag, value, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "configs").mkdir()
    (tmp_path / "a_file").write_text("")
    with pytest.raises(SystemExit) as exit:
        main([flag, value])
    assert exit.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "configs", "models"]


def test_compare_without_results_says_so(tmp_path, caplog):
    assert compare(tmp_path / "models", tmp_path / "results", tmp_path / "imgs", write_plan(tmp_path / "c")) is None
    assert "nothing to compare" in caplog.text


def test_suite_runs_seeds_only_for_the_main_recurrent_experiments():
    assert experiment_of("GRUCell_seed12") == "GRUCell"
    runs = planned_suite_runs({"GRUCell": "main", "GRUCell_NoScheduler": "variant"}, seeds=3, variant_seeds=1)
    assert runs == [("GRUCell", "GRUCell", 0, None), ("GRUCell_NoScheduler", "GRUCell_NoScheduler", 0, None),
                    ("GRUCell", "GRUCell_seed1", 1, None), ("GRUCell", "GRUCell_seed2", 2, None)]


def test_compare_never_mixes_data_and_leaves_out_results_without_provenance(tmp_path, caplog):
    models, configs = tmp_path / "models", write_plan(tmp_path / "configs", ["GRUCell"])
    synthetic = {"root": "data/synth", "synthetic": True, "preset": "full", "fingerprint": "sha1:aaaa"}
    real = {"root": "data/kth", "synthetic": False, "preset": None, "fingerprint": "sha1:bbbb"}
    write_result(models, "GRUCell", 0.9, val_acc=0.6, data=synthetic)
    write_result(models, "OwnGRU", 0.5, val_acc=0.8, data=synthetic)
    write_result(models, "LSTMCell", 0.3, val_acc=0.7, data=synthetic)
    write_result(models, "GRUCell_seed1", 0.2, data=real)
    write_result(models, "OwnLSTM", 0.99, data=None)  # made by older code
    write_result(models, "LSTMCell_seed1", 0.99, data=synthetic, provenance={"split": None})  # older code: no split
    summary = compare(models, tmp_path / "results", tmp_path / "imgs", configs)
    out = caplog.text
    assert "left out 2 results.json without provenance (made by older code): LSTMCell_seed1, OwnLSTM" in out
    assert "left out 1 runs made on other data (real KTH: GRUCell_seed1)" in out
    assert list(summary.index) == ["OwnGRU", "LSTMCell", "GRUCell"]  # by validation accuracy, not by test
    table = (tmp_path / "results" / "results.md").read_text()
    assert table.startswith("Measured on the synthetic twin (preset full), **not on real KTH**")
    assert "sample standard deviation (ddof=1)" in table and "validation included" in table
    assert "99.0" not in table and "20.0" not in table


def write_fold_result(models_dir, run, fold, folds, videos, correct, val_acc=0.5, seed=0, split_seed=0):
    """A fake results.json of a K-fold run (data.split kfold): ``correct`` of its test ``videos`` right."""
    write_result(models_dir, run, correct / len(videos), val_acc=val_acc, seed=seed)
    path = models_dir / run / "results.json"
    results = json.loads(path.read_text())
    results.update(num_test_videos=len(videos), predictions=[
        {"video_id": video, "start": start, "label": 0, "predicted": 0, "probabilities": [1.0]}
        for video in videos for start in (0, 5)],  # two clips per video
        config={"data": {"split": "kfold", "folds": folds, "fold": fold, "split_seed": split_seed}})
    path.write_text(json.dumps(results))


def videos(first, count):
    return [f"person{first + i:02d}_boxing_d1" for i in range(count)]


def make_fold_runs(models):
    """GRUCell: 3 folds of 10, 20 and 10 videos with 9, 10 and 3 right (90 %, 50 %, 30 %: pooled 22/40 = 55 %,
    mean over folds 56.7 %); OwnGRU: fold 2 of 3 missing; LSTMCell: two folds that test the same video."""
    write_fold_result(models, "GRUCell_fold1", 1, 3, videos(0, 10), 9, val_acc=0.8)
    write_fold_result(models, "GRUCell_fold2", 2, 3, videos(10, 20), 10, val_acc=0.7)
    write_fold_result(models, "GRUCell_fold3", 3, 3, videos(30, 10), 3, val_acc=0.6)
    write_fold_result(models, "OwnGRU_fold1", 1, 3, videos(0, 10), 5)
    write_fold_result(models, "OwnGRU_fold3", 3, 3, videos(30, 10), 5)
    write_fold_result(models, "LSTMCell_fold1", 1, 2, videos(0, 10), 5)
    write_fold_result(models, "LSTMCell_fold2", 2, 2, videos(9, 10), 5, split_seed=1)


def test_kfold_runs_are_pooled_over_their_folds_and_an_incomplete_set_is_named(tmp_path, caplog):
    assert experiment_of("GRUCell_fold3") == experiment_of("GRUCell_fold3_seed2") == "GRUCell"
    models, configs = tmp_path / "models", write_plan(tmp_path / "configs", ["GRUCell", "OwnGRU", "LSTMCell"])
    make_fold_runs(models)
    write_seeds(models, "GRUCell", [0.8, 0.9])  # runs of the course's split: their own table, never mixed in
    runs, _ = load_runs(models)
    summary = kfold_summary(runs[runs["fold"].notna()]).set_index("experiment")
    gru = summary.loc["GRUCell"]
    assert (gru["problem"], gru["folds"], gru["test videos"], gru["correct test videos"]) == ("", 3, 40, 22)
    assert gru["pooled test video acc"] == pytest.approx(22 / 40)  # correct videos / all videos, each tested once
    assert gru["test video acc mean"] == pytest.approx((0.9 + 0.5 + 0.3) / 3)  # the mean over folds differs
    assert gru["test video acc std"] == pytest.approx(0.305505, abs=1e-6)  # sample std over the 3 folds
    assert gru["val acc mean"] == pytest.approx(0.7)
    assert summary.loc["OwnGRU", "problem"] == "fold 2 missing"
    assert summary.loc["OwnGRU", ["pooled test video acc", "test video acc mean"]].isna().all()  # not averaged
    assert summary.loc["LSTMCell", "problem"].startswith("1 video(s) tested in more than one fold (e.g. person09_")
    assert list(summary.index) == ["GRUCell", "LSTMCell", "OwnGRU"]  # complete sets first

    summary = compare(models, tmp_path / "results", tmp_path / "imgs", configs)
    out = caplog.text
    assert "K-fold set not averaged, OwnGRU seed 0 (3 folds): fold 2 missing" in out
    assert list(summary.index) == ["GRUCell"] and summary.loc["GRUCell", "seeds"] == 2  # the course's runs alone
    assert len((tmp_path / "results" / "results.csv").read_text().splitlines()) == 3
    assert "fold" not in (tmp_path / "results" / "results.md").read_text()
    assert len((tmp_path / "results" / "kfold.csv").read_text().splitlines()) == 1 + 7
    text = (tmp_path / "results" / "kfold.md").read_text()
    assert text.startswith("K-fold cross-validation on the synthetic twin (preset tiny)")
    row = next(line for line in text.splitlines() if line.startswith("| GRUCell"))
    assert [cell.strip() for cell in row.split("|")[1:-1]] == ["GRUCell", "0", "3", "40", "55.0", "56.7 ± 30.6",
                                                              "46.7 ± 30.6", "70.0 ± 10.0"]
    assert "every video is tested exactly once" in text
    assert ("Not averaged: OwnGRU seed 0, 3 folds (OwnGRU_fold1, OwnGRU_fold3): fold 2 missing." in text
            and "Not averaged: LSTMCell seed 0, 2 folds" in text)


def test_kfold_runs_alone_make_only_the_kfold_tables(tmp_path, caplog):
    models, configs = tmp_path / "models", write_plan(tmp_path / "configs", ["GRUCell"])
    write_fold_result(models, "GRUCell_fold1", 1, 2, videos(0, 4), 4)
    write_fold_result(models, "GRUCell_fold1_seed1", 1, 2, videos(0, 4), 3, seed=1)
    write_fold_result(models, "GRUCell_fold2_seed1", 2, 2, videos(4, 4), 2, seed=1)
    assert compare(models, tmp_path / "results", tmp_path / "imgs", configs) is None
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["kfold.csv", "kfold.md"]
    text = (tmp_path / "results" / "kfold.md").read_text()
    assert "| GRUCell      | 1      | 2" in text and "62.5" in text  # seed 1: (3 + 2) / 8
    assert "Not averaged: GRUCell seed 0, 2 folds (GRUCell_fold1): fold 2 missing." in text
    assert "no results yet" not in caplog.text


def test_compare_refuses_a_bad_suite_yaml_in_one_line(tmp_path, capsys):
    configs = write_plan(tmp_path / "configs", ["GRUCell"])
    (configs / "suite.yaml").write_text("experiments:\n  GRUCell: main\ncomparisons:\n  - [GRUCell, Ghost]\n")
    make_comparison_runs(tmp_path / "models")
    with pytest.raises(SystemExit) as exit:
        main(["--models-dir", str(tmp_path / "models"), "--configs", str(configs), "--out", str(tmp_path / "out")])
    assert exit.value.code == 2 and not (tmp_path / "out").exists()
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "suite.yaml: comparisons[0]" in errors[0]
    assert "'Ghost' is not in experiments" in errors[0]


def test_per_class_columns_are_the_classes_of_the_runs_data_and_the_header_says_their_split(tmp_path):
    """Runs on a folder of four other classes, tested on a given split: the table has their four per-class
    columns (not KTH's six, which the runs on other data have), and its header names the split and test groups."""
    models, configs = tmp_path / "models", write_plan(tmp_path / "configs", ["GRUCell", "OwnGRU", "LSTMCell"])
    folder = {"root": "data/mine", "synthetic": False, "preset": None, "fingerprint": "sha1:cccc"}
    classes = ["wave", "clap", "jump rope", "sit"]
    split = {"protocol": "given", "fold": 2, "groups": {"train": ["g01"], "val": ["g02"], "test": ["g03", "g04"]}}
    for run, acc in (("GRUCell", 0.6), ("GRUCell_seed1", 0.8), ("OwnGRU", 0.5)):
        write_result(models, run, acc, data=folder, classes=classes, provenance={"split": split},
                     seed=int(run[-1] == "1"))
    write_result(models, "LSTMCell", 0.9, data=SYNTHETIC)  # KTH's six actions, on other data: left out
    summary = compare(models, tmp_path / "results", tmp_path / "imgs", configs, data_root=None)
    assert [column for column in summary.columns if column.endswith(" acc mean")] == [
        "val acc mean", "test clip acc mean", "test video acc mean", *[f"{name} acc mean" for name in classes]]
    assert summary.loc["GRUCell", "jump rope acc mean"] == pytest.approx(0.7)
    table = (tmp_path / "results" / "results.md").read_text()
    assert "given split fold 2, test groups g03, g04, model selection on validation groups" in table
    assert "test persons 17-25" not in table
    header = next(line for line in table.splitlines() if line.startswith("| experiment"))
    assert all(f"{name} acc %" in header for name in classes) and "walking" not in header
    csv = (tmp_path / "results" / "results.csv").read_text().splitlines()
    assert csv[0].split(",")[10:14] == [f"{name} acc" for name in classes] and "walking acc" not in csv[0]


def test_the_header_names_kths_persons_and_results_without_a_split_are_left_out(tmp_path, caplog):
    configs = write_plan(tmp_path / "configs", ["GRUCell"])
    schuldt = {"protocol": "schuldt2004", "fold": None,
               "groups": {"train": list(range(11, 19)), "val": [1, 4, 19, 20, 21, 23, 24, 25],
                          "test": [2, 3, 5, 6, 7, 8, 9, 10, 22]}}
    write_result(tmp_path / "new", "GRUCell", 0.8,
                 provenance={"split": schuldt, "persons": {"test": schuldt["groups"]["test"]}})  # KTH: persons too
    compare(tmp_path / "new", tmp_path / "new_table", tmp_path / "imgs", configs)
    assert ("schuldt2004 split, test persons 2, 3, 5-10, 22, model selection on validation persons"
            in (tmp_path / "new_table" / "results.md").read_text())
    # results of older code recorded no split: every committed results.json records one, so they are left out
    write_result(tmp_path / "old", "GRUCell", 0.8, provenance={"split": None})
    assert compare(tmp_path / "old", tmp_path / "old_table", tmp_path / "imgs", configs) is None
    assert "left out 1 results.json without provenance (made by older code): GRUCell" in caplog.text
    assert not (tmp_path / "old_table").exists()


def test_a_class_without_test_videos_reads_as_a_dash_not_as_zero(tmp_path):
    """A class with no test video has no accuracy: null in results.json, NaN in the frame, '–' in results.md; the
    means over seeds skip it, and its column stays (it is a class of the data) even where no run has a value."""
    models, configs = tmp_path / "models", write_plan(tmp_path / "configs", ["GRUCell", "OwnGRU"])
    folder = {"root": "data/mine", "synthetic": False, "preset": None, "fingerprint": "sha1:cccc"}
    classes = ["wave", "clap", "sit"]
    for run, seed in (("GRUCell", 0), ("GRUCell_seed1", 1), ("OwnGRU", 0)):
        write_result(models, run, 0.5, data=folder, classes=classes, seed=seed)
        path = models / run / "results.json"
        results = json.loads(path.read_text())
        results["per_class_accuracy"].update(sit=None, **({"clap": None} if run == "GRUCell_seed1" else {}))
        path.write_text(json.dumps(results))
    summary = compare(models, tmp_path / "results", tmp_path / "imgs", configs)
    assert summary.loc["GRUCell", "clap acc mean"] == pytest.approx(0.5)  # seed 1 has none: the mean of seed 0
    assert summary.loc[["GRUCell", "OwnGRU"], "sit acc mean"].isna().all()
    lines = (tmp_path / "results" / "results.md").read_text().splitlines()
    header = [cell.strip() for cell in next(line for line in lines if line.startswith("| experiment")).split("|")]
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")] for line in lines
            if line.startswith("| ") and not line.startswith("| experiment")}
    assert [rows[name][header.index("sit acc %")] for name in ("GRUCell", "OwnGRU")] == ["–", "–"]
    assert float(rows["GRUCell"][header.index("clap acc %")]) == 50 and "nan" not in "\n".join(lines)  # no ± nan
    assert "'–' in a class's column: the test split of those runs has no video of that class" in lines[-1]
    csv = (tmp_path / "results" / "results.csv").read_text().splitlines()
    assert csv[1].split(",")[csv[0].split(",").index("sit acc")] == ""


def test_the_committed_runs_load_and_have_every_class():
    runs, unknown = load_runs(REPO / "models")
    assert len(runs) == 47 and not unknown  # docs/results.md: "There are 47 runs"
    assert not runs[[f"{name} acc" for name in ACTIONS]].isna().any(axis=None)


def copy_results(source_run, models, run, experiment=None):
    """The committed results.json of ``source_run`` copied into ``models/<run>/``, its ``experiment`` made
    ``experiment`` when given (what ``python -m src.train --name`` records)."""
    results = json.loads((REPO / "models" / source_run / "results.json").read_text())
    if experiment is not None:
        results["experiment"] = experiment
    (models / run).mkdir(parents=True)
    (models / run / "results.json").write_text(json.dumps(results))
    return models / run / "results.json"


def snapshot_files(folder):
    return {path: path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def refused_compare(tmp_path, capsys, models):
    configs = write_plan(tmp_path / "configs", ["GRUCell", "OwnGRU"])
    before = snapshot_files(models)
    with pytest.raises(SystemExit) as exit:
        main(["--models-dir", str(models), "--configs", str(configs), "--out", str(tmp_path / "out"),
              "--imgs", str(tmp_path / "figures")])
    assert exit.value.code == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "figures").exists()  # nothing written
    assert snapshot_files(models) == before
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1, errors
    return errors[0]


def test_a_results_json_in_the_folder_of_another_run_is_refused(tmp_path, capsys):
    """OwnGRU's results.json copied into GRUCell's folder would make 'OwnGRU seeds=2' of one seed-0 run."""
    models = tmp_path / "models"
    original = copy_results("OwnGRU", models, "OwnGRU")
    copy = copy_results("OwnGRU", models, "GRUCell")
    error = refused_compare(tmp_path, capsys, models)
    assert error == (f"error: {copy}: the results of run 'OwnGRU', in the folder of run 'GRUCell'; move it to "
                     f"{models / 'OwnGRU'}/ (or delete it), then compare again")
    assert str(original) not in error


def test_one_run_twice_is_refused_naming_both_files(tmp_path, capsys):
    """The same seed, data and config under two run names (``--name OwnGRU_seed0``) is one run, not two seeds."""
    models = tmp_path / "models"
    first = copy_results("OwnGRU", models, "OwnGRU")
    second = copy_results("OwnGRU", models, "OwnGRU_seed0", experiment="OwnGRU_seed0")
    error = refused_compare(tmp_path, capsys, models)
    assert error == (f"error: {first} and {second}: the same run twice (experiment OwnGRU, seed 0, the same data and "
                     "config), which would count its seed twice; delete one of the two folders, then compare again")

    (models / "OwnGRU_seed0" / "results.json").unlink()
    (models / "OwnGRU_seed0").rmdir()
    copy_results("OwnGRU_seed1", models, "OwnGRU_seed1")  # another seed: two runs
    copy_results("GRUCell", models, "GRUCell")
    summary = compare(models, tmp_path / "out", tmp_path / "figures", write_plan(tmp_path / "configs"))
    assert summary.loc["OwnGRU", "seeds"] == 2 and summary.loc["GRUCell", "seeds"] == 1


def add_early(models_dir, run, clip_accuracy, subsequence_accuracy, rules=True, validation=None):
    """Early-recognition records, as src.evaluate writes them, added to ``models_dir/run/results.json``; with
    ``validation`` (``{rule: (final, per_step)}``) the state rules on the validation split too."""
    path = models_dir / run / "results.json"
    results = json.loads(path.read_text())
    steps = list(range(1, len(clip_accuracy) + 1))
    results["early_recognition"] = {"rule": "window" if rules else "recompute window, unpadded",
                                    "states": 2 if rules else None, "frame_step": 3, "steps": steps,
                                    "clip_accuracy": clip_accuracy, "clips": 10,
                                    "percents": list(range(10, 101, 10)), "subsequence_accuracy": subsequence_accuracy,
                                    "subsequences": 8, "seconds": 1.0}
    score = {"final": clip_accuracy[-1], "per_step": clip_accuracy[0]}
    results["state_rules"] = ({kind: {rule: score for rule in ("carry", "reset", "window")}
                               for kind in ("subsequences", "videos")} | {"num_subsequences": 8, "num_videos": 2}
                              if rules else None)
    if validation:
        results["state_rules"]["validation"] = {
            "subsequences": {rule: {"final": final, "per_step": per_step} for rule, (final, per_step)
                             in validation.items()}, "num_subsequences": 4}
    path.write_text(json.dumps(results))


def test_early_recognition_table_and_figure_average_the_runs_that_have_the_records(tmp_path, caplog):
    models, configs = tmp_path / "models", write_plan(tmp_path / "configs", ["GRUCell", "R2Plus1D", "OwnLSTM"])
    write_result(models, "GRUCell", 0.8, val_acc=0.9)
    write_result(models, "GRUCell_seed1", 0.6, seed=1, val_acc=0.9)
    write_result(models, "R2Plus1D", 0.7, val_acc=0.5)
    write_result(models, "OwnLSTM", 0.7, val_acc=0.4)  # no records: left out of the early tables
    add_early(models, "GRUCell", [0.2, 0.4, 0.8], [0.3] * 9 + [0.7])
    add_early(models, "GRUCell_seed1", [0.4, 0.6, 0.6], [0.5] * 9 + [0.9])
    add_early(models, "R2Plus1D", [0.5, 0.5, 0.5, 0.5], [0.1] * 10, rules=False)
    compare(models, tmp_path / "results", tmp_path / "imgs", configs)
    text = (tmp_path / "results" / "early_recognition.md").read_text()
    assert text.startswith("Measured on the synthetic twin (preset tiny)")
    lines = text.splitlines()
    gru = next(line for line in lines if line.startswith("| GRUCell"))  # the first table: steps of a clip
    assert [cell.strip() for cell in gru.split("|")[2:7]] == ["2", "30.0 ± 14.1", "50.0 ± 14.1", "70.0 ± 14.1", "–"]
    r2plus1d = next(line for line in lines if line.startswith("| R2Plus1D"))
    assert [cell.strip() for cell in r2plus1d.split("|")[2:7]] == ["1", "50.0", "50.0", "50.0", "50.0"]
    assert "| t=4 " in text and "| 100 % " in text and "80.0 ± 14.1" in text  # 100 % of GRUCell: (0.7 + 0.9) / 2
    assert "OwnLSTM" not in text and "left out 1 runs without its records: OwnLSTM" in caplog.text
    assert "after 1 step: R2Plus1D (50.0 %)" in text and "after 10 %: GRUCell (40.0 %)" in text
    rules = text[text.index("## State rules"):]
    assert "GRUCell" in rules and "R2Plus1D" not in rules.split("\n\n")[1]  # a clip model has no state rules
    assert (tmp_path / "imgs" / "early_recognition.png").stat().st_size > 0
    assert lines.index(gru) < lines.index(r2plus1d)  # rows by mean validation accuracy, as in results.md
    chosen = text[text.index("## The state rule chosen on the validation split"):]  # no run has validation numbers
    assert chosen.splitlines()[2].startswith("Not measured: no run's results.json records the state rules on the "
                                             "validation split") and "|" not in chosen


def test_the_state_rule_is_picked_on_validation_and_read_on_test(tmp_path, caplog):
    models, configs = tmp_path / "models", write_plan(tmp_path / "configs", ["GRUCell", "OwnGRU"])
    for run, seed in (("GRUCell", 0), ("GRUCell_seed1", 1), ("OwnGRU", 0), ("OwnGRU_seed1", 1)):
        write_result(models, run, 0.8, seed=seed)
    # GRUCell: carry best on validation (mean 0.75), though window is its best on test; OwnGRU: a tie, the default
    add_early(models, "GRUCell", [0.2, 0.8], [0.5] * 10, validation={"carry": (0.9, 0.8), "reset": (0.1, 0.1),
                                                                     "window": (0.9, 0.7)})
    add_early(models, "GRUCell_seed1", [0.2, 0.6], [0.5] * 10, validation={"carry": (0.9, 0.7), "reset": (0.1, 0.1),
                                                                           "window": (0.9, 0.7)})
    add_early(models, "OwnGRU", [0.2, 0.4], [0.5] * 10, validation={rule: (0.5, 0.5)
                                                                    for rule in ("carry", "reset", "window")})
    add_early(models, "OwnGRU_seed1", [0.2, 0.4], [0.5] * 10)  # no validation numbers: left out of the choice
    path = models / "GRUCell" / "results.json"
    results = json.loads(path.read_text())
    results["state_rules"]["subsequences"]["window"] = {"final": 1.0, "per_step": 1.0}
    path.write_text(json.dumps(results))
    compare(models, tmp_path / "results", tmp_path / "imgs", configs)
    text = (tmp_path / "results" / "early_recognition.md").read_text()
    chosen = text[text.index("## The state rule chosen on the validation split (%)"):]
    header, _, *rows = [line for line in chosen.splitlines() if line.startswith("|")]
    assert [cell.strip() for cell in header.split("|")[1:-1]] == [
        "experiment", "seeds", "carry: validation, every step", "reset: validation, every step",
        "window: validation, every step", "picked on validation", "picked rule: test, every step",
        "picked rule: test, end"]
    cells = {row.split("|")[1].strip(): [cell.strip() for cell in row.split("|")[2:-1]] for row in rows}
    # GRUCell: carry (0.75 against window's 0.70); its test numbers are carry's (per step 0.2, end 0.8 and 0.6)
    assert cells["GRUCell"] == ["2", "75.0 ± 7.1", "10.0 ± 0.0", "70.0 ± 0.0", "carry", "20.0 ± 0.0", "70.0 ± 14.1"]
    assert cells["OwnGRU"] == ["1", "50.0", "50.0", "50.0", "window", "20.0", "40.0"]  # the tie: the default
    assert "Left out 1 runs whose records lack the validation numbers: OwnGRU_seed1." in chosen


def test_without_early_records_no_early_table_is_written(tmp_path, caplog):
    models, configs = tmp_path / "models", write_plan(tmp_path / "configs", ["GRUCell"])
    write_result(models, "GRUCell", 0.8)
    compare(models, tmp_path / "results", tmp_path / "imgs", configs)
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["comparisons.md", "results.csv", "results.md"]
    assert not (tmp_path / "imgs" / "early_recognition.png").exists()
    assert "no run records early recognition" in caplog.text
