"""src/planning.py and its command line src/suite.py: the plan of configs/suite.yaml, K-fold runs, shards of the planned
runs and the locks that keep a run from starting twice; a saved result is reused only when made on the same data with
the same config."""
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import src.planning
import src.suite
from src.analysis import compare
from src.config import ConfigError, experiment_configs, load_plan
from src.planning import PlannedRun, parse_shard, planned_suite_runs, seeds_to_add, shard
from src.training.checkpoint import load_checkpoint
from src.training.runlock import LOCK_NAME
from tests.cli import run_cli, start_cli, wait_for

REPO = Path(__file__).resolve().parents[1]
TINY = ["model.emb_dim=16", "model.hidden_dim=16", "model.num_layers=1", "data.max_frames=4",
        "data.train_clips_per_video=1", "data.eval_clips_per_video=2", "train.batch_size=8", "train.epochs=1",
        "train.warmup_epochs=0", "eval.latency_repeats=1"]


def test_shards_are_disjoint_and_cover_every_run():
    runs = planned_suite_runs(dict.fromkeys(["GRUCell", "LSTMCell", "OwnGRU", "R2Plus1D"], "main"), seeds=3)
    for n in (1, 2, 3, 5, 20):
        slices = [shard(runs, k, n) for k in range(1, n + 1)]
        assert sorted(run for part in slices for run in part) == sorted(runs)
        assert max(map(len, slices)) - min(map(len, slices)) <= 1  # balanced
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/2", "3/2", "2", "a/b"):
        with pytest.raises(ValueError, match="K/N|between 1 and N"):  # the CLI names --shard
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


@pytest.mark.slow  # two python -m src.suite subprocesses
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

    planned = [planned.run for planned in planned_suite_runs({"GRUCell": "main", "OwnGRU": "main"}, seeds=1)]
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


