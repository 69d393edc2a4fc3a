"""src/evaluate.py: test-person evaluation of a trained checkpoint, written to results.json."""
import json
import shutil
from pathlib import Path

import pytest
import torch

from src.config import load_config
from src.data.dataset import KTHActionDataset
from src.data.sources.kth import ACTIONS, TEST_PERSONS
from src.evaluate import main, print_results_table
from src.nets.classifier import count_parameters
from src.training.checkpoint import load_model
from src.training.device import cpu_description
from src.training.evaluation import evaluate, measure_speed, write_json
from src.training.trainer import train
from tests.conftest import FOUR_CLASSES

REPO = Path(__file__).resolve().parents[1]
TINY = ["model.emb_dim=16", "model.hidden_dim=16", "model.num_layers=1", "data.max_frames=4",
        "data.train_clips_per_video=1", "data.eval_clips_per_video=3", "train.batch_size=8", "train.epochs=2",
        "eval.latency_repeats=3", "train.amp=false"]  # float32 on any CPU
RESULT_KEYS = {"experiment", "seed", "checkpoint", "config", "data_root", "synthetic", "device", "torch_threads",
               "best_epoch", "val_accuracy", "val_video_accuracy", "num_test_clips", "num_test_videos",
               "clip_accuracy", "video_accuracy", "classes", "per_class_accuracy", "confusion_matrix", "test_loss",
               "num_params", "epoch_time_s", "epochs", "data_wait_share", "time_to_best_s", "latency_ms",
               "throughput_clips_per_s", "amp", "precision", "provenance", "history", "predictions",
               "early_recognition", "state_rules"}


@pytest.fixture(scope="module")
def trained(tiny_prepared, tmp_path_factory):
    """The best.pth of a 2-epoch GRUCell run (seed 3) on the tiny twin."""
    out = tmp_path_factory.mktemp("eval_run")
    config = load_config("configs/GRUCell.yaml", [*TINY, "train.seed=3", f"log.models_dir={out / 'models'}",
                                                  f"log.tboard_dir={out / 'tboard'}"], name="GRUCell_seed3")
    summary = train(config, data_root=tiny_prepared)
    return out / "models" / "GRUCell_seed3" / "best.pth", summary


def test_results_json_has_every_field_with_plausible_values(trained, tiny_prepared, capsys):
    best_path, summary = trained
    main(["--checkpoint", str(best_path), "--device", "cpu"])
    printed = capsys.readouterr().out
    assert "test clip accuracy" in printed and "state rules (val subsequences)   carry: " in printed
    results = json.loads(best_path.with_name("results.json").read_text())
    assert set(results) == RESULT_KEYS
    assert [p.name for p in best_path.parent.iterdir() if p.name.startswith(".")] == []  # no temp file left

    test_set = KTHActionDataset(tiny_prepared, split="test", clips_per_video=3, max_frames=4)
    assert {v["person"] for v in test_set.videos} <= set(TEST_PERSONS)
    assert results["num_test_clips"] == len(test_set) == 3 * results["num_test_videos"]
    assert sum(map(sum, results["confusion_matrix"])) == results["num_test_clips"]
    assert len(results["confusion_matrix"]) == len(ACTIONS)
    for key in ("clip_accuracy", "video_accuracy", "val_accuracy", "val_video_accuracy", "data_wait_share"):
        assert 0 <= results[key] <= 1, key
    diagonal = sum(results["confusion_matrix"][i][i] for i in range(len(ACTIONS)))
    assert results["clip_accuracy"] == pytest.approx(diagonal / results["num_test_clips"])
    assert list(results["per_class_accuracy"]) == results["classes"] == list(ACTIONS)
    assert all(0 <= acc <= 1 for acc in results["per_class_accuracy"].values())

    assert (results["experiment"], results["seed"]) == ("GRUCell_seed3", 3)
    assert results["data_root"] == str(tiny_prepared) and results["synthetic"] is True
    assert (results["best_epoch"], results["val_accuracy"]) == (summary["best_epoch"], summary["best_val_accuracy"])
    model, _ = load_model(best_path)
    assert results["num_params"] == count_parameters(model) == summary["num_params"]
    assert results["device"] == "cpu"
    assert results["provenance"]["train_machine"] == cpu_description()
    assert results["epoch_time_s"] > 0 and results["latency_ms"] > 0
    assert results["throughput_clips_per_s"] > 0
    assert results["config"]["model"]["hidden_dim"] == 16

    early = results["early_recognition"]  # the stream after all max_frames steps of a clip is the clip
    assert early["steps"] == [1, 2, 3, 4] and early["clip_accuracy"][-1] == pytest.approx(results["clip_accuracy"])
    assert early["clips"] == results["num_test_clips"] and len(early["subsequence_accuracy"]) == 10
    assert set(results["state_rules"]["subsequences"]) == {"carry", "reset", "window"}
    validation = results["state_rules"]["validation"]  # the rules on the validation persons' subsequences too
    val_set = KTHActionDataset(tiny_prepared, split="val", clips_per_video=3, max_frames=4)
    assert {v["person"] for v in val_set.videos}.isdisjoint(TEST_PERSONS)
    assert validation["num_subsequences"] == sum(map(len, val_set.segments))
    assert set(validation["subsequences"]) == {"carry", "reset", "window"}


