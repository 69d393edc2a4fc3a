"""experiments/recipe/study.py: the study's plan from recipes.yaml, a bad recipes.yaml in one line, the report on
hand-made results.json files, the command line's checks and folders, and a tiny study end to end."""
import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

import experiments.recipe.study as study_module
from experiments.recipe.study import (
    STUDY_FILE,
    STUDY_KEYS,
    Study,
    choose,
    load_study,
    planned_study_runs,
    report,
    run_overrides,
    selection_source,
)
from src.config import ConfigError, load_config
from src.data.index import with_channels
from src.training.runlock import LOCK_NAME

REPO = Path(__file__).resolve().parents[2]
TINY = ["model.emb_dim=16", "model.hidden_dim=16", "model.num_layers=1", "data.max_frames=4",
        "data.eval_clips_per_video=2", "train.batch_size=8", "train.epochs=2", "train.warmup_epochs=0",
        "eval.latency_repeats=1"]


def test_the_repository_study_plans_every_model_recipe_seed_and_fold_on_the_training_persons_alone():
    study = load_study()
    assert study.models == ["GRUCell", "OwnLSTM"] and study.seeds == 3 and study.folds == 4
    assert list(study.recipes) == ["old", "clips8", "clips8_ema", "clips8_smooth", "clips8_last", "clips8_ema_last"]
    assert study.reference == "old"
    runs = planned_study_runs(study)
    assert len(runs) == len({(run.recipe, run.run) for run in runs}) == 2 * 6 * 3 * 4
    assert runs[0] == ("old", "GRUCell", "GRUCell_fold1", 0, 1) and runs[1].model == "OwnLSTM"
    assert [run.seed for run in runs] == sorted(run.seed for run in runs)  # seed by seed: seed 0 is whole first
    assert {run.run for run in runs if (run.seed, run.fold) == (2, 3)} == {"GRUCell_fold3_seed2", "OwnLSTM_fold3_seed2"}

    expected = {"old": {}, "clips8": {"train_clips_per_video": 8},
                "clips8_ema": {"train_clips_per_video": 8, "ema_decay": 0.983},
                "clips8_smooth": {"train_clips_per_video": 8, "label_smoothing": 0.1},
                "clips8_last": {"train_clips_per_video": 8, "select": "last"},
                "clips8_ema_last": {"train_clips_per_video": 8, "ema_decay": 0.983, "select": "last"}}
    base = load_config(REPO / "configs" / "GRUCell.yaml")
    for run in runs[:48]:  # seed 0: every recipe, model and fold
        config = load_config(REPO / "configs" / f"{run.model}.yaml",
                             [f"train.seed={run.seed}", *run_overrides(study, run, "models/recipe", "tb")])
        data, train = config["data"], config["train"]
        assert (data["split"], data["folds"], data["fold"]) == ("kfold", 4, run.fold)
        assert data["groups"] == list(range(1, 17))  # the test persons 17-25 are never read
        assert config["model"]["rnn_type"] == run.model
        assert config["log"]["models_dir"] == f"models/recipe/{run.recipe}"
        assert config["log"]["tboard_dir"] == f"tb/{run.recipe}"
        for key, value in {"train_clips_per_video": 2, "ema_decay": 0.0, "label_smoothing": 0.0, "select": "best",
                           "amp": False, **expected[run.recipe]}.items():  # float32 on every CPU
            assert {**data, **train}[key] == value, (run, key)
        assert train["epochs"] == base["train"]["epochs"] == 30
    assert study.keys["clips8_last"] == ("data.train_clips_per_video=8, train.ema_decay=0.0, train.amp=false, "
                                         "data.prefetch=false, train.select=last")
    # a recipe's own value takes its base's place: one override per key
    assert study.recipes["old"] == ["data.train_clips_per_video=2", "train.ema_decay=0.0", "train.amp=false",
                                    "data.prefetch=false"]
    assert study.recipes["clips8"] == ["data.train_clips_per_video=8", "train.ema_decay=0.0", "train.amp=false",
                                       "data.prefetch=false"]


