"""src/predict.py on the real KTH samples, with a model trained for one epoch on the tiny twin."""
import json
import math
import subprocess
from pathlib import Path

import pytest
import torch
from PIL import Image

from src.config import load_config
from src.data.augment import get_test_transforms
from src.data.dataset import KTHActionDataset
from src.data.prepare import decode_video, prepare
from src.data.sources.kth import ACTIONS
from src.inference.clips import evenly_spaced_starts, sliding_starts
from src.inference.gif import band_height
from src.inference.predictor import load_predictor, predict_input
from src.nets.classifier import build_model
from src.predict import main
from src.training.checkpoint import load_model, save_checkpoint
from src.training.trainer import train
from tests.conftest import FOUR_CLASSES

TINY = ["model.emb_dim=16", "model.hidden_dim=16", "model.num_layers=1", "data.max_frames=4",
        "data.train_clips_per_video=1", "data.eval_clips_per_video=2", "train.batch_size=8", "train.epochs=1"]
FRAMES = {"person01_handclapping_d1_uncomp.avi": 378, "person01_handclapping_d2_uncomp.avi": 550,
          "person01_jogging_d1_uncomp.avi": 415, "person01_boxing_d2_uncomp.mp4": 390,
          "person03_boxing_d4_uncomp.mp4": 512, "person04_boxing_d1_uncomp.mp4": 328}
SPAN = (4 - 1) * 3 + 1  # max_frames 4, slicing_step 3 (base.yaml)


@pytest.fixture(scope="module")
def checkpoint(tiny_prepared, tmp_path_factory):
    """best.pth of a 1-epoch GRUCell run on the tiny twin."""
    out = tmp_path_factory.mktemp("predict_run")
    config = load_config("configs/GRUCell.yaml", [*TINY, f"log.models_dir={out / 'models'}",
                                                  f"log.tboard_dir={out / 'tboard'}"])
    train(config, data_root=tiny_prepared)
    return out / "models" / "GRUCell" / "best.pth"