@pytest.mark.slow  # a python -m src.suite subprocess, then a second
def test_sigterm_stops_the_suite_in_one_line_and_a_rerun_continues(tiny_prepared, tmp_path):
    """SIGTERM (a job scheduler's stop) while the suite trains: exit 143, one line and no traceback, the run's lock
    released and its last finished epoch kept; the same command then finishes the run from there."""
    args = ["--configs", str(REPO / "configs"), "--only", "GRUCell", "--seeds", "1", "--data", str(tiny_prepared),
            "--models-dir", str(tmp_path / "models"), "--set", *TINY]
    suite = start_cli("src.suite", *args, "train.epochs=500", cwd=tmp_path)
    wait_for(tmp_path / "models" / "GRUCell" / "last.pth", suite)
    suite.send_signal(signal.SIGTERM)
    _, err = suite.communicate(timeout=120)
    err = re.sub(r"Exception ignored in: <function tqdm.__del__.*?object has no attribute 'pos'\n", "", err, flags=re.S)
    assert suite.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == ("terminated (SIGTERM): the finished runs are kept and the run under way "
                                            "keeps its last finished epoch (last.pth); rerun the same command to "
                                            "continue"), err
    assert not list((tmp_path / "models").rglob(LOCK_NAME))
    done = load_checkpoint(tmp_path / "models" / "GRUCell" / "last.pth")["epoch"]
    rerun = run_cli("src.suite", *args, f"train.epochs={done + 1}", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"after epoch {done}" in rerun.stdout + rerun.stderr  # resumed, not trained again from scratch
    assert json.loads((tmp_path / "models" / "GRUCell" / "results.json").read_text())["epochs"] == done + 1


def run_suite(tmp_path, data, *extra):
    src.suite.main(["--configs", str(REPO / "configs"), "--only", "GRUCell", "OwnGRU", "--seeds", "1",
                    "--models-dir", str(tmp_path / "models"), "--data", str(data),
                    "--set", *TINY, f"log.tboard_dir={tmp_path / 'tboard'}", *extra])


def test_suite_reuses_results_on_the_same_data_and_trains_again_on_real_kth(tiny_prepared, tiny_unmarked, tmp_path,
                                                                              monkeypatch, caplog):
    caplog.set_level(logging.INFO)  # src.planning says why it trains again through logging
    monkeypatch.chdir(tmp_path)  # --models-dir is ./models, the default: tables to ./results, figures to ./imgs
    results = {run: tmp_path / "models" / run / "results.json" for run in ("GRUCell", "OwnGRU")}
    run_suite(tmp_path, tiny_prepared)
    assert "synthetic twin (preset tiny), **not on real KTH**" in (tmp_path / "results" / "results.md").read_text()
    made = {run: path.stat().st_mtime_ns for run, path in results.items()}
    caplog.clear()

    run_suite(tmp_path, tiny_prepared)  # the same data and config: nothing is trained
    assert "training again" not in caplog.text
    assert {run: path.stat().st_mtime_ns for run, path in results.items()} == made

    run_suite(tmp_path, tiny_unmarked)  # prepared data not marked synthetic: real KTH
    out = caplog.text
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
    monkeypatch.setattr(src.planning, "run_experiment", lambda name, run, seed, overrides, **_: calls.update(
        overrides=overrides) or {"video_accuracy": 0.5})
    monkeypatch.setattr(src.suite, "compare", lambda **kwargs: calls.update(compare=kwargs))
    src.suite.main(["--configs", str(REPO / "configs"), "--only", "GRUCell", "--seeds", "1", "--models-dir", models_dir,
                    *flags, "--set", "train.epochs=1"])
    assert calls["overrides"] == [f"log.models_dir={models_dir}", *([f"log.tboard_dir={tboard}"] if tboard else []),
                                  "train.epochs=1"]  # the user's --set last: it wins
    assert (Path(calls["compare"]["out_dir"]), Path(calls["compare"]["imgs_dir"])) == (Path(out), Path(imgs))


def test_main_experiments_get_their_seeds_and_variants_theirs():
    runs = planned_suite_runs({"GRUCell": "main", "GRUCell_NoScheduler": "variant", "R2Plus1D": "main"}, seeds=5,
                        variant_seeds=3)
    seeds_of = {name: sorted(run.seed for run in runs if run.experiment == name)
                for name in ("GRUCell", "GRUCell_NoScheduler", "R2Plus1D")}
    assert seeds_of == {"GRUCell": [0, 1, 2, 3, 4], "GRUCell_NoScheduler": [0, 1, 2], "R2Plus1D": [0, 1, 2, 3, 4]}
    assert [run.run for run in runs[:3]] == ["GRUCell", "GRUCell_NoScheduler", "R2Plus1D"]  # every one first
    assert ("GRUCell", "GRUCell_seed4", 4, None) in runs and len(runs) == len(set(runs)) == 13


def test_the_repository_plan_lists_every_config_once_with_its_role():
    plan = load_plan()
    assert list(plan.experiments) == sorted(path.stem for path in experiment_configs())  # the suite's order
    assert plan.main == ["GRUCell", "LSTMCell", "OwnConvLSTM", "OwnGRU", "OwnLSTM", "R2Plus1D"]
    assert set(plan.groups["recurrent"]) == set(plan.experiments) - {"R2Plus1D"} and plan.groups["r2plus1d"] == [
        "R2Plus1D"]
    assert ("R2Plus1D", "best recurrent") in plan.comparisons and ("OwnLSTM", "LSTMCell") in plan.comparisons
    assert plan.candidates("best recurrent") == ["LSTMCell", "GRUCell", "OwnLSTM", "OwnGRU", "OwnConvLSTM"]
    assert plan.candidates("GRUCell") is None


def fake_runs(monkeypatch):
    """src.suite.main without training: the runs it starts, as (run, seed, overrides), and compare's arguments."""
    calls = {"runs": []}
    monkeypatch.setattr(src.planning, "run_experiment", lambda name, run, seed, overrides, **_: calls["runs"].append(
        (run, seed, overrides)) or {"video_accuracy": 0.5})
    monkeypatch.setattr(src.suite, "compare", lambda **kwargs: calls.update(compare=kwargs))
    return calls


def test_the_suite_runs_the_plan_in_its_order_with_its_roles(tmp_path, monkeypatch, capsys):
    configs = tmp_path / "configs"
    configs.mkdir()
    for name in ("Zeta", "Alpha", "Alpha_Variant", "Unplanned"):
        (configs / f"{name}.yaml").write_text(f"base: {REPO / 'configs' / 'base.yaml'}\n")
    (configs / "suite.yaml").write_text("experiments:\n  Zeta: main\n  Alpha_Variant: variant\n  Alpha: main\n")
    calls = fake_runs(monkeypatch)
    monkeypatch.chdir(tmp_path)
    src.suite.main(["--configs", str(configs), "--seeds", "2", "--variant-seeds", "1", "--models-dir", "trial"])
    assert [(run, seed) for run, seed, _ in calls["runs"]] == [
        ("Zeta", 0), ("Alpha_Variant", 0), ("Alpha", 0), ("Zeta_seed1", 1), ("Alpha_seed1", 1)]
    assert f"not in {configs / 'suite.yaml'}, so not run: Unplanned" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit:  # --only names an experiment of the plan
        src.suite.main(["--configs", str(configs), "--only", "Unplanned", "--models-dir", "trial"])
    assert exit.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "--only Unplanned: not in" in errors[0] and "suite.yaml" in errors[0]


def test_folds_plan_every_run_once_per_fold_with_its_overrides():
    runs = planned_suite_runs({"GRUCell": "main", "GRUCell_NoScheduler": "variant"}, seeds=2, variant_seeds=1, folds=3)
    assert runs == [PlannedRun("GRUCell", "GRUCell_fold1", 0, 1), PlannedRun("GRUCell_NoScheduler",
                                                                              "GRUCell_NoScheduler_fold1", 0, 1),
                    PlannedRun("GRUCell", "GRUCell_fold2", 0, 2), PlannedRun("GRUCell_NoScheduler",
                                                                              "GRUCell_NoScheduler_fold2", 0, 2),
                    PlannedRun("GRUCell", "GRUCell_fold3", 0, 3), PlannedRun("GRUCell_NoScheduler",
                                                                              "GRUCell_NoScheduler_fold3", 0, 3),
                    PlannedRun("GRUCell", "GRUCell_fold1_seed1", 1, 1), PlannedRun("GRUCell", "GRUCell_fold2_seed1",
                                                                                    1, 2),
                    PlannedRun("GRUCell", "GRUCell_fold3_seed1", 1, 3)]
    assert planned_suite_runs({"GRUCell": "main"}, seeds=1, folds=None) == [PlannedRun("GRUCell", "GRUCell", 0, None)]


def test_the_suite_with_folds_runs_each_fold_with_kfold_overrides(tmp_path, monkeypatch, capsys):
    calls = fake_runs(monkeypatch)
    monkeypatch.chdir(tmp_path)
    src.suite.main(["--configs", str(REPO / "configs"), "--only", "GRUCell", "OwnGRU", "--seeds", "1", "--folds", "4",
                    "--models-dir", "trial", "--set", "train.epochs=1"])
    assert [run for run, _, _ in calls["runs"]] == [f"{name}_fold{k}" for k in range(1, 5) for name in ("GRUCell",
                                                                                                      "OwnGRU")]
    for run, seed, overrides in calls["runs"]:
        fold = int(run[-1])
        assert seed == 0 and overrides == ["log.models_dir=trial", "log.tboard_dir=trial/tboard_logs",
                                           "train.epochs=1", "data.split=kfold", "data.folds=4", f"data.fold={fold}"]
    assert "[8/8] OwnGRU_fold4 (seed 0, fold 4 of 4)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit:  # --folds sets the fold keys: an override of them is refused
        src.suite.main(["--configs", str(REPO / "configs"), "--only", "GRUCell", "--folds", "4", "--models-dir",
                        "trial", "--set", "data.fold=2"])
    assert exit.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "--set data.fold=2: --folds 4 sets data.split, data.folds, data.fold" in errors[0]
    assert len(calls["runs"]) == 8  # nothing more ran


BAD_PLANS = {  # suite.yaml -> what its one error line names
    None: ["suite.yaml: not found"],
    "experiments: [GRUCell:": ["suite.yaml", "not valid YAML"],
    "experiment:\n  GRUCell: main\n": ["unknown key 'experiment'", "experiments, groups, comparisons"],
    "experiments: []\n": ["experiments: expected a mapping"],
    "experiments:\n  Ghost: main\n": ["experiments.Ghost: no", "Ghost.yaml", "write that config"],
    "experiments:\n  GRUCell: primary\n": ["experiments.GRUCell: 'primary'", "main", "variant"],
    "experiments:\n  GRUCell_seed1: main\n": ["'GRUCell_seed1' cannot name an experiment"],
    "experiments:\n  GRUCell: main\ngroups:\n  rnn: [GRUCell, Ghost]\n": ["groups.rnn: 'Ghost' is not in experiments",
                                                                         "(have: GRUCell)"],
    "experiments:\n  GRUCell: main\ngroups:\n  rnn: [[GRUCell]]\n": ["groups.rnn: expected a list of experiments"],
    "experiments:\n  GRUCell: main\ncomparisons:\n  - [GRUCell, Ghost]\n": [
        "comparisons[0] ['GRUCell', 'Ghost']: 'Ghost' is not in experiments (have: GRUCell)"],
    "experiments:\n  GRUCell: main\ncomparisons:\n  - [Ghost, GRUCell]\n": ["comparisons[0]", "'Ghost' is not in"],
    "experiments:\n  GRUCell: main\ncomparisons:\n  - [GRUCell]\n": ["comparisons[0]", "expected [A, B]"],
    "experiments:\n  GRUCell: main\ncomparisons:\n  - [GRUCell, best rnn]\n": ["'best rnn' names no group"],
    "experiments:\n  GRUCell: variant\n  OwnGRU: main\ngroups:\n  rnn: [GRUCell]\ncomparisons:\n"
    "  - [OwnGRU, best rnn]\n": ["group rnn has no main experiment"],
    "experiments:\n  GRUCell: main\ncomparisons:\n  - [GRUCell, GRUCell]\n": ["compares GRUCell with itself"],
}


@pytest.mark.parametrize("text, names", BAD_PLANS.items(), ids=[str(text)[:40] for text in BAD_PLANS])
def test_a_bad_suite_yaml_gets_one_line(tmp_path, monkeypatch, capsys, text, names):
    configs = tmp_path / "configs"
    configs.mkdir()
    for name in ("GRUCell", "OwnGRU", "GRUCell_seed1"):
        (configs / f"{name}.yaml").write_text(f"base: {REPO / 'configs' / 'base.yaml'}\n")
    if text is not None:
        (configs / "suite.yaml").write_text(text)
    with pytest.raises(ConfigError) as error:
        load_plan(configs)
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(configs / "suite.yaml"))
    assert all(name in message for name in names), message
    calls = fake_runs(monkeypatch)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:  # the suite says the same in one line, before any run
        src.suite.main(["--configs", str(configs), "--models-dir", "trial"])
    assert exit.value.code == 2 and calls["runs"] == [] and sorted(p.name for p in tmp_path.iterdir()) == ["configs"]
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0]