def test_fewer_recipes_models_seeds_and_folds_plan_a_part_of_the_study():
    study = load_study()
    runs = planned_study_runs(study, recipes=["clips8_ema", "old"], models=["OwnLSTM"], seeds=2, folds=[4, 2])
    assert [(run.recipe, run.run) for run in runs] == [
        ("old", "OwnLSTM_fold2"), ("clips8_ema", "OwnLSTM_fold2"), ("old", "OwnLSTM_fold4"),
        ("clips8_ema", "OwnLSTM_fold4"), ("old", "OwnLSTM_fold2_seed1"), ("clips8_ema", "OwnLSTM_fold2_seed1"),
        ("old", "OwnLSTM_fold4_seed1"), ("clips8_ema", "OwnLSTM_fold4_seed1")]


GOOD = ("models: [GRUCell]\nseeds: 1\ncross_validation:\n  folds: 2\n  groups: [1, 2, 15, 17]\n"
        "recipes:\n  old: {}\n")
BAD_STUDIES = {  # recipes.yaml -> what its one error line names
    None: ["recipes.yaml: not found"],
    "models: [GRUCell\n": ["not valid YAML"],
    GOOD + "epochs: 3\n": ["unknown key 'epochs'", "models, seeds, cross_validation, recipes"],
    GOOD.replace("[GRUCell]", "[]"): ["models: expected a list of experiments"],
    GOOD.replace("[GRUCell]", "[GRUCell, GRUCell]"): ["models: expected a list of experiments, each once"],
    GOOD.replace("[GRUCell]", "[Ghost]"): ["models: 'Ghost' is not an experiment", "Ghost.yaml"],
    GOOD.replace("[GRUCell]", "[suite]"): ["models: 'suite' is not an experiment"],
    GOOD.replace("seeds: 1", "seeds: 0"): ["seeds: expected a whole number >= 1", "got 0"],
    GOOD.replace("  folds: 2\n", ""): ["cross_validation: expected a mapping with folds"],
    GOOD.replace("  folds: 2\n", "  folds: 1\n"): ["cross_validation.folds: expected a whole number >= 2", "got 1"],
    GOOD.replace("  folds: 2\n", "  folds: 2\n  fold: 1\n"): ["cross_validation: unknown key 'fold'"],
    GOOD.replace("[1, 2, 15, 17]", "[1, 1]"): ["cross_validation:", "'data.groups' must list each group once"],
    GOOD.replace("  old: {}\n", ""): ["recipes: expected a mapping"],
    GOOD + "  old/2: {}\n": ["recipes: 'old/2' cannot name a recipe"],
    GOOD + "  more: [1]\n": ["recipes.more: expected a mapping of config keys", "[1]"],
    GOOD + "  more:\n    train.epoch: 5\n": ["recipes.more:", "unknown key 'train.epoch'",
                                             "did you mean 'train.epochs'"],
    GOOD + "  more:\n    data.train_clips_per_video: 0\n": ["recipes.more:",
                                                          "'data.train_clips_per_video' must be >= 1"],
    GOOD + "  more:\n    train.ema_decay: 1\n": ["recipes.more:", "'train.ema_decay' must be 0 (off) or in (0, 1)"],
    GOOD + "  more:\n    epochs: 5\n": ["recipes.more: 'epochs' is not a config key"],
    GOOD + "  more:\n    train.seed: 5\n": ["recipes.more: train.seed is set by the study"],
    GOOD + "  more:\n    data.groups: [1]\n": ["recipes.more: data.groups is set by the study"],
    GOOD + "  more:\n    log.models_dir: x\n": ["recipes.more: log.models_dir is set by the study"],
    GOOD + "  more:\n    base: gone\n": ["recipes.more: base 'gone' is not a recipe (have: old, more)"],
    GOOD + "  a:\n    base: b\n  b:\n    base: a\n": ["recipes.a: its 'base:' chain loops back to it (a -> b -> a)"],
}