def test_no_early_skips_early_recognition(trained, capsys):
    best_path, _ = trained
    main(["--checkpoint", str(best_path), "--device", "cpu", "--no-early"])
    results = json.loads(best_path.with_name("results.json").read_text())
    assert set(results) == RESULT_KEYS - {"early_recognition", "state_rules"}
    assert "streamed" not in capsys.readouterr().out
    main(["--checkpoint", str(best_path), "--device", "cpu"])
    assert "streamed clip acc after t steps  t=1: " in capsys.readouterr().out


def test_evaluate_is_deterministic_and_can_skip_writing(trained):
    best_path, _ = trained
    first = evaluate(best_path, device="cpu", write=False)
    second = evaluate(best_path, device="cpu", batch_size=5, write=False)
    for key in ("clip_accuracy", "video_accuracy", "confusion_matrix", "per_class_accuracy"):
        assert first[key] == second[key], key


def test_measure_speed_reports_positive_numbers():
    import torch

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 6))
    speed = measure_speed(model, (4, 1, 8, 8), torch.device("cpu"), repeats=3, batch_size=4)
    assert speed["latency_ms"] > 0 and speed["throughput_clips_per_s"] > 0


def test_missing_checkpoint_is_a_one_line_error(tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["--checkpoint", str(tmp_path / "Nope" / "best.pth")])
    message = str(info.value.code)
    assert str(tmp_path / "Nope" / "best.pth") in message and "\n" not in message


def test_a_checkpoint_in_the_folder_of_another_run_is_refused_before_the_data(trained, tmp_path, capsys,
                                                                             monkeypatch):
    """GRUCell_seed3's best.pth copied over GRUCell's would write a results.json of GRUCell_seed3 into GRUCell's
    folder (issue 34 #3): refused in one line naming the checkpoint, both runs and what to do; nothing changed."""
    from src.training import evaluation

    best_path, _ = trained
    folder = tmp_path / "models" / "GRUCell"
    folder.mkdir(parents=True)
    copy = Path(shutil.copy(best_path, folder / "best.pth"))
    (folder / "results.json").write_text('{"experiment": "GRUCell"}')
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    monkeypatch.setattr(evaluation, "make_test_set", lambda *_: pytest.fail("the data was read"))
    with pytest.raises(SystemExit) as refusal:
        main(["--checkpoint", str(copy), "--device", "cpu"])
    assert refusal.value.code == (f"error: {copy}: the checkpoint of run 'GRUCell_seed3', in the folder of run "
                                  f"'GRUCell', whose results.json would be counted as GRUCell's; put it in "
                                  f"{tmp_path / 'models' / 'GRUCell_seed3'}/, or evaluate it from a folder of its own")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before and capsys.readouterr().out == ""