def runs_frame(accuracies: dict[str, list[float]]):
    """load_runs-like rows: experiment -> test video accuracy of seeds 0, 1, ... (val acc the same)."""
    import pandas as pd
    return pd.DataFrame([{"experiment": name, "run": name + (f"_seed{seed}" if seed else ""), "seed": seed,
                          "val acc": acc, "test video acc": acc, "test clip acc": acc, "fingerprint": "sha1:x",
                          "fold": None}
                         for name, values in accuracies.items() for seed, acc in enumerate(values)])


def test_seeds_to_add_asks_the_next_seed_of_the_wide_comparisons_only():
    plan = load_plan()
    experiments = ["GRUCell", "GRUCell_NoScheduler", "OwnGRU"]
    # OwnGRU - GRUCell: differences 0.00, 0.02, -0.02 (± 5 pp at n = 3): wide; GRUCell - GRUCell_NoScheduler:
    # 0.01 each seed (std 0): narrow
    runs = runs_frame({"GRUCell": [0.80, 0.80, 0.80], "OwnGRU": [0.80, 0.82, 0.78],
                       "GRUCell_NoScheduler": [0.79, 0.79, 0.79]})
    asked = seeds_to_add(runs, plan, experiments, half_width=0.025, max_seeds=10)
    assert [(name, seed) for name, seed, _ in asked] == [("GRUCell", 3), ("OwnGRU", 3)]  # the plan's order
    assert asked[0][2] == "OwnGRU vs GRUCell: ± 5.0 pp at n = 3"
    assert seeds_to_add(runs, plan, experiments, half_width=0.06, max_seeds=10) == []  # wide enough
    assert seeds_to_add(runs, plan, experiments, half_width=0.025, max_seeds=3) == []  # seeds enough
    # a comparison with an experiment outside the run set is left alone; n < 2 asks for a seed
    assert seeds_to_add(runs, plan, ["GRUCell", "GRUCell_NoScheduler"], 0.001, 10) == []
    asked = seeds_to_add(runs_frame({"GRUCell": [0.8], "OwnGRU": [0.8]}), plan, experiments, 0.025, 10)
    assert asked == [("GRUCell", 1, "OwnGRU vs GRUCell: n = 1, no interval"),
                     ("OwnGRU", 1, "OwnGRU vs GRUCell: n = 1, no interval")]