@pytest.mark.parametrize("text, names", BAD_STUDIES.items(), ids=[str(text)[-40:] for text in BAD_STUDIES])
def test_a_bad_recipes_yaml_gets_one_line(tmp_path, monkeypatch, capsys, text, names):
    path = tmp_path / "recipes.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_study(path, REPO / "configs")
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(path)), message
    assert all(name in message for name in names), message
    runs = fake_runs(monkeypatch)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:  # the command line says the same in one line, before any run
        study_module.main(["--recipes", str(path), "--configs", str(REPO / "configs"), "--models-dir", "trial"])
    assert exit.value.code == 2 and runs == [] and not (tmp_path / "trial").exists()
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0]


def test_base_yaml_holds_the_recipe_that_results_recipe_md_chose():
    """The committed study's choice is the experiments' default: every key the chosen recipe sets, but the study's
    measuring conditions (float32, batches on the main thread), has its value in configs/base.yaml."""
    text = (REPO / "results" / "recipe.md").read_text()
    chosen = text.split("**The study chose `", 1)[1].split("`", 1)[0]
    study = load_study(STUDY_FILE)
    config = load_config(REPO / "configs" / "GRUCell.yaml")
    keys = [item.split("=", 1) for item in study.recipes[chosen]]
    assert chosen == "clips8_ema" and len(keys) == 4
    for key, value in keys:
        if key in ("train.amp", "data.prefetch"):
            continue
        section, name = key.split(".")
        assert str(config[section][name]) == value, (key, config[section][name], value)


def test_composed_recipes_start_from_their_base():
    study = load_study(STUDY_FILE)
    assert study.recipes["clips8_ema"] == ["data.train_clips_per_video=8", "train.ema_decay=0.983", "train.amp=false",
                                           "data.prefetch=false"]
    assert study.overrides("clips8_smooth", 3) == [
        "data.split=kfold", "data.folds=4", "data.fold=3", f"data.groups={list(range(1, 17))}",
        "data.train_clips_per_video=8", "train.ema_decay=0.0", "train.amp=false", "data.prefetch=false",
        "train.label_smoothing=0.1"]
    assert all(not item.startswith(STUDY_KEYS) for overrides in study.recipes.values() for item in overrides)


def fake_runs(monkeypatch):
    """study_module.main without training: the runs it starts, as (lock, model, run, seed, overrides)."""
    runs = []

    def fake(lock, model, run, seed, overrides, **_):
        runs.append((Path(lock), model, run, seed, overrides))
        return {"video_accuracy": 0.5, "epochs": 30, "history": [{"epoch_time_s": 6.0}]}

    monkeypatch.setattr(study_module, "run_unless_claimed", fake)
    return runs


@pytest.mark.parametrize("models_dir, flags, tboard, out, imgs", [
    ("models/recipe", [], "tboard_logs/recipe", "results", "imgs"),  # the default: the folders of record
    ("trial", [], "trial/tboard_logs", "trial", "trial"),  # any other folder takes every output with it
    ("trial", ["--out", "t", "--imgs", "f"], "trial/tboard_logs", "t", "f"),
])
def test_the_runs_and_outputs_go_under_the_folders_given(tmp_path, monkeypatch, capsys, models_dir, flags, tboard,
                                                         out, imgs):
    runs = fake_runs(monkeypatch)
    reports = []
    monkeypatch.setattr(study_module, "report", lambda *args: reports.append(args))
    monkeypatch.chdir(tmp_path)
    study_module.main(["--configs", str(REPO / "configs"), "--models-dir", models_dir, "--only-recipes",
                       "clips8_smooth", "--only-models", "OwnLSTM", "--seeds", "1", "--folds", "2", *flags,
                       "--set", "train.epochs=1"])
    ((lock, model, run, seed, overrides),) = runs
    assert (lock, model, run, seed) == (Path(models_dir) / "clips8_smooth" / "OwnLSTM_fold2" / LOCK_NAME, "OwnLSTM",
                                        "OwnLSTM_fold2", 0)
    assert overrides == [f"log.models_dir={Path(models_dir) / 'clips8_smooth'}",
                         f"log.tboard_dir={tboard}/clips8_smooth",
                         "data.split=kfold", "data.folds=4", "data.fold=2", f"data.groups={list(range(1, 17))}",
                         "data.train_clips_per_video=8", "train.ema_decay=0.0", "train.amp=false",
                         "data.prefetch=false", "train.label_smoothing=0.1", "train.epochs=1"]  # --set last
    ((_, dir_given, out_dir, imgs_dir, extra, *_),) = reports
    assert dir_given == models_dir and extra == ["train.epochs=1"]
    defaults = study_module.output_dirs(dir_given, study_module.STUDY_MODELS_DIR)
    assert (Path(out_dir or defaults["out"]), Path(imgs_dir or defaults["imgs"])) == (Path(out), Path(imgs))
    assert "[1/1] clips8_smooth/OwnLSTM_fold2 (OwnLSTM, seed 0, fold 2 of 4)" in capsys.readouterr().out


