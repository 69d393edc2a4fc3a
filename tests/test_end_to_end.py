"""A user's path on data that is not KTH (issue 18's "Done when"), run as a user runs it: one command line at
a time (tests/cli.py's run_cli: a fresh ``python -m ...`` in a temporary folder).

- Two folders made from the tiny twin's videos by tests/test_sources.py's builders: a folder of class
  subfolders without groups.csv (:func:`make_folder`: classes 'boxe', 'hand wave', 'marche à pied', file
  names with spaces and 'é', so every video is its own group and the split is random) and a UCF101-style
  folder with its split files (:func:`make_ucf101`: classes Walk, Box, Wave in classInd.txt's order,
  trainlist01/testlist01.txt; trained with ``data.split=given``, fold 1). Each goes through
  ``src.data prepare`` -> ``src.train`` -> ``src.evaluate`` -> ``src.predict`` on one of its raw videos (table
  and --json) -> ``src.export`` -> ``src.predict`` with the .onnx file, and every step speaks of the data's
  own three classes, never of KTH's six actions.
  The two layouts' command lines run side by side (each command is one process of one thread).
- Then the notebook, on both layouts (NOTEBOOK_DATA: the prepared folder; NOTEBOOK_WORKDIR: the working
  folder of those command lines, so that their GRUCell run is reused, checkpoint and all; NOTEBOOK_SET: their
  tiny overrides, so the other experiments train two epochs of narrow models on 32x32 frames; NOTEBOOK_BENCH:
  one round): about 30 s each on an idle 2-core machine, under a minute together.
- ``data.split: schuldt2004`` on the tiny twin (persons 1, 2, 15, 17) and ``src.suite --folds 2`` (kfold.md).
- The committed ``models/*/results.json`` (made by older code: no classes, no split) still make the
  committed ``results/results.md``.
"""
from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from subprocess import CompletedProcess
from typing import Callable

import pytest

from src.data.sources.kth import ACTIONS
from tests.cli import REPO, config_path, run_cli, snapshot
from tests.conftest import FOUR_CLASS_TINY
from tests.test_sources import FOLDER_CLASSES, UCF_CLASSES, folder_name, make_folder, make_ucf101, ucf_name

pytestmark = pytest.mark.slow  # a user's command lines, each a subprocess (tests/cli.py), and the notebook

TINY = [*FOUR_CLASS_TINY, "data.img_size=32"]  # two epochs of narrow models on 32x32 frames: seconds per run
KTH_NAMES = re.compile(r"\b(?:" + "|".join(ACTIONS) + r")\b", re.IGNORECASE)
RECORD = [REPO / name for name in ("results", "imgs", "models", "tboard_logs")]  # the committed outputs


@dataclass(frozen=True)
class Layout:
    make: Callable[[Path, Path], Path]  # the builder: (tiny_raw, root) -> the raw folder
    source: str             # index.json's source
    classes: list[str]      # in label order
    group_kind: str
    folds: list[str]
    video: str              # the raw video predicted, relative to the raw folder
    label: str              # what the tables and the notebook call such data
    split: str              # the split the tables' header names (its test groups aside)
    train_set: tuple = ()   # further overrides of src.train


LAYOUTS = {
    "folder": Layout(make_folder, "folder", sorted(FOLDER_CLASSES.values()), "video", [],
                     folder_name("walking", 1, 1), "a video folder", "random split"),
    "ucf101": Layout(make_ucf101, "ucf101", list(UCF_CLASSES.values()), "ucf101 group (_gNN_)", ["1", "2"],
                     "UCF-101/" + ucf_name("handwaving", 17, 1), "UCF101-layout data", "given split fold 1",
                     ("data.split=given",)),
}


@dataclass
class UserRun:
    """What the command lines of one layout printed and wrote."""
    layout: Layout
    raw: Path
    prepared: Path
    work: Path              # the working folder of every command (models/, tboard_logs/ land there)
    steps: dict[str, CompletedProcess]
    onnx: Path

    def results(self) -> dict:
        return json.loads((self.work / "models" / "GRUCell" / "results.json").read_text())

    def index(self) -> dict:
        return json.loads((self.prepared / "index.json").read_text())


def succeeded(step: str, result: CompletedProcess) -> CompletedProcess:
    assert result.returncode == 0, f"{step}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, f"{step}:\n{result.stderr}"
    return result


