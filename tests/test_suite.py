"""src/suite.py: shards of the planned runs and the locks that keep a run from starting twice; a saved result
is reused only when made on the same data with the same config."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import src.suite
from src.compare import compare
from src.suite import parse_shard, planned_runs, shard
from src.training.runlock import LOCK_NAME

REPO = Path(__file__).resolve().parents[1]
TINY = ["model.emb_dim=16", "model.hidden_dim=16", "model.num_layers=1", "data.max_frames=4",
        "data.train_clips_per_video=1", "data.eval_clips_per_video=2", "train.batch_size=8", "train.epochs=1",
        "train.warmup_epochs=0", "eval.latency_repeats=1"]


def test_shards_are_disjoint_and_cover_every_run():
    runs = planned_runs(["GRUCell", "LSTMCell", "OwnGRU", "R2Plus1D"], seeds=3)
    for n in (1, 2, 3, 5, 20):
        slices = [shard(runs, k, n) for k in range(1, n + 1)]
        assert sorted(run for part in slices for run in part) == sorted(runs)
        assert max(map(len, slices)) - min(map(len, slices)) <= 1  # balanced
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/2", "3/2", "2", "a/b"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


def test_a_run_claimed_by_another_shard_is_skipped(tmp_path, monkeypatch, capsys):
    models = tmp_path / "models"
    (models / "GRUCell").mkdir(parents=True)
    (models / "GRUCell" / LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getppid()}))
    monkeypatch.chdir(tmp_path)
    src.suite.main(["--configs", str(REPO / "configs"), "--only", "GRUCell", "--seeds", "1",
                    "--models-dir", str(models)])
    assert f"GRUCell: claimed by process {os.getppid()}" in capsys.readouterr().out
    assert sorted(p.name for p in (models / "GRUCell").iterdir()) == [LOCK_NAME]  # nothing trained


def test_two_shards_at_once_run_every_planned_run_exactly_once(tiny_prepared, tmp_path):
    models, tboard = tmp_path / "models", tmp_path / "tboard"
    command = [sys.executable, "-m", "src.suite", "--configs", str(REPO / "configs"), "--only", "GRUCell", "OwnGRU",
               "--seeds", "1", "--data", str(tiny_prepared), "--models-dir", str(models),
               "--set", *TINY, f"log.tboard_dir={tboard}"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    shards = [subprocess.Popen([*command, "--shard", f"{k}/2"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True) for k in (1, 2)]
    outputs = [process.communicate(timeout=600)[0] for process in shards]
    assert [process.returncode for process in shards] == [0, 0], outputs

    planned = [run for _, run, _ in planned_runs(["GRUCell", "OwnGRU"], seeds=1)]
    assert "shard 1/2: 1 run(s): GRUCell\n" in outputs[0] and "shard 2/2: 1 run(s): OwnGRU\n" in outputs[1]
    for run in planned:
        assert (models / run / "results.json").is_file(), run
        assert not (models / run / LOCK_NAME).exists(), run
        assert len(list((tboard / run).glob("events.out.tfevents.*"))) <= 2, run  # trained once (+ hparams)
        assert sum(f"{run}: test video accuracy" in out for out in outputs) == 1, run
    # the comparison afterwards sees every run
    compare(models_dir=models, out_dir=tmp_path / "table", imgs_dir=tmp_path / "imgs", configs_dir=REPO / "configs")
    table = (tmp_path / "table" / "results.csv").read_text()
    assert all(run in table for run in planned)
    assert len(table.strip().splitlines()) == 1 + len(planned)


def run_suite(tmp_path, data, *extra):
    src.suite.main(["--configs", str(REPO / "configs"), "--only", "GRUCell", "OwnGRU", "--seeds", "1",
                    "--models-dir", str(tmp_path / "models"), "--data", str(data),
                    "--set", *TINY, f"log.tboard_dir={tmp_path / 'tboard'}", *extra])


def test_suite_reuses_results_on_the_same_data_and_trains_again_on_real_kth(tiny_prepared, tiny_unmarked, tmp_path,
                                                                              monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # --models-dir is ./models, the default: tables to ./results, figures to ./imgs
    results = {run: tmp_path / "models" / run / "results.json" for run in ("GRUCell", "OwnGRU")}
    run_suite(tmp_path, tiny_prepared)
    assert "synthetic twin (preset tiny), **not on real KTH**" in (tmp_path / "results" / "results.md").read_text()
    made = {run: path.stat().st_mtime_ns for run, path in results.items()}
    capsys.readouterr()

    run_suite(tmp_path, tiny_prepared)  # the same data and config: nothing is trained
    assert "training again" not in capsys.readouterr().out
    assert {run: path.stat().st_mtime_ns for run, path in results.items()} == made

    run_suite(tmp_path, tiny_unmarked)  # prepared data not marked synthetic: real KTH
    out = capsys.readouterr().out
    for run in ("GRUCell", "OwnGRU"):
        assert (f"{run}: results.json was made on {tiny_prepared} (synthetic), now {tiny_unmarked} (real KTH): "
                f"training again") in out
        assert json.loads(results[run].read_text())["provenance"]["data"]["synthetic"] is False
    table = (tmp_path / "results" / "results.md").read_text()
    assert table.startswith("Measured on real KTH") and "synthetic" not in table
    csv = (tmp_path / "results" / "results.csv").read_text()
    assert "synthetic" not in csv and len(csv.splitlines()) == 3  # header + the two real-KTH runs


@pytest.mark.parametrize("models_dir, flags, tboard, out, imgs", [
    ("models", [], None, "results", "imgs"),  # the default: the folders of record, the config's log.tboard_dir
    ("trial", [], "trial/tboard_logs", "trial", "trial"),  # any other folder takes every output with it
    ("trial", ["--out", "t", "--imgs", "f", "--tboard-dir", "e"], "e", "t", "f"),  # unless the flags say otherwise
])
def test_the_suite_sends_tables_figures_and_events_under_the_folders_given(tmp_path, monkeypatch, models_dir, flags,
                                                                          tboard, out, imgs):
    monkeypatch.chdir(tmp_path)
    calls = {}
    monkeypatch.setattr(src.suite, "run_experiment", lambda name, run, seed, overrides, **_: calls.update(
        overrides=overrides) or {"video_accuracy": 0.5})
    monkeypatch.setattr(src.suite, "compare", lambda **kwargs: calls.update(compare=kwargs))
    src.suite.main(["--configs", str(REPO / "configs"), "--only", "GRUCell", "--seeds", "1", "--models-dir", models_dir,
                    *flags, "--set", "train.epochs=1"])
    assert calls["overrides"] == [f"log.models_dir={models_dir}", *([f"log.tboard_dir={tboard}"] if tboard else []),
                                  "train.epochs=1"]  # the user's --set last: it wins
    assert (Path(calls["compare"]["out_dir"]), Path(calls["compare"]["imgs_dir"])) == (Path(out), Path(imgs))


def test_main_experiments_get_their_seeds_and_variants_theirs():
    runs = planned_runs(["GRUCell", "GRUCell_NoScheduler", "R2Plus1D"], seeds=5, variant_seeds=3)
    seeds_of = {name: sorted(seed for n, _, seed in runs if n == name) for name in ("GRUCell", "GRUCell_NoScheduler",
                                                                                  "R2Plus1D")}
    assert seeds_of == {"GRUCell": [0, 1, 2, 3, 4], "GRUCell_NoScheduler": [0, 1, 2], "R2Plus1D": [0, 1, 2, 3, 4]}
    assert [run for _, run, _ in runs[:3]] == ["GRUCell", "GRUCell_NoScheduler", "R2Plus1D"]  # every one first
    assert ("GRUCell", "GRUCell_seed4", 4) in runs and len(runs) == len(set(runs)) == 13