def test_a_run_that_re_selects_another_recipes_run_waits_for_it(tmp_path, monkeypatch, capsys):
    runs = fake_runs(monkeypatch)
    monkeypatch.setattr(study_module, "report", lambda *args: None)
    monkeypatch.chdir(tmp_path)
    study_module.main(["--configs", str(REPO / "configs"), "--models-dir", "trial", "--only-recipes", "clips8_last",
                       "--only-models", "OwnLSTM", "--seeds", "1", "--folds", "2"])
    assert runs == [] and not (tmp_path / "trial" / "clips8_last" / "OwnLSTM_fold2" / "last.pth").exists()
    assert (f"clips8_last/OwnLSTM_fold2: waits for {Path('trial') / 'clips8' / 'OwnLSTM_fold2'} to finish (run clips8 "
            "first; this run re-selects its last epoch); skipped") in capsys.readouterr().out


@pytest.mark.parametrize("flags, names", [
    (["--set", "data.fold=2"], ["--set data.fold=2: the study sets", "train.seed"]),
    (["--set", "train.seed=3"], ["--set train.seed=3"]),
    (["--set", "log.tboard_dir=x"], ["--set log.tboard_dir=x"]),
    (["--set", "train.epochs=0"], ["'train.epochs' must be >= 1"]),
    (["--seeds", "4"], ["--seeds 4: the study has 3"]),
    (["--seeds", "0"], ["--seeds"]),
    (["--folds", "5"], ["--folds 5: the study has folds 1..4"]),
    (["--only-recipes", "clips16"], ["--only-recipes clips16: not in", "clips8_last"]),
    (["--only-models", "LSTMCell"], ["--only-models LSTMCell: not in"]),
    (["--shard", "3/2"], ["--shard 3/2"]),
    (["--data", "nowhere"], ["nowhere"]),
])
def test_bad_arguments_get_one_line_before_any_run(tmp_path, monkeypatch, capsys, flags, names):
    runs = fake_runs(monkeypatch)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:
        study_module.main(["--configs", str(REPO / "configs"), "--models-dir", "trial", *flags])
    assert exit.value.code == 2 and runs == [] and sorted(tmp_path.iterdir()) == []
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and all(name in errors[0] for name in names), errors


# ------------------------------------------------------------------- the report on hand-made results

def hand_made_study(tmp_path) -> Study:
    path = tmp_path / "recipes.yaml"
    path.write_text("models: [GRUCell, OwnGRU]\nseeds: 2\ncross_validation:\n  folds: 2\n  groups: [1, 2, 3, 4]\n"
                    "recipes:\n  a: {}\n  b:\n    data.train_clips_per_video: 8\n")
    return load_study(path, REPO / "configs")