def test_a_checkpoint_in_its_own_folder_or_in_a_folder_of_no_run_is_evaluated_there(trained, tmp_path):
    """The folder named after the run (``GRUCell_seed3``), or one without a run's files (a temporary or download
    folder holding a copy): no refusal. A second file of a run beside the copy makes the folder a run's."""
    from src.training.evaluation import ForeignFolderError, check_results_folder

    best_path, _ = trained
    checkpoint = torch.load(best_path)
    check_results_folder(best_path, checkpoint)  # its own folder, with last.pth and results.json beside it
    copy = Path(shutil.copy(best_path, tmp_path / "best.pth"))
    (tmp_path / "notes.txt").write_text("a download folder")
    check_results_folder(copy, checkpoint)
    for name in ("last.pth", "results.json", "run.lock"):
        (tmp_path / name).touch()
        with pytest.raises(ForeignFolderError, match=f"in the folder of run '{tmp_path.name}'"):
            check_results_folder(copy, checkpoint)
        (tmp_path / name).unlink()


def test_split_claims_hold_on_what_train_and_evaluate_loaded(trained, tiny_prepared):
    """train persons within 1-14, val = {15, 16}, test within 17-25, all disjoint: checked on the persons
    recorded in the checkpoint (what train loaded) and in results.json (what evaluate loaded). The tiny
    twin has persons 1, 2, 15 and 17 only, so each split holds what of its persons the data has."""
    best_path, _ = trained
    results = evaluate(best_path, device="cpu", write=False)
    present = {video["person"] for video in json.loads((tiny_prepared / "index.json").read_text())["videos"]}
    for persons in (torch.load(best_path)["provenance"]["persons"], results["provenance"]["persons"]):
        train, val = set(persons["train"]), set(persons["val"])
        assert train == present & set(range(1, 15)) and val == present & {15, 16}
    test = set(results["provenance"]["persons"]["test"])
    assert test == present & set(range(17, 26))
    assert train and val and test and not (train & val or train & test or val & test)


def test_results_carry_the_history_of_every_epoch_and_every_clip_prediction(trained):
    best_path, _ = trained
    results = evaluate(best_path, device="cpu", write=False)
    last = torch.load(best_path.with_name("last.pth"))
    assert results["history"] == last["metrics"]["history"] and results["epochs"] == len(results["history"]) == 2
    assert results["epoch_time_s"] == pytest.approx(sum(r["epoch_time_s"] for r in results["history"]) / 2)
    assert results["amp"] is False and results["provenance"]["train_amp"] is False
    assert results["precision"] == results["provenance"]["train_precision"] == "float32"
    data = results["provenance"]["data"]
    assert data == results["provenance"]["train_data"] and data["synthetic"] and data["preset"] == "tiny"
    predictions = results["predictions"]
    assert len(predictions) == results["num_test_clips"]
    correct = sum(p["predicted"] == p["label"] for p in predictions)
    assert correct / len(predictions) == pytest.approx(results["clip_accuracy"])
    for p in predictions:
        assert abs(sum(p["probabilities"]) - 1) < 1e-3
        assert p["predicted"] == max(range(len(ACTIONS)), key=p["probabilities"].__getitem__)
    starts = {(p["video_id"], p["start"]) for p in predictions}
    assert len(starts) == len(predictions)  # each clip named once by its video and first frame