def test_the_suite_adds_seeds_until_every_comparison_is_narrow_or_at_max_seeds(tmp_path, monkeypatch, capsys, caplog):
    caplog.set_level(logging.INFO)  # src.planning says which seeds it adds through logging
    calls = fake_runs(monkeypatch)
    # OwnGRU - GRUCell by seed: +-2 pp for seeds 0-3, then 0 from seed 4 on, so the interval narrows with n;
    # OwnLSTM - LSTMCell alternates +-4 pp and never gets within 2.5 pp before 6 seeds
    pattern = {"GRUCell": lambda s: 0.8, "OwnGRU": lambda s: 0.8 + (0.02 * (-1) ** s if s < 4 else 0.0),
               "LSTMCell": lambda s: 0.8, "OwnLSTM": lambda s: 0.8 + 0.04 * (-1) ** s}
    def run_of(_name, run):
        return run == _name or run.startswith(_name + "_seed")

    monkeypatch.setattr(src.planning, "load_runs", lambda models_dir: (runs_frame(
        {name: [pattern[name](seed) for run, seed, _ in sorted(calls["runs"], key=lambda call: call[1])
                if run_of(name, run)] for name in pattern}), []))
    monkeypatch.chdir(tmp_path)
    src.suite.main(["--configs", str(REPO / "configs"), "--only", "GRUCell", "OwnGRU", "LSTMCell", "OwnLSTM",
                    "--seeds", "3", "--until-half-width", "2.5", "--max-seeds", "6", "--models-dir", "trial"])
    seeds = {name: sorted(seed for run, seed, _ in calls["runs"] if run_of(name, run)) for name in pattern}
    out = caplog.text
    # OwnGRU vs GRUCell: ± 5.7 pp at n = 3 ([+2, -2, +2] pp), ± 3.7 at n = 4, ± 2.5 at n = 5 ([.., 0]): stop
    assert seeds["GRUCell"] == seeds["OwnGRU"] == [0, 1, 2, 3, 4], out
    assert seeds["LSTMCell"] == seeds["OwnLSTM"] == [0, 1, 2, 3, 4, 5]  # to --max-seeds
    assert "OwnGRU vs GRUCell: ± 5.7 pp at n = 3: seed 3 of GRUCell" in out
    assert "every paired comparison among these experiments is within ± 2.5 pp, or has 6 paired seeds" in out
    assert ("OwnGRU_seed4", 4) in [(run, seed) for run, seed, _ in calls["runs"]]
    for flags, message in ((["--until-half-width", "0"], "give a half-width > 0"),
                           (["--until-half-width", "2", "--folds", "4"], "without --folds or --shard"),
                           (["--until-half-width", "2", "--shard", "1/2"], "without --folds or --shard")):
        with pytest.raises(SystemExit):
            src.suite.main(["--configs", str(REPO / "configs"), "--only", "GRUCell", "--models-dir", "trial", *flags])
        assert message in capsys.readouterr().err