# test video accuracy of each run: (recipe, model, seed, fold) -> correct videos of 10
CORRECT = {("a", "GRUCell", 0, 1): 8, ("a", "GRUCell", 0, 2): 6, ("a", "GRUCell", 1, 1): 7, ("a", "GRUCell", 1, 2): 7,
           ("a", "OwnGRU", 0, 1): 9, ("a", "OwnGRU", 0, 2): 5, ("a", "OwnGRU", 1, 1): 8, ("a", "OwnGRU", 1, 2): 6,
           ("b", "GRUCell", 0, 1): 9, ("b", "GRUCell", 0, 2): 8, ("b", "GRUCell", 1, 1): 9, ("b", "GRUCell", 1, 2): 8,
           ("b", "OwnGRU", 0, 1): 9, ("b", "OwnGRU", 0, 2): 9, ("b", "OwnGRU", 1, 1): 8, ("b", "OwnGRU", 1, 2): 9}


def write_results(study: Study, models_dir: Path, skip=(), **changed) -> None:
    """A results.json for each planned run but ``skip``, as src.evaluate writes them (the keys the report reads):
    10 test videos of fold k (ids v<k>_<i>), CORRECT of them right, 30 epochs of 6 s (recipe a) or 24 s (b)
    (the third 5x as long, so results.json's epoch_time_s, their mean, is 34/30 of it),
    15 or 60 steps each; ``changed``: config keys (section.key) set otherwise than the study's."""
    for run in planned_study_runs(study):
        if (run.recipe, run.run) in skip:
            continue
        config = load_config(REPO / "configs" / f"{run.model}.yaml",
                             [f"train.seed={run.seed}", *run_overrides(study, run, models_dir, "tb"),
                              *[f"{key}={value}" for key, value in changed.items()]], name=run.run)
        config = with_channels(config, 1)  # data.channels auto: the gray data's, as the trainer saves it
        correct = CORRECT[run.recipe, run.model, run.seed, run.fold]
        seconds, steps = (6.0, 15) if run.recipe == "a" else (24.0, 60)
        results = {"experiment": run.run, "seed": run.seed, "val_accuracy": 0.9, "best_epoch": 20 + run.fold,
                   "clip_accuracy": (correct - 1) / 10, "video_accuracy": correct / 10, "num_test_videos": 10,
                   "epoch_time_s": seconds * 34 / 30, "epochs": 30,  # the mean of the history's
                   "provenance": {"data": {"root": "data/synth", "synthetic": True, "preset": "full", "source": "kth",
                                           "fingerprint": "sha1:" + "ab" * 20},
                                  "persons": {"test": [run.fold]}, "train_device": "cpu", "train_precision": "float32",
                                  "train_machine": "AMD EPYC, 2 logical CPUs, no native bf16"},
                   "config": config,  # epoch 3 shared the CPU with another job: 5x as long, a median's outlier
                   "history": [{"epoch": e, "steps": steps, "epoch_time_s": seconds * (5 if e == 3 else 1),
                                "val_accuracy": min(0.9, 0.5 + 0.05 * e)}  # at its plateau from epoch 8 on
                               for e in range(1, 31)],
                   "predictions": [{"video_id": f"v{run.fold}_{i}"} for i in range(10)]}
        (models_dir / run.recipe / run.run).mkdir(parents=True, exist_ok=True)
        (models_dir / run.recipe / run.run / "results.json").write_text(json.dumps(results))