def test_a_truncated_last_pth_costs_only_the_history(trained, tmp_path, caplog):
    """best.pth is good, last.pth beside it is cut short: the results keep best.pth's history, with a warning."""
    import shutil

    from src.training.evaluation import full_history

    best_path, _ = trained
    shutil.copy(best_path, tmp_path / "best.pth")
    (tmp_path / "last.pth").write_bytes(best_path.with_name("last.pth").read_bytes()[:1000])
    checkpoint = torch.load(tmp_path / "best.pth")
    assert full_history(tmp_path / "best.pth", checkpoint) == checkpoint["metrics"]["history"]
    assert caplog.messages == [f"{tmp_path / 'last.pth'}: holds no readable history; the history stops at epoch "
                               f"{len(checkpoint['metrics']['history'])}"]


def test_a_checkpoint_without_training_metrics_is_refused_before_the_data(tmp_path):
    from src.nets.classifier import build_model
    from src.training.checkpoint import CheckpointReadError, save_checkpoint

    config = load_config("configs/GRUCell.yaml", ["model.emb_dim=8", "model.hidden_dim=8", "model.num_layers=1"])
    save_checkpoint({"config": config, "model_state_dict": build_model(config["model"], len(ACTIONS)).state_dict(),
                     "classes": list(ACTIONS), "channels": 1}, tmp_path / "best.pth")
    with pytest.raises(CheckpointReadError, match="holds no training metrics"):
        evaluate(tmp_path / "best.pth", device="cpu")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pth"]


def test_the_results_of_a_four_class_run_speak_of_its_classes(four_class_run, capsys):
    results = json.loads((four_class_run / "models" / "GRUCell" / "results.json").read_text())
    assert results["classes"] == list(results["per_class_accuracy"]) == FOUR_CLASSES
    confusion = results["confusion_matrix"]
    assert len(confusion) == len(FOUR_CLASSES) and all(len(row) == len(FOUR_CLASSES) for row in confusion)
    assert sum(map(sum, confusion)) == results["num_test_clips"] == len(results["predictions"])
    for p in results["predictions"]:
        assert len(p["probabilities"]) == len(FOUR_CLASSES) and 0 <= p["label"] < len(FOUR_CLASSES)
    print_results_table(results)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines if line.startswith("  ")] == FOUR_CLASSES  # the per-class rows
    assert not any(action in "".join(lines) for action in ACTIONS)


def test_a_class_without_test_videos_is_null_in_results_json_and_a_dash_in_the_table(tmp_path, capsys):
    """No accuracy, not 0 %: NaN in memory, null in results.json (NaN is not JSON), '–' in the printed table; the
    committed results.json files, which have none, are written byte for byte as they are."""
    committed = REPO / "models" / "GRUCell" / "results.json"
    results = json.loads(committed.read_text())
    assert write_json(results, tmp_path / "same.json").read_bytes() == committed.read_bytes()
    results["per_class_accuracy"]["jogging"] = float("nan")
    results["history"][0]["val_per_class_accuracy"] = [0.5, float("nan")]
    text = write_json(results, tmp_path / "results.json").read_text()
    assert '"jogging": null' in text and "NaN" not in text
    again = json.loads(text)
    assert again["per_class_accuracy"]["jogging"] is None and again["history"][0]["val_per_class_accuracy"][1] is None
    for shown in (results, again):
        print_results_table(shown)
        rows = {line.split()[0]: line.split(maxsplit=1)[1] for line in capsys.readouterr().out.splitlines()
                if line.startswith("  ")}
        assert rows["jogging"] == "–  (no test videos)" and rows["walking"] == "0.9778"


def test_data_of_other_classes_than_the_checkpoints_is_refused_in_one_line(four_class_run, tiny_prepared):
    best = four_class_run / "models" / "GRUCell" / "best.pth"
    before = best.with_name("results.json").read_bytes()
    with pytest.raises(SystemExit) as info:
        main(["--checkpoint", str(best), "--data", str(tiny_prepared), "--device", "cpu"])
    message = str(info.value.code)
    assert message.startswith(f"error: {tiny_prepared}: its class 0 is 'walking', the checkpoint's 'stroll'")
    assert str(best) in message and "give --data the prepared data it was trained on" in message
    assert "\n" not in message and best.with_name("results.json").read_bytes() == before