def assert_no_kth_names(text: str, where: str) -> None:
    found = KTH_NAMES.search(text)
    if found is not None:
        context = text[max(0, found.start() - 80):found.end() + 80]
        pytest.fail(f"{where} speaks of KTH's {found.group(0)!r}: ...{context}...")


def user_run(layout: Layout, tiny_raw: Path, root: Path) -> UserRun:
    """The layout's folder made under ``root``, then every command line of a user run on it, in order."""
    raw, prepared, work = layout.make(tiny_raw, root), root / "prepared", root / "work"
    work.mkdir()
    best, onnx_file, video = work / "models" / "GRUCell" / "best.pth", work / "my model.onnx", raw / layout.video
    commands = {  # in the order a user runs them, each in the working folder
        "prepare": ("src.data", "prepare", "--raw", raw, "--out", prepared, "--workers", "1"),
        "train": ("src.train", "--config", config_path("GRUCell"), "--data", prepared, "--set", *TINY,
                  *layout.train_set),
        "evaluate": ("src.evaluate", "--checkpoint", best),
        "predict": ("src.predict", "--checkpoint", best, video),
        "predict --json": ("src.predict", "--checkpoint", best, video, "--json"),
        "export": ("src.export", "--checkpoint", best, "--onnx", onnx_file),
        "predict onnx": ("src.predict", "--checkpoint", onnx_file, video, "--json")}
    steps = {step: succeeded(step, run_cli(*command, cwd=work)) for step, command in commands.items()}
    return UserRun(layout, raw, prepared, work, steps, onnx_file)