def run_json(capsys, *args):
    code = main([*map(str, args), "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def test_every_real_sample_gets_a_prediction(checkpoint, kth_samples, capsys):
    videos = sorted(kth_samples.glob("person*"))
    assert len(videos) == 6
    code, results, _ = run_json(capsys, "--checkpoint", checkpoint, *videos)
    assert code == 0
    assert [r["input"] for r in results] == [str(v) for v in videos]
    for r in results:
        assert r["action"] in ACTIONS and list(r["probabilities"]) == list(ACTIONS)
        assert sum(r["probabilities"].values()) == pytest.approx(1, abs=1e-3)
        assert r["action"] == max(r["probabilities"], key=r["probabilities"].get)
        assert r["fps"] == 25 and r["num_frames"] == FRAMES[Path(r["input"]).name]  # as the samples' README says
        assert "note" not in r and "timeline" not in r

    assert main(["--checkpoint", str(checkpoint), *map(str, videos)]) == 0  # the table
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["input", "action", *ACTIONS] and len(table) == 7
    assert [line.split()[1] for line in table[1:]] == [r["action"] for r in results]


def test_the_video_prediction_averages_the_datasets_evenly_spaced_clips(checkpoint, kth_samples, tmp_path):
    """The same frames, windows and padding as KTHActionDataset's fixed clips over the whole video."""
    prepared = tmp_path / "prepared"
    prepare(kth_samples, prepared, workers=1, write_png=False)
    dataset = KTHActionDataset(prepared, split="train", persons=(1,), clips_per_video=7, max_frames=4,
                               transform=get_test_transforms(slicing_step=3), use_sequences=False, return_meta=True)
    model, _ = load_model(checkpoint)
    predictor = load_predictor(checkpoint)
    for v, video in enumerate(dataset.videos):
        items = [dataset[i] for i, (video_index, _) in enumerate(dataset.clips) if video_index == v]
        num_frames = len(dataset.video_frames[v])
        assert [start for start, _ in dataset.windows[7 * v:7 * v + 7]] == evenly_spaced_starts(num_frames, SPAN, 7)
        with torch.no_grad():
            expected = model(torch.stack([frames for frames, _, _ in items])).mean(0).softmax(0)
        result = predict_input(predictor, next(kth_samples.glob(f"{video['video_id']}_*")), clips=7)
        assert list(result["probabilities"].values()) == pytest.approx(expected.tolist(), abs=1e-4)


def test_the_timeline_marks_windows_of_a_real_sample(checkpoint, kth_samples, capsys):
    video = kth_samples / "person01_jogging_d1_uncomp.avi"
    code, [result], _ = run_json(capsys, "--checkpoint", checkpoint, video, "--timeline")
    assert code == 0
    windows = result["timeline"]
    num_frames = result["num_frames"]
    assert len(windows) == math.ceil(num_frames / SPAN)
    assert windows[0]["start_frame"] == 0 and windows[-1]["end_frame"] == num_frames
    for before, after in zip(windows[:-2], windows[1:-1]):  # back to back; the last one ends at the video's end
        assert after["start_frame"] == before["end_frame"]
    for w in windows:
        assert w["end_frame"] - w["start_frame"] == SPAN
        assert (w["start_s"], w["end_s"]) == pytest.approx((w["start_frame"] / 25, w["end_frame"] / 25), abs=1e-3)
        assert w["action"] in ACTIONS and 1 / len(ACTIONS) <= w["probability"] <= 1

    main(["--checkpoint", str(checkpoint), str(video), "--timeline", "--stride", "5"])
    out = capsys.readouterr().out
    assert f"{len(sliding_starts(num_frames, SPAN, 5))} windows ({num_frames} frames, 25 fps)" in out


def test_sliding_and_evenly_spaced_starts():
    assert sliding_starts(30, 10, 10) == [0, 10, 20]
    assert sliding_starts(35, 10, 10) == [0, 10, 20, 25]
    assert sliding_starts(4, 10, 10) == [0]
    assert evenly_spaced_starts(19, 10, 2) == [2, 7]  # 10 starts: centred
    assert evenly_spaced_starts(4, 10, 3) == [0, 0, 0]


def test_bad_inputs_get_one_line_each_and_the_others_go_on(checkpoint, kth_samples, tmp_path, capsys):
    empty = tmp_path / "empty.avi"
    empty.touch()
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    short = tmp_path / "short_frames"  # a folder of 5 frames: shorter than one clip
    short.mkdir()
    for t, frame in enumerate(decode_video(kth_samples / "person04_boxing_d1_uncomp.mp4")[:5]):
        Image.fromarray(frame).save(short / f"frame_{t:03d}.png")
    good = kth_samples / "person04_boxing_d1_uncomp.mp4"
    code, results, err = run_json(capsys, "--checkpoint", checkpoint, empty, good, text, short,
                                  tmp_path / "missing.avi", tmp_path)
    assert code == 1
    assert [("error" in r) for r in results] == [True, False, True, False, True, True]
    for r in (results[0], results[2], results[4], results[5]):
        assert r["error"].startswith(r["input"]) and "\n" not in r["error"]
    assert "empty file" in results[0]["error"] and "not a readable video" in results[2]["error"]
    assert "no such file" in results[4]["error"] and "without image files" in results[5]["error"]
    assert results[3]["num_frames"] == 5 and "padded" in results[3]["note"]
    assert len([line for line in err.splitlines() if line.startswith("error: ")]) == 4
    assert f"note: {short}" in err

    code, results, _ = run_json(capsys, "--checkpoint", checkpoint, good)
    assert code == 0


def test_a_path_holding_a_newline_is_escaped_in_the_table_and_kept_in_the_json(checkpoint, tiny_raw, tmp_path,
                                                                               capsys):
    """issue 34 #12: a raw newline in a path broke the table's rows; it is shown as ``\\n``, the JSON keeps it."""
    good = tmp_path / "two\nlines.avi"
    good.write_bytes(sorted(tiny_raw.glob("boxing/*.avi"))[0].read_bytes())
    missing = tmp_path / "gone\nfile.avi"
    assert main(["--checkpoint", str(checkpoint), str(good), str(missing)]) == 1
    captured = capsys.readouterr()
    rows = captured.out.splitlines()
    assert len(rows) == 3 and rows[1].startswith("two\\nlines.avi  ") and rows[2].startswith("gone\\nfile.avi  error: ")
    escaped = str(missing).replace("\n", "\\n")
    assert escaped in rows[2]
    code, results, err = run_json(capsys, "--checkpoint", checkpoint, good, missing)
    assert [r["input"] for r in results] == [str(good), str(missing)] and results[1]["error"].startswith(str(missing))
    assert err.count("\n") == 1 and err.startswith(f"error: {escaped}: ")


def test_a_file_that_is_not_a_checkpoint_is_one_line(kth_samples, tmp_path, capsys):
    for bad in (tmp_path / "notes.pth", tmp_path / "model.onnx", tmp_path / "missing.pth"):
        if bad.name != "missing.pth":
            bad.write_text("hello")
        assert main(["--checkpoint", str(bad), str(kth_samples / "person04_boxing_d1_uncomp.mp4")]) == 1
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.count("\n") == 1 and str(bad) in captured.err


def test_gif_shows_every_window(checkpoint, kth_samples, tmp_path, capsys):
    video = kth_samples / "person04_boxing_d1_uncomp.mp4"
    assert main(["--checkpoint", str(checkpoint), str(video), "--gif", str(tmp_path / "out.gif")]) == 0
    assert f"gif written to {tmp_path / 'out.gif'}" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["out.gif"]  # no temp file left
    with Image.open(tmp_path / "out.gif") as gif:
        assert gif.n_frames == math.ceil(328 / 3)  # every slicing_step-th frame
        assert gif.info["duration"] == 120  # real speed: 3 frames at 25 fps
        assert gif.size == (64, 64 + band_height(64))  # the model's input size (issue 33 #10), not 2x the video's


def test_the_onnx_export_predicts_like_the_checkpoint(checkpoint, kth_samples, tmp_path, capsys):
    from src.inference.export import export_onnx

    onnx_path = export_onnx(checkpoint, tmp_path / "gru.onnx")
    videos = [kth_samples / "person01_handclapping_d1_uncomp.avi", kth_samples / "person03_boxing_d4_uncomp.mp4"]
    _, from_checkpoint, _ = run_json(capsys, "--checkpoint", checkpoint, *videos, "--timeline")
    code, from_onnx, _ = run_json(capsys, "--checkpoint", onnx_path, *videos, "--timeline")
    assert code == 0
    for a, b in zip(from_checkpoint, from_onnx):
        assert a["action"] == b["action"]
        assert list(a["probabilities"].values()) == pytest.approx(list(b["probabilities"].values()), abs=1e-4)
        assert [w["start_frame"] for w in a["timeline"]] == [w["start_frame"] for w in b["timeline"]]


def test_gif_paths_that_cannot_be_written_are_refused_before_any_input_is_read(checkpoint, tiny_raw, tmp_path,
                                                                               capsys):
    first, second = sorted(tiny_raw.glob("boxing/*.avi"))[:2]
    twin = tmp_path / "other" / first.name  # another input with the same name: both would write out_<name>.gif
    twin.parent.mkdir()
    twin.write_bytes(first.read_bytes())
    (tmp_path / "a_folder.gif").mkdir()
    for gif, inputs, words in ((tmp_path / "a_folder.gif", [first], ["is a folder"]),
                               (tmp_path / "out.gif", [first, twin], ["would both write", first.stem])):
        assert main(["--checkpoint", str(checkpoint), *map(str, inputs), "--gif", str(gif), "--json"]) == 1
        captured = capsys.readouterr()
        assert captured.err.count("\n") == 1 and captured.err.startswith(f"error: --gif {gif}")
        assert all(word in captured.err for word in words)
        assert json.loads(captured.out)["error"] == captured.err.strip().removeprefix("error: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_folder.gif", "other"]


def test_a_gif_that_fails_to_write_keeps_the_prediction(checkpoint, tiny_raw, tmp_path, capsys, monkeypatch):
    """Disk full at the end: the prediction is printed, the gif error names the gif, the exit code is 1."""
    import errno

    import src.inference.predictor

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(src.inference.predictor, "write_gif", disk_full)
    video = sorted(tiny_raw.glob("boxing/*.avi"))[0]
    code, [result], err = run_json(capsys, "--checkpoint", checkpoint, video, "--gif", tmp_path / "out.gif")
    assert code == 1 and result["action"] in ACTIONS and "error" not in result and "gif" not in result
    assert result["gif_error"] == f"--gif {tmp_path / 'out.gif'}: could not be written (No space left on device); " \
                                  f"the prediction is kept"
    assert [line for line in err.splitlines() if line.startswith("error: ")] == [f"error: {result['gif_error']}"]


def test_a_missing_onnx_file_and_bad_numbers_are_one_line(checkpoint, tiny_raw, tmp_path, capsys):
    video = str(sorted(tiny_raw.glob("boxing/*.avi"))[0])
    assert main(["--checkpoint", str(tmp_path / "gone.onnx"), video]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == f"error: {tmp_path / 'gone.onnx'}: no such file; give an ONNX " \
                                                  f"file of 'python -m src.export' or a checkpoint " \
                                                  f"(models/<experiment>/best.pth)\n"
    for flag in ("--stride", "--clips"):
        with pytest.raises(SystemExit) as info:
            main(["--checkpoint", str(checkpoint), video, flag, "-3"])
        assert info.value.code == 2 and f"argument {flag}: must be >= 1, got -3" in capsys.readouterr().err


def test_a_four_class_checkpoint_predicts_its_four_names(four_class_run, tiny_raw, capsys):
    best = four_class_run / "models" / "GRUCell" / "best.pth"
    video = sorted(tiny_raw.glob("boxing/*.avi"))[0]
    code, [result], _ = run_json(capsys, "--checkpoint", best, video, "--timeline")
    assert code == 0 and result["action"] in FOUR_CLASSES and list(result["probabilities"]) == FOUR_CLASSES
    assert result["timeline"] and all(window["action"] in FOUR_CLASSES for window in result["timeline"])
    assert main(["--checkpoint", str(best), str(video)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["input", "action", *FOUR_CLASSES] and len(table) == 2
    assert table[1].split()[1] == result["action"]


def test_a_colour_checkpoint_gets_rgb_frames_of_videos_and_of_frame_folders(tiny_raw, tmp_path):
    """A model trained on 3 channels: predict decodes RGB, reads frame folders in RGB, draws an RGB gif."""
    config = load_config("configs/GRUCell.yaml", ["model.emb_dim=8", "model.hidden_dim=8", "model.num_layers=1",
                                                  "data.max_frames=4", "data.img_size=32"])
    model = build_model(config["model"], num_classes=2, in_channels=3)
    save_checkpoint({"config": config, "model_state_dict": model.state_dict(), "classes": ["red", "blue"],
                     "channels": 3}, tmp_path / "best.pth")
    predictor = load_predictor(tmp_path / "best.pth")
    assert (predictor.classes, predictor.channels) == (["red", "blue"], 3)
    shapes, logits_of = [], predictor.logits_of
    predictor.logits_of = lambda clips: shapes.append(tuple(clips.shape)) or logits_of(clips)
    video = sorted(tiny_raw.glob("boxing/*.avi"))[0]
    result = predict_input(predictor, video, clips=2, gif=tmp_path / "out.gif")
    assert shapes[0] == (2, 4, 3, 32, 32) and list(result["probabilities"]) == ["red", "blue"]
    with Image.open(tmp_path / "out.gif") as gif:
        assert gif.convert("RGB").size == (32, 32 + band_height(32))
    frames = tmp_path / "frames"  # a folder of colour images
    frames.mkdir()
    for t in range(12):
        Image.new("RGB", (40, 30), (255, 20 * t, 0)).save(frames / f"{t:02d}.png")
    shapes.clear()
    result = predict_input(predictor, frames, clips=1)
    assert shapes == [(1, 4, 3, 32, 32)] and result["num_frames"] == 12


MODEL_OF_RECORD = Path("models/GRUCell/best.pth")  # committed in git (README, "Use a trained model")


def committed_model_of_record(tmp_path: Path) -> Path:
    """The model of record as git holds it: ``make run`` trains models/GRUCell again, over the committed file, and
    this test is of the committed one. The working tree's file outside a git checkout."""
    blob = subprocess.run(["git", "show", f"HEAD:{MODEL_OF_RECORD.as_posix()}"], capture_output=True)
    if blob.returncode != 0:
        return MODEL_OF_RECORD
    (tmp_path / "best.pth").write_bytes(blob.stdout)
    return tmp_path / "best.pth"


@pytest.mark.slow  # a git subprocess
def test_the_committed_model_of_record_loads_and_predicts_the_real_samples_as_the_readme_says(kth_samples, capsys,
                                                                                               tmp_path):
    from src.training.checkpoint import RESUME_ONLY_KEYS

    assert MODEL_OF_RECORD.is_file(), f"{MODEL_OF_RECORD} is not in this checkout; it is committed in git"
    model_of_record = committed_model_of_record(tmp_path)
    _, record = load_model(model_of_record)
    assert record["classes"] == list(ACTIONS) and not set(RESUME_ONLY_KEYS) & set(record)  # made by src.export --pth
    assert (record["config"]["data"]["train_clips_per_video"], record["config"]["train"]["ema_decay"]) == (8, 0.983)
    videos = sorted(kth_samples.glob("person*_uncomp.*"))
    code, results, _ = run_json(capsys, "--checkpoint", model_of_record, *videos)
    assert code == 0
    predicted = {Path(r["input"]).name: r["action"] for r in results}
    right = [name for name, action in predicted.items() if name.split("_")[1] == action]
    assert sorted(right) == ["person01_boxing_d2_uncomp.mp4", "person01_handclapping_d1_uncomp.avi",
                             "person03_boxing_d4_uncomp.mp4", "person04_boxing_d1_uncomp.mp4"], predicted


def test_the_library_notes_of_a_stream_stay_on_one_line():
    """--stream's notes come from the library's logging (the reader names its source): a source named with a
    newline is written escaped there too, one line per note."""
    import logging

    from src.predict import _PrintableFormatter

    record = logging.LogRecord("src.inference.stream", logging.WARNING, __file__, 1,
                               "%s: the frame size changed", ("frames\nfolder",), None)
    assert _PrintableFormatter("note: %(message)s").format(record) == "note: frames\\nfolder: the frame size changed"