def test_a_split_refusal_names_its_runs_and_what_to_change_not_rerun_to_retry(tiny_prepared, tmp_path, monkeypatch,
                                                                               capsys):
    """data.groups without the tiny twin's test person (17): the course split leaves the test split empty, run after
    run, so the suite says which runs and why, once, and what to change; nothing is trained."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:
        run_suite(tmp_path, tiny_prepared, "data.groups=[1,2,15]")
    assert exit.value.code == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in out if ": REFUSED: " in line] == ["[1/2] GRUCell", "[2/2] OwnGRU"]
    end = [line for line in out if "run(s) " in line]
    assert len(end) == 1 and end[0].startswith("2 run(s) refused: GRUCell, OwnGRU: data.split: course leaves the test "
                                               "split empty"), end
    assert end[0].endswith("; a rerun is refused the same way: change what this names (in the experiment's config, "
                           "with --set, or the data), then rerun 'python -m src.suite'")
    assert not any("to retry" in line for line in out)
    assert not list((tmp_path / "models").rglob("*.pth"))


def test_runs_that_failed_otherwise_are_still_retried_by_a_rerun(tmp_path, monkeypatch, capsys):
    def run_experiment(name, run, seed, overrides, **_):
        if run.endswith("_fold2"):
            raise src.planning.SplitError("data.split: kfold fold 2 leaves class 'boxing' without a training video")
        if run == "OwnGRU_fold1":
            raise RuntimeError("OwnGRU: weights not available offline\nsecond line")
        return {"video_accuracy": 0.5}

    monkeypatch.setattr(src.planning, "run_experiment", run_experiment)
    monkeypatch.setattr(src.suite, "compare", lambda **kwargs: None)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:
        src.suite.main(["--configs", str(REPO / "configs"), "--only", "GRUCell", "OwnGRU", "--seeds", "1", "--folds",
                        "2", "--models-dir", "trial"])
    assert exit.value.code == 1
    end = [line for line in capsys.readouterr().out.splitlines() if "run(s) " in line]
    assert end == ["2 run(s) refused: GRUCell_fold2, OwnGRU_fold2: data.split: kfold fold 2 leaves class 'boxing' "
                   "without a training video; a rerun is refused the same way: change what this names (in the "
                   "experiment's config, with --set, or the data), then rerun 'python -m src.suite'",
                   "1 run(s) failed: OwnGRU_fold1; rerun 'python -m src.suite' to retry them"]


def test_a_results_json_in_another_runs_folder_stops_the_suite_before_its_table(tmp_path, monkeypatch, capsys):
    calls = fake_runs(monkeypatch)
    monkeypatch.setattr(src.suite, "compare", compare)  # the real one
    (tmp_path / "trial" / "OwnGRU").mkdir(parents=True)
    copy = tmp_path / "trial" / "OwnGRU" / "results.json"
    copy.write_text((REPO / "models" / "GRUCell" / "results.json").read_text())
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:
        src.suite.main(["--configs", str(REPO / "configs"), "--only", "GRUCell", "--seeds", "1", "--models-dir",
                        "trial"])
    assert exit.value.code == 1 and [run for run, _, _ in calls["runs"]] == ["GRUCell"]
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith(f"error: {Path('trial/OwnGRU/results.json')}: the results of "
                                                     "run 'GRUCell', in the folder of run 'OwnGRU'")
    assert sorted(p.name for p in (tmp_path / "trial").iterdir()) == ["OwnGRU"]  # no table written