@pytest.fixture(scope="module")
def user_runs(tiny_raw, tmp_path_factory) -> dict[str, UserRun]:
    """:func:`user_run` of every layout; the layouts side by side (each command is one process of one thread)."""
    roots = {name: tmp_path_factory.mktemp(f"user_{name}") for name in LAYOUTS}
    with ThreadPoolExecutor(len(LAYOUTS)) as pool:
        runs = {name: pool.submit(user_run, LAYOUTS[name], tiny_raw, roots[name]) for name in LAYOUTS}
    return {name: run.result() for name, run in runs.items()}


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_prepare_lists_the_folders_own_classes(user_runs, name):
    run = user_runs[name]
    layout, index = run.layout, run.index()
    assert (index["version"], index["source"], index["classes"]) == (2, layout.source, layout.classes)
    assert (index["group_kind"], index["folds"], len(index["videos"]), index["failed"]) == (
        layout.group_kind, layout.folds, 24, [])
    assert {video["class"] for video in index["videos"]} == set(layout.classes)
    assert f"24 videos of 3 classes ({layout.source})" in run.steps["prepare"].stdout
    warned = [line for line in run.steps["prepare"].stderr.splitlines() if line.startswith("warning:")]
    if name == "folder":  # no groups.csv: one line says what that means
        assert len(warned) == 1 and "no groups.csv, so every video is its own group" in warned[0]
    else:
        assert warned == []
    assert_no_kth_names(json.dumps(index, ensure_ascii=False) + run.steps["prepare"].stdout, "prepare")


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_train_and_evaluate_speak_of_its_classes_and_record_its_split(user_runs, name):
    run = user_runs[name]
    classes, results = run.layout.classes, run.results()
    assert results["classes"] == results["provenance"]["classes"] == classes
    assert list(results["per_class_accuracy"]) == classes
    assert len(results["confusion_matrix"]) == 3 and all(len(row) == 3 for row in results["confusion_matrix"])
    assert {p["label"] for p in results["predictions"]} <= {0, 1, 2}
    assert all(len(p["probabilities"]) == 3 for p in results["predictions"])
    table = run.steps["evaluate"].stdout
    for class_name in classes:
        assert re.search(rf"^  {re.escape(class_name)}\s+\d\.\d{{4}}$", table, re.MULTILINE), table

    split = results["provenance"]["split"]
    groups = split["groups"]
    assert "persons" not in results["provenance"]  # KTH's word, for KTH data only
    assert all(groups[part] for part in ("train", "val", "test"))
    assert not set(groups["train"]) & set(groups["val"]) and not set(groups["test"]) & {*groups["train"],
                                                                                        *groups["val"]}
    tested = {p["video_id"] for p in results["predictions"]}
    if name == "folder":  # no protocol of its own: random, every video its own group
        assert (split["protocol"], split["fold"]) == ("random", None)
        ids = sorted(video["video_id"] for video in run.index()["videos"])
        assert sorted([*groups["train"], *groups["val"], *groups["test"]]) == ids
        assert tested == set(groups["test"]) and results["num_test_videos"] == len(groups["test"])
    else:  # trainlist01/testlist01: fold 1 tests g17; validation carved from the training groups
        assert (split["protocol"], split["fold"]) == ("given", 1)
        assert groups["test"] == ["g17"] and sorted([*groups["train"], *groups["val"]]) == ["g01", "g02", "g15"]
        assert all("_g17_" in video for video in tested) and results["num_test_videos"] == 6
    for step in ("train", "evaluate"):
        assert_no_kth_names(run.steps[step].stdout + run.steps[step].stderr, step)
    assert_no_kth_names(json.dumps({key: value for key, value in results.items() if key != "config"},
                                   ensure_ascii=False), "results.json")


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_predict_and_the_onnx_export_name_its_classes(user_runs, name):
    import onnx

    run = user_runs[name]
    classes = run.layout.classes
    table = run.steps["predict"].stdout.splitlines()
    assert re.split(r"\s{2,}", table[0].strip()) == ["input", "action", *classes]
    [by_checkpoint] = json.loads(run.steps["predict --json"].stdout)
    assert by_checkpoint["input"] == str(run.raw / run.layout.video)
    assert list(by_checkpoint["probabilities"]) == classes and by_checkpoint["action"] in classes
    assert all(f'"{name}"' in run.steps["predict --json"].stdout for name in classes)  # as written, not \u-escaped
    assert sum(by_checkpoint["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    row = re.split(r"\s{2,}", table[1].strip())  # the input's name, its class, the probability of each class
    assert row[:2] == [Path(run.layout.video).name, by_checkpoint["action"]]
    assert [float(p) for p in row[2:]] == pytest.approx(list(by_checkpoint["probabilities"].values()), abs=1e-3)

    metadata = {prop.key: prop.value for prop in onnx.load(str(run.onnx), load_external_data=False).metadata_props}
    assert json.loads(metadata["classes"]) == classes
    assert run.onnx.name in run.steps["export"].stdout
    [by_onnx] = json.loads(run.steps["predict onnx"].stdout)
    assert list(by_onnx["probabilities"]) == classes and by_onnx["action"] == by_checkpoint["action"]
    for class_name in classes:
        assert by_onnx["probabilities"][class_name] == pytest.approx(by_checkpoint["probabilities"][class_name],
                                                                     abs=2e-3)
    for step in ("predict", "predict --json", "export", "predict onnx"):
        assert_no_kth_names(run.steps[step].stdout + run.steps[step].stderr, step)
    assert_no_kth_names(metadata["classes"], "the ONNX metadata")


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_the_notebook_on_the_prepared_folder_speaks_of_its_classes(user_runs, monkeypatch, torch_home, name):
    from tests.test_notebook import execute

    run = user_runs[name]
    classes, tested = run.layout.classes, run.results()["provenance"]["split"]["groups"]["test"]
    record = snapshot(*RECORD)
    text, notebook = execute(monkeypatch, {"NOTEBOOK_DATA": str(run.prepared), "NOTEBOOK_WORKDIR": str(run.work),
                                           "NOTEBOOK_SET": " ".join([*TINY, *run.layout.train_set]),
                                           "NOTEBOOK_BENCH": "--rounds 1 --conv-rounds 1"})
    assert "profile: full" in text and f"**Not KTH**: {run.layout.label} from" in text
    assert f"3 classes: {', '.join(classes)}; data fingerprint" in text
    assert (f"Measured on {run.layout.label}, **not on real KTH** (data fingerprint sha1:" in text
            and f"...; {run.layout.split}, test groups {', '.join(tested)}, model selection on validation groups)"
            in text)
    assert "training again" not in text  # the GRUCell run of the command lines is reused, checkpoint and all
    assert "GRUCell                          test clip accuracy" in text
    assert "| " + " | ".join(f"{name} acc %" for name in classes) + " |" in re.sub(r" {2,}", " ", text)
    assert f"predicts the 3 classes of its data ({', '.join(classes)}), not KTH's actions" in text
    samples = {path.stem.removeprefix("sample_") for path in (run.work / "imgs").glob("sample_*.gif")}
    assert samples and samples <= set(classes)
    assert (run.work / "imgs" / "confusion_GRUCell.png").stat().st_size > 0
    shown = [value for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
             for key, value in [("text", output.get("text", "")), *output.get("data", {}).items()]
             if not key.startswith("image/")]
    assert_no_kth_names("".join(map(str, shown)), "the notebook's outputs")
    assert snapshot(*RECORD) == record  # nothing of the repository's tables, figures or runs rewritten


# ---------------------------------------------------------------- KTH's official split, K-fold

def test_schuldt2004_trains_and_tests_on_kths_official_persons(tiny_prepared, tmp_path):
    succeeded("train", run_cli("src.train", "--config", config_path("GRUCell"), "--data", tiny_prepared,
                               "--set", *TINY, "data.split=schuldt2004", cwd=tmp_path))
    best = tmp_path / "models" / "GRUCell" / "best.pth"
    succeeded("evaluate", run_cli("src.evaluate", "--checkpoint", best, cwd=tmp_path))
    results = json.loads(best.with_name("results.json").read_text())
    # the twin's persons 1, 2, 15, 17 under train 11-18, val 19-21, 23-25, 1, 4, test 22, 2, 3, 5-10
    official = {"train": [15, 17], "val": [1], "test": [2]}
    provenance = results["provenance"]
    assert provenance["split"] == {"protocol": "schuldt2004", "fold": None, "groups": official}
    assert provenance["persons"] == official
    assert {p["video_id"].split("_")[0] for p in results["predictions"]} == {"person02"}
    assert results["num_test_videos"] == 12 and results["config"]["data"]["split"] == "schuldt2004"


def test_the_suites_folds_give_a_mean_over_folds_each_video_tested_once(tiny_prepared, tmp_path):
    runs = tmp_path / "kfold"
    result = succeeded("suite", run_cli("src.suite", "--configs", REPO / "configs", "--folds", "2", "--only", "GRUCell",
                                        "--seeds", "1", "--data", tiny_prepared, "--set", *TINY, "--models-dir", runs,
                                        cwd=tmp_path))
    assert "kfold.md" in result.stdout
    folds = [json.loads((runs / f"GRUCell_fold{k}" / "results.json").read_text()) for k in (1, 2)]
    tested = [fold["provenance"]["split"]["groups"]["test"] for fold in folds]
    assert [fold["provenance"]["split"]["protocol"] for fold in folds] == ["kfold", "kfold"]
    assert not set(tested[0]) & set(tested[1]) and sorted(tested[0] + tested[1]) == [1, 2, 15, 17]
    videos = [{p["video_id"] for p in fold["predictions"]} for fold in folds]
    every = {video["video_id"] for video in json.loads((tiny_prepared / "index.json").read_text())["videos"]}
    assert not videos[0] & videos[1] and videos[0] | videos[1] == every and len(every) == 48

    kfold = (runs / "kfold.md").read_text()
    rows = [line for line in kfold.splitlines() if line.startswith("| GRUCell ")]
    assert len(rows) == 1, kfold
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")]
    accuracies = [fold["video_accuracy"] for fold in folds]
    mean, std = sum(accuracies) / 2, abs(accuracies[0] - accuracies[1]) / 2 ** 0.5
    correct = sum(round(fold["video_accuracy"] * fold["num_test_videos"]) for fold in folds)
    assert cells[:6] == ["GRUCell", "0", "2", "48", f"{100 * correct / 48:.1f}", f"{100 * mean:.1f} ± {100 * std:.1f}"]
    assert "every video is tested exactly once" in kfold and "Not averaged" not in kfold
    assert not any((tmp_path / folder).exists() for folder in ("results", "imgs", "tboard_logs", "models"))


# ---------------------------------------------------------------- the committed results

def test_the_committed_results_still_make_the_committed_table(tmp_path):
    record = snapshot(*RECORD)
    out = tmp_path / "out"
    succeeded("compare", run_cli("src.compare", "--models-dir", REPO / "models", "--out", out, "--imgs", out,
                                 "--configs", REPO / "configs", cwd=tmp_path))

    def table(path: Path) -> list[str]:
        return [line for line in path.read_text().splitlines() if line.startswith("|")]

    made, committed = table(out / "results.md"), table(REPO / "results" / "results.md")
    assert len(committed) > 3 and made[:2] == committed[:2]  # the columns, the per-class ones included
    assert made[2:] == committed[2:]  # the rows of the table body
    assert snapshot(*RECORD) == record  # nothing written under results/, imgs/ or models/