def test_the_report_summarizes_each_recipe_and_model_and_states_the_choice(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    study, models = hand_made_study(tmp_path), tmp_path / "study"
    write_results(study, models)
    per_recipe = report(study, models, configs_dir=REPO / "configs")
    text = (models / "recipe.md").read_text()
    assert (models / "recipe.png").stat().st_size > 0
    assert "**Partial" not in text and "of 16 runs of the study" in caplog.text
    a = pd.Series([CORRECT[key] / 10 for key in CORRECT if key[0] == "a"])
    b = pd.Series([CORRECT[key] / 10 for key in CORRECT if key[0] == "b"])
    row = per_recipe.set_index("recipe")
    assert row.loc["a", "test video acc mean"] == pytest.approx(a.mean())
    assert row.loc["b", "test video acc std"] == pytest.approx(b.std(ddof=1))
    assert row.loc["b", "diff mean"] == pytest.approx((b - a).mean()) and row.loc["b", "pairs"] == 8
    assert row.loc["b", "steps mean"] == 1800 and row.loc["b", "train min mean"] == pytest.approx(12.0)
    assert row.loc["b", "plateau min mean"] == pytest.approx(8 * 24 / 60) and row.loc["a", "plateau epoch mean"] == 8
    table = pd.read_csv(models / "recipe_runs.csv")
    assert len(table) == 16 and list(table.columns) == study_module.RUN_COLUMNS
    assert table.groupby("recipe")["test video acc"].mean().to_dict() == pytest.approx({"a": a.mean(), "b": b.mean()})
    a_row, b_row = (next(line for line in text.splitlines() if line.startswith(f"| {name} ")) for name in "ab")
    assert [cell.strip() for cell in a_row.split("|")[6:8]] == ["–", "–"]  # a is the reference: no difference
    assert [cell.strip() for cell in b_row.split("|")[-4:-1]] == ["3.2 ± 0.0", "4.00x ± 0.00", "1.07x ± 0.00"]
    assert [cell.strip() for cell in a_row.split("|")[-3:-1]] == ["1.00x ± 0.00", "0.27x ± 0.00"]  # 0.8 of 3.0 min
    lines = text.splitlines()
    assert any(line.startswith("| a ") and "| 8 of 8 " in line and f"{100 * a.mean():.1f} ± {100 * a.std():.1f}" in line
               and "| 3.0 ± 0.0 " in line and "| 450 " in line for line in lines)
    diff = b - a
    assert any(line.startswith("| b ") and "data.train_clips_per_video=8" in line
               and f"{100 * diff.mean():.1f} ± {100 * diff.std():.1f} (n 8)" in line for line in lines)
    # GRUCell under a: seed 0 pools 8 + 6 of 20 videos, seed 1 7 + 7
    assert any(line.startswith("| a ") and "| GRUCell " in line and "seed 0: 70.0, seed 1: 70.0" in line
               for line in lines)
    assert "only persons 1-4 are read (data.groups)" in text and "2-fold cross-validation" in text
    assert "**The study chose `b`**: the highest mean held-out test video accuracy is b's" in text
    assert "Trained in float32 on AMD EPYC, 2 logical CPUs, no native bf16 (16 runs)." in text


def test_a_partial_study_says_how_many_runs_of_how_many_and_leaves_out_other_configs(tmp_path, caplog):
    study, models = hand_made_study(tmp_path), tmp_path / "study"
    write_results(study, models, skip={("b", "GRUCell_fold2_seed1"), ("a", "OwnGRU_fold1")})
    changed = next(run for run in planned_study_runs(study) if (run.recipe, run.run) == ("a", "OwnGRU_fold1"))
    write_results(Study(study.path, ["OwnGRU"], 1, 2, study.cross_validation, {"a": []}, study.keys), models,
                  **{"train.epochs": 5})  # a run made with another config is left out, and says why
    assert (models / "a" / changed.run / "results.json").is_file()
    study_module.main(["--recipes", str(study.path), "--configs", str(REPO / "configs"), "--models-dir", str(models),
                       "--report"])
    assert "made with another config than the study's (train.epochs: 5 -> 30)" in caplog.text
    text = (models / "recipe.md").read_text()
    assert "**Partial results: 13 of 16 runs** (a 6 of 8, b 7 of 8); the choice below is provisional." in text
    assert "**The study chose `b` (so far)**" in text
    lines = [line for line in text.splitlines() if line.startswith("| b ") and "| GRUCell " in line]
    assert len(lines) == 1 and "| 3 of 4 " in lines[0] and "seed 0: 85.0 " in lines[0]
    assert "seed 1" not in lines[0]  # seed 1 lacks a fold: not pooled


def test_runs_whose_folders_are_gone_count_from_the_committed_record_while_their_config_holds(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    study, models = hand_made_study(tmp_path), tmp_path / "study"
    write_results(study, models)
    whole = report(study, models, configs_dir=REPO / "configs")
    for run in ("GRUCell_fold1", "OwnGRU_fold2_seed1"):  # a session's machine was lost: only git's files remain
        shutil.rmtree(models / "b" / run)
    again = report(study, models, configs_dir=REPO / "configs")
    pd.testing.assert_frame_equal(again, whole)
    text = (models / "recipe.md").read_text()
    assert "**Partial" not in text and "2 of the runs are rows of recipe_runs.csv alone" in text
    assert len(pd.read_csv(models / "recipe_runs.csv")) == 16  # the rows stay for the next report

    changed = study.path.read_text().replace("data.train_clips_per_video: 8", "data.train_clips_per_video: 4")
    study.path.write_text(changed)  # recipe b now trains otherwise: its recorded rows no longer stand for it
    caplog.clear()
    report(load_study(study.path, REPO / "configs"), models, configs_dir=REPO / "configs")
    assert "left out recipe_runs.csv: b/GRUCell_fold1 was made with another config than the study's now" in caplog.text
    assert "**Partial results: 8 of 16 runs**" in (models / "recipe.md").read_text()  # b's folders: another config
    assert len(pd.read_csv(models / "recipe_runs.csv")) == 8


def test_a_record_written_by_older_code_is_not_used(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    study, models = hand_made_study(tmp_path), tmp_path / "study"
    write_results(study, models, skip={("a", "GRUCell_fold1")})
    models.joinpath("recipe_runs.csv").write_text("recipe,experiment,seed,fold,test video acc\na,GRUCell,0,1,0.9\n")
    report(study, models, configs_dir=REPO / "configs")
    assert "recipe_runs.csv: no 'run' column (written by older code); its rows are not used" in caplog.text
    assert "**Partial results: 15 of 16 runs**" in (models / "recipe.md").read_text()


def test_report_alone_with_no_runs_is_an_error_and_writes_nothing(tmp_path, caplog):
    study = hand_made_study(tmp_path)
    with pytest.raises(SystemExit) as exit:
        study_module.main(["--recipes", str(study.path), "--configs", str(REPO / "configs"), "--models-dir",
                           str(tmp_path / "empty"), "--report"])
    assert exit.value.code == 1 and "no results of the study under" in caplog.text
    assert not (tmp_path / "empty").exists()


@pytest.mark.parametrize("means, stds, chosen", [
    ([0.80, 0.90, 0.85], [0.01, 0.01, 0.01], "b"),  # no other recipe within one std of the highest mean
    ([0.80, 0.90, 0.88], [0.02, 0.03, 0.01], "c"),  # c within one std (3 points) of b, with the smaller std
    ([0.89, 0.90, 0.70], [0.005, 0.03, 0.001], "a"),  # c has the smallest std, but lies outside
])
def test_the_choice_is_the_highest_mean_or_the_smallest_std_within_one_std_of_it(means, stds, chosen):
    per_recipe = pd.DataFrame({"recipe": ["a", "b", "c"], "runs": [24] * 3, "test video acc mean": means,
                               "test video acc std": stds})
    assert choose(per_recipe)[0] == chosen
    assert choose(per_recipe.assign(runs=0)) is None


# ------------------------------------------------------------------- a tiny study, end to end

@pytest.mark.slow  # a whole study end to end: 4 trainings, a report
def test_a_tiny_study_runs_resumes_and_reports(tiny_prepared, tmp_path, monkeypatch, capsys):
    """2 recipes x 1 model x 1 seed x 2 folds on the tiny twin (persons 1, 2, 15, 17): every run trained and
    tested on its held-out fold, in trial/<recipe>/<run>; run again, every run is reused; the report and the
    figure in trial/, nothing in results/ or imgs/."""
    recipes = tmp_path / "recipes.yaml"
    recipes.write_text("models: [GRUCell]\nseeds: 1\ncross_validation:\n  folds: 2\n  groups: [1, 2, 15, 17]\n"
                       "recipes:\n  old: {}\n  ema:\n    train.ema_decay: 0.5\n    train.select: last\n"
                       "  old_last: {base: old, train.select: last}\n")
    monkeypatch.chdir(tmp_path)
    command = ["--recipes", str(recipes), "--configs", str(REPO / "configs"), "--data", str(tiny_prepared),
               "--models-dir", "trial", "--set", *TINY]
    study_module.main(command)
    out = capsys.readouterr().out
    tested, default_ema = [], load_config(REPO / "configs" / "GRUCell.yaml")["train"]["ema_decay"]
    for recipe in ("old", "ema"):
        for fold in (1, 2):
            results = json.loads((tmp_path / "trial" / recipe / f"GRUCell_fold{fold}" / "results.json").read_text())
            split = results["provenance"]["split"]
            assert (split["protocol"], split["fold"]) == ("kfold", fold)
            groups = split["groups"]
            assert set(groups["train"] + groups["val"] + groups["test"]) == {1, 2, 15, 17}
            assert results["config"]["train"]["ema_decay"] == (0.5 if recipe == "ema" else default_ema)  # old: {}
            assert results["best_epoch"] == 2 or recipe == "old"  # ema: train.select last
            tested.append(tuple(groups["test"]))
            assert (tmp_path / "trial" / "tboard_logs" / recipe / f"GRUCell_fold{fold}").is_dir()
            assert f"{recipe}/GRUCell_fold{fold}: held-out test video accuracy" in out
    assert sorted(tested[:2]) == sorted(tested[2:]) and sorted(sum(tested[:2], ())) == [1, 2, 15, 17]
    text = (tmp_path / "trial" / "recipe.md").read_text()
    assert "**Partial" not in text and "**The study chose `" in text and (tmp_path / "trial" / "recipe.png").is_file()
    assert not (tmp_path / "results").exists() and not (tmp_path / "imgs").exists()
    assert not list(tmp_path.rglob(LOCK_NAME))

    for fold in (1, 2):  # old_last trained nothing: old's last epoch, re-selected
        run = f"GRUCell_fold{fold}"
        assert f"old_last/{run}: not trained: the last epoch of {Path('trial') / 'old' / run / 'last.pth'}" in out
        derived, trained = (json.loads((tmp_path / "trial" / recipe / run / "results.json").read_text())
                            for recipe in ("old_last", "old"))
        assert derived["history"] == trained["history"] and derived["best_epoch"] == 2
        assert derived["config"]["train"]["select"] == "last"
        best = torch.load(tmp_path / "trial" / "old_last" / run / "best.pth")["model_state_dict"]
        last = torch.load(tmp_path / "trial" / "old" / run / "last.pth")["model_state_dict"]
        assert all(torch.equal(best[key], tensor) for key, tensor in last.items())
    assert "old_last" in text

    study_module.main(command)  # every run finished: nothing is trained again
    assert capsys.readouterr().out.count("(finished before: reused)") == 6

    shutil.rmtree(tmp_path / "trial" / "ema" / "GRUCell_fold2")  # gone with a machine; recipe_runs.csv holds it
    study_module.main(command)
    out = capsys.readouterr().out
    assert f"ema/GRUCell_fold2: recorded in {Path('trial') / 'recipe_runs.csv'} (same config and data" in out
    assert out.count("(finished before: reused)") == 5 and not (tmp_path / "trial" / "ema" / "GRUCell_fold2").exists()
    assert "1 of the runs is a row of recipe_runs.csv alone" in (tmp_path / "trial" / "recipe.md").read_text()


def test_only_a_recipe_that_adds_train_select_last_reuses_another_recipes_training():
    study = load_study(STUDY_FILE)
    assert {recipe: selection_source(study, recipe) for recipe in study.recipes} == {
        "old": None, "clips8": None, "clips8_ema": None, "clips8_smooth": None, "clips8_last": "clips8",
        "clips8_ema_last": "clips8_ema"}
