"""src/data/prepare.py on the real KTH samples (frame counts, layout, cache, index, idempotency, bad input), and on
every layout of tests/test_sources.py, in gray and in colour."""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from src.data.dataset import VideoClipDataset
from src.data.decode import read_small_frames
from src.data.index import read_index
from src.data.prepare import PrepareError, clip_sequences, decode_video, prepare, resize_frames
from src.data.sources.kth import ACTIONS, parse_sequences, parse_video_name
from tests.test_sources import (
    GROUP_NAMES,
    HMDB_CLASSES,
    UCF_CLASSES,
    folder_name,
    make_colour_ucf101,
    make_folder,
    make_hmdb51,
    make_ucf101,
    twin_videos,
    write_frame_folder,
)


@pytest.fixture
def logs(caplog):
    """What prepare logged since the last call, as ``.out`` (info: the summary, which the CLI shows on stdout) and
    ``.err`` (warnings: what was skipped or failed, on the CLI's stderr)."""
    caplog.set_level(logging.INFO, logger="src.data")

    def read() -> SimpleNamespace:
        lines = [(record.levelno, record.getMessage()) for record in caplog.records]
        caplog.clear()
        return SimpleNamespace(out="\n".join(m for level, m in lines if level < logging.WARNING),
                               err="\n".join(m for level, m in lines if level >= logging.WARNING))
    return read


SAMPLE_FRAMES = {  # from the samples' README: the ground truth of the decoder
    "person01_handclapping_d1_uncomp.avi": 378,
    "person01_handclapping_d2_uncomp.avi": 550,
    "person01_jogging_d1_uncomp.avi": 415,
    "person01_boxing_d2_uncomp.mp4": 390,
    "person03_boxing_d4_uncomp.mp4": 512,
    "person04_boxing_d1_uncomp.mp4": 328,
}


@pytest.fixture(scope="module")
def prepared(kth_samples, tmp_path_factory) -> tuple[Path, dict]:
    """The 6 samples prepared once for this file (64x64, with PNGs): ``(out, index)``."""
    out = tmp_path_factory.mktemp("kth_prepared")
    return out, prepare(kth_samples, out, size=64, workers=2, write_png=True)


def link_samples(kth_samples: Path, raw: Path, names: list[str]) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    for name in names:
        (raw / name).symlink_to(kth_samples / name)


@pytest.mark.parametrize("name", ["person01_jogging_d1_uncomp.avi", "person04_boxing_d1_uncomp.mp4"])
def test_decode_video_gives_every_grayscale_frame(kth_samples, name):
    frames = decode_video(kth_samples / name)
    assert frames.dtype == np.uint8 and frames.shape == (SAMPLE_FRAMES[name], 120, 160)
    assert 20 < frames.mean() < 235 and frames.std() > 10, "decoded frames should hold a real picture"


def test_decode_video_in_rgb_and_resize_frames_of_either(kth_samples):
    """channels=3: RGB frames (T, H, W, 3), the same picture as the grayscale ones; resize_frames keeps the colours."""
    name = "person04_boxing_d1_uncomp.mp4"
    gray, rgb = decode_video(kth_samples / name), decode_video(kth_samples / name, channels=3)
    assert rgb.dtype == np.uint8 and rgb.shape == (SAMPLE_FRAMES[name], 120, 160, 3)
    difference = np.abs(rgb.mean(axis=-1) - gray)  # KTH is gray: R = G = B = the luma, up to the conversions' rounding
    assert difference.max() <= 4 and difference.mean() < 1
    assert resize_frames(rgb[:3], 64).shape == (3, 64, 64, 3) and resize_frames(gray[:3], 64).shape == (3, 64, 64)
    with pytest.raises(ValueError, match="channels must be 1 .* or 3"):
        decode_video(kth_samples / name, channels=2)


def test_real_samples_give_the_known_frame_counts(prepared):
    out, index = prepared
    counts = {v["video_id"]: v["num_frames"] for v in index["videos"]}
    assert counts == {parse_video_name(n)["video_id"]: t for n, t in SAMPLE_FRAMES.items()}


def test_layout_pngs_and_cache_agree(prepared, kth_samples):
    out, index = prepared
    assert sorted(p.name for p in out.iterdir()) == ["boxing", "cache", "handclapping", "index.json", "jogging"]
    for video in index["videos"]:
        cache = np.load(out / "cache" / f"{video['video_id']}.npy")
        assert cache.dtype == np.uint8 and cache.shape == (video["num_frames"], 64, 64)
        folder = out / video["action"] / video["video_id"]
        pngs = sorted(folder.iterdir())
        assert [p.name for p in pngs] == [f"image-{t:04d}.png" for t in range(1, video["num_frames"] + 1)]
        for t in (0, video["num_frames"] // 2, video["num_frames"] - 1):
            with Image.open(pngs[t]) as image:
                assert image.mode == "L" and image.size == (64, 64)
                np.testing.assert_array_equal(np.asarray(image), cache[t])
    # every PNG of one whole video, and its cache against a fresh decode of the source
    video_id = "person04_boxing_d1"
    cache = np.load(out / "cache" / f"{video_id}.npy")
    pngs = np.stack([np.asarray(Image.open(p)) for p in sorted((out / "boxing" / video_id).iterdir())])
    np.testing.assert_array_equal(pngs, cache)
    full = decode_video(kth_samples / f"{video_id}_uncomp.mp4")
    np.testing.assert_array_equal(resize_frames(full, 64), cache)
    assert abs(float(full.mean()) - float(cache.mean())) < 2.0, "resizing must keep the brightness"
    assert not [p for p in out.rglob(".*")], "no temporary file may be left behind"


def test_index_fields_and_sequences_follow_00sequences(prepared, kth_samples):
    out, index = prepared
    assert json.loads((out / "index.json").read_text()) == index
    assert (index["version"], index["source"], index["size"], index["channels"], index["synthetic"]) == \
        (2, "kth", 64, 1, False)
    assert (index["classes"], index["group_kind"], index["folds"]) == (list(ACTIONS), "person", [])
    assert read_index(out) == index
    ids = [v["video_id"] for v in index["videos"]]
    assert ids == sorted(ids)
    annotations = parse_sequences(kth_samples / "00sequences.txt")
    for video in index["videos"]:
        assert {k: video[k] for k in ("video_id", "person", "action", "label", "scenario")} == \
            parse_video_name(video["video_id"])
        assert (video["class"], video["group"]) == (video["action"], video["person"]) and "split" not in video
        assert (kth_samples / video["file"]).is_file() and video["file"].startswith(video["video_id"])
        assert video["sequences"] == [[a, b] for a, b in annotations[video["video_id"]]]
    # 00sequences.txt: "person01_boxing_d2  frames  1-106, 107-195, 196-265, 305-390" (1-based, inclusive)
    boxing_d2 = next(v for v in index["videos"] if v["video_id"] == "person01_boxing_d2")
    assert boxing_d2["sequences"] == [[0, 106], [106, 195], [195, 265], [304, 390]]
    assert (boxing_d2["person"], boxing_d2["action"], boxing_d2["label"], boxing_d2["scenario"]) == \
        (1, "boxing", 3, 2)


def test_a_second_run_skips_everything_and_changes_no_file(prepared, kth_samples, logs):
    out, index = prepared
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.name != "index.json"}
    assert prepare(kth_samples, out, size=64, workers=2) == index
    assert "prepared 0, skipped 6 (already done), failed 0" in logs().out
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.name != "index.json"} == mtimes


def test_a_corrupt_video_is_reported_and_the_rest_prepared(kth_samples, tmp_path, logs):
    raw, out = tmp_path / "raw", tmp_path / "out"
    link_samples(kth_samples, raw / "boxing", ["person04_boxing_d1_uncomp.mp4", "person03_boxing_d4_uncomp.mp4"])
    link_samples(kth_samples, raw, ["00sequences.txt"])
    corrupt = raw / "boxing" / "person02_boxing_d1_uncomp.avi"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    (raw / "boxing" / "holiday.mp4").symlink_to(kth_samples / "person04_boxing_d1_uncomp.mp4")
    (raw / "notes.txt").write_text("not a video")

    # by default: an error naming the failed video, and nothing written (layout kth: holiday.mp4 has no KTH name)
    with pytest.raises(PrepareError, match=r"1 of 3 videos could not be decoded \(.*person02_boxing_d1_uncomp.avi\)"):
        prepare(raw, out, workers=2, layout="kth")
    captured = logs()
    assert [line for line in captured.err.splitlines() if line.startswith("failed:")] == [
        line for line in captured.err.splitlines() if str(corrupt) in line]
    assert not out.exists(), "a failed prepare leaves nothing behind"

    index = prepare(raw, out, workers=2, allow_failures=True, layout="kth")
    captured = logs()
    assert not [line for line in captured.err.splitlines() if line.startswith("error:")]
    warning = [line for line in captured.err.splitlines() if line.startswith("warning:") and "decoded" in line]
    assert len(warning) == 1 and str(corrupt) in warning[0]
    assert "non-video file" in captured.err and "holiday.mp4" in captured.err
    assert "prepared 2, skipped 0 (already done), failed 1" in captured.out
    assert [v["video_id"] for v in index["videos"]] == ["person03_boxing_d4", "person04_boxing_d1"]
    assert [(f["video_id"], f["file"]) for f in index["failed"]] == [("person02_boxing_d1", str(corrupt))]
    assert not (out / "cache" / "person02_boxing_d1.npy").exists()
    assert not (out / "boxing" / "person02_boxing_d1").exists()
    assert not [p for p in out.rglob(".*")], "no temporary file may be left behind"


def test_without_annotations_or_pngs(kth_samples, tmp_path, logs):
    raw, out = tmp_path / "raw", tmp_path / "out"
    link_samples(kth_samples, raw, ["person04_boxing_d1_uncomp.mp4"])
    (raw / "synthetic.json").write_text("{}")
    stale = [out / "boxing" / ".person04_boxing_d1.x1y2.tmp" / "image-0001.png", out / "cache" / ".a.npy.7.tmp"]
    for path in stale:  # as a killed run leaves them
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    index = prepare(raw, out, size=32, workers=1, write_png=False)
    assert sorted(p.name for p in out.iterdir()) == ["boxing", "cache", "index.json"]
    assert not list((out / "boxing").iterdir()) and list((out / "cache").iterdir()) == [
        out / "cache" / "person04_boxing_d1.npy"], "stale temporaries are removed, no PNG written"
    assert np.load(out / "cache" / "person04_boxing_d1.npy").shape == (328, 32, 32)
    assert index["synthetic"] is True and index["size"] == 32
    assert index["videos"][0]["sequences"] == [[0, 328]]
    captured = logs()
    assert "1 without annotation" in captured.out
    assert f"warning: {raw}: no video of walking, jogging, running, handwaving, handclapping" in captured.err


@pytest.mark.parametrize("make", ["missing", "no_video"])
def test_a_raw_folder_without_videos_gives_a_clear_error(tmp_path, make):
    raw = tmp_path / "kth_raw"
    if make == "no_video":
        raw.mkdir()
        (raw / "readme.txt").write_text("nothing here")
    with pytest.raises(FileNotFoundError) as err:
        prepare(raw, tmp_path / "out")
    message = str(err.value)
    assert "\n" not in message and str(raw) in message
    assert "python -m src.data download --root data/kth_raw" in message
    assert "python -m src.data.synthetic --out data/synth_raw" in message
    assert "a folder of class subfolders (<class>/<video>.avi)" in message
    assert not (tmp_path / "out").exists()


def test_clip_sequences():
    assert clip_sequences([(0, 10), (300, 420), (500, 600)], 400) == [[0, 10], [300, 400]]
    assert clip_sequences([], 50) == []


def test_a_write_error_stops_the_run_and_leaves_out_as_it_was(tiny_raw, tmp_path, monkeypatch):
    """Disk full while the frames are written: the error is raised (not taken for a bad video) and
    neither the output folder nor a temporary one is left."""
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device", "cache/x.npy")
    monkeypatch.setattr(np, "save", disk_full)
    out = tmp_path / "new" / "out"
    with pytest.raises(OSError, match="No space left"):
        prepare(tiny_raw, out, workers=1, write_png=False)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("kwargs, message", [({"size": 0}, "^size: 0"), ({"size": 5000}, "^size: 5000"),
                                             ({"workers": 0}, "^workers: 0")])
def test_bad_arguments_are_refused_before_any_work(tiny_raw, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        prepare(tiny_raw, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- the other layouts, and colour

def test_a_folder_of_class_subfolders_is_prepared_with_its_own_classes(tiny_raw, tmp_path, logs):
    raw, out = make_folder(tiny_raw, tmp_path, groups=True), tmp_path / "out"
    index = prepare(raw, out, workers=2)
    assert (index["version"], index["source"], index["channels"], index["group_kind"], index["folds"]) == \
        (2, "folder", 1, "groups.csv", [])
    assert index["classes"] == ["boxe", "hand wave", "marche à pied"] and read_index(out) == index
    assert len(index["videos"]) == 24 and "24 videos of 3 classes (folder)" in logs().out
    for action, person, scenario, source in twin_videos(tiny_raw):
        name = folder_name(action, person, scenario)
        video = next(v for v in index["videos"] if v["file"] == name)
        assert video["video_id"] == name.rsplit(".", 1)[0] and video["group"] == GROUP_NAMES[person]
        assert index["classes"][video["label"]] == video["class"] == name.split("/")[0]
        assert "split" not in video and "person" not in video
        cache = np.load(out / "cache" / f"{video['video_id']}.npy")  # a subfolder per class, names as they are
        assert cache.shape == (video["num_frames"], 64, 64) and video["sequences"] == [[0, video["num_frames"]]]
        assert len(list((out / video["video_id"]).glob("image-*.png"))) == video["num_frames"]
    source = tiny_raw / "handwaving" / "person17_handwaving_d1_uncomp.avi"
    np.testing.assert_array_equal(np.load(out / "cache" / "hand wave" / "more takes" / "clip 17 é 1.npy"),
                                  resize_frames(decode_video(source), 64))
    assert not [p for p in out.rglob(".*")]


@pytest.mark.parametrize("layout", ["ucf101", "hmdb51"])
def test_ucf101_and_hmdb51_layouts_keep_their_folds(tiny_raw, tmp_path, layout):
    make = make_ucf101 if layout == "ucf101" else make_hmdb51
    raw, out = make(tiny_raw, tmp_path), tmp_path / "out"
    index = prepare(raw, out, workers=2, write_png=False)
    assert (index["source"], index["folds"]) == (layout, ["1", "2"]) and read_index(out) == index
    classes = list(UCF_CLASSES.values()) if layout == "ucf101" else sorted(HMDB_CLASSES.values())
    assert index["classes"] == classes and sorted(p.name for p in out.iterdir()) == ["cache", "index.json"]
    by_group = {}
    for video in index["videos"]:
        by_group.setdefault(video["group"], set()).add(json.dumps(video["split"], sort_keys=True))
    test_group = "g17" if layout == "ucf101" else "Film17"
    assert by_group[test_group] == {json.dumps({"1": "test", "2": "train"})}
    if layout == "hmdb51":  # person 2's scenario 4 is unused (0) in fold 1
        assert by_group["Film02"] == {json.dumps({"1": "train", "2": "train"}), json.dumps({"2": "train"})}


def test_colour_is_kept_with_three_channels(tiny_raw, tmp_path, logs):
    raw = tmp_path / "raw"
    for source in sorted((tiny_raw / "boxing").glob("person01_*.avi")):
        (raw / "boxing").mkdir(parents=True, exist_ok=True)
        (raw / "boxing" / source.name).symlink_to(source)
    gray = decode_video(raw / "boxing" / "person01_boxing_d1_uncomp.avi")
    colour = decode_video(raw / "boxing" / "person01_boxing_d1_uncomp.avi", channels=3)
    assert colour.dtype == np.uint8 and colour.shape == (*gray.shape, 3)
    assert resize_frames(colour, 32).shape == (len(gray), 32, 32, 3)
    out = tmp_path / "out"
    index = prepare(raw, out, workers=1, channels=3)
    assert index["channels"] == 3
    video = index["videos"][0]
    cache = np.load(out / "cache" / f"{video['video_id']}.npy")
    assert cache.shape == (video["num_frames"], 64, 64, 3) and cache.dtype == np.uint8
    with Image.open(out / "boxing" / video["video_id"] / "image-0001.png") as image:
        assert image.mode == "RGB" and image.size == (64, 64)
        np.testing.assert_array_equal(np.asarray(image), cache[0])
    # the twin is gray: its colour frames are (nearly) gray ones, three times
    assert np.abs(cache.astype(int) - cache.mean(-1, keepdims=True)).max() <= 2
    colour_set = VideoClipDataset(out, split="trainval", persons=[1], max_frames=4, channels=3)
    assert colour_set[0][0].shape == (4, 3, 64, 64) and colour_set.channels == 3
    assert VideoClipDataset(out, split="trainval", persons=[1], max_frames=4)[0][0].shape == (4, 3, 64, 64)  # auto
    assert VideoClipDataset(out, split="trainval", persons=[1], max_frames=4, channels=1)[0][0].shape == (4, 1, 64, 64)
    logs()
    prepare(raw, out, workers=1, channels=1)  # a gray rerun prepares every video again, at one channel
    assert "prepared 2, skipped 0" in logs().out
    assert np.load(out / "cache" / f"{video['video_id']}.npy").shape == (video["num_frames"], 64, 64)


@pytest.mark.parametrize("kwargs, message", [({"layout": "ucf"}, "^layout: 'ucf' is not a layout"),
                                             ({"channels": 2}, "^channels: 2 is not a number of channels"),
                                             ({"layout": "folder", "splits": "."}, "layout folder reads no split")])
def test_bad_layout_arguments_are_refused_before_any_work(tiny_raw, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        prepare(tiny_raw, tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- issue 33: a user's own videos

def test_frames_are_made_small_as_they_are_decoded_as_the_whole_video_was(kth_samples):
    """read_small_frames (each frame resized as decoded) gives the frames of decode_video then resize_frames."""
    path = kth_samples / "person01_boxing_d2_uncomp.mp4"
    for channels in (1, 3):
        np.testing.assert_array_equal(read_small_frames(path, 32, channels),
                                      resize_frames(decode_video(path, channels), 32))


def test_a_dataset_of_one_class_is_refused_naming_what_it_was_read_as(tiny_raw, tmp_path):
    """UCF101's video tree without its split lists: read as a class folder whose only class is 'UCF-101'."""
    raw = make_ucf101(tiny_raw, tmp_path)
    shutil.rmtree(raw / "ucfTrainTestlist")
    out = tmp_path / "out"
    with pytest.raises(PrepareError) as error:
        prepare(raw, out, workers=1)
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{raw}: read as a class folder whose only class is "
                                                      f"'UCF-101' (layout folder); a dataset needs 2 or more classes")
    assert "layout='ucf101' splits=DIR" in message and f"raw='{raw / 'UCF-101'}'" in message
    assert not out.exists()
    flat = tmp_path / "flat"
    shutil.copytree(raw / "UCF-101" / "Box", flat / "Box")
    with pytest.raises(PrepareError, match=r"only class is 'Box' .*add a folder of videos for each other class"):
        prepare(flat, out, workers=1)
    assert len(prepare(raw / "UCF-101", out, workers=1, write_png=False)["classes"]) == 3  # the flag it says


def test_frame_folders_are_prepared_as_videos(tmp_path, logs):
    raw, out = tmp_path / "mine", tmp_path / "out"
    red = write_frame_folder(raw / "red" / "take 1", (230, 40, 40), frames=7)
    write_frame_folder(raw / "blue" / "take 1", (40, 40, 230), frames=5, suffix=".jpg")
    index = prepare(raw, out, workers=1, size=16, channels=3)
    assert "read 2 frame folder(s) as videos" in logs().err
    assert [(v["video_id"], v["file"], v["num_frames"]) for v in index["videos"]] == [
        ("blue/take 1", "blue/take 1", 5), ("red/take 1", "red/take 1", 7)]
    images = np.stack([np.asarray(Image.open(p)) for p in sorted(red.iterdir())])
    np.testing.assert_array_equal(np.load(out / "cache" / "red" / "take 1.npy"), resize_frames(images, 16))
    assert len(list((out / "red" / "take 1").glob("image-*.png"))) == 7


def test_a_zero_byte_video_is_an_empty_file(tiny_raw, tmp_path, logs):
    raw = make_folder(tiny_raw, tmp_path)
    empty = raw / "boxe" / "empty.avi"
    empty.write_bytes(b"")
    index = prepare(raw, tmp_path / "out", workers=1, write_png=False, allow_failures=True)
    assert index["failed"] == [{"video_id": "boxe/empty", "file": str(empty), "error": "empty file"}]
    assert f"failed: {empty}: cannot be decoded (empty file)" in logs().err


def test_a_class_whose_every_video_failed_is_dropped_and_named(tiny_raw, tmp_path, logs):
    raw, out = make_folder(tiny_raw, tmp_path), tmp_path / "out"
    for video in [p for p in (raw / "boxe").rglob("*") if p.is_file()]:  # .avi and .AVI
        video.write_bytes(b"not a video" * 50)
    index = prepare(raw, out, workers=1, write_png=False, allow_failures=True)
    assert index["classes"] == ["hand wave", "marche à pied"] and len(index["failed"]) == 8
    assert [v["label"] for v in index["videos"]] == [0] * 8 + [1] * 8 and read_index(out) == index
    said = [line for line in logs().err.splitlines() if "'boxe'" in line]
    assert len(said) == 1 and said[0] == (f"warning: {raw}: every video of class 'boxe' failed to decode: dropped, "
                                          f"{out / 'index.json'} holds the other 2 classes; replace its videos and "
                                          f"rerun to keep it")
    for video in [p for p in (raw / "hand wave").rglob("*") if p.is_file()]:  # one class left: refused
        video.write_bytes(b"")
    with pytest.raises(PrepareError, match=r"only class is 'marche à pied' \(layout folder\) once classes 'boxe', "
                                           r"'hand wave' were dropped .*2 or more classes.*replace the videos"):
        prepare(raw, tmp_path / "out2", workers=1, write_png=False, allow_failures=True)
    assert not (tmp_path / "out2").exists()


def test_colour_frame_folders_in_ucf101_train_in_colour_without_a_flag(tmp_path):
    """prepare --channels 3, then train with the config's defaults: the model takes 3 channels and the
    checkpoint, its config and the run's data record 3 (data.channels auto)."""
    import torch

    from src.config import load_config
    from src.training.trainer import train

    prepared = tmp_path / "prepared"
    assert prepare(make_colour_ucf101(tmp_path), prepared, workers=1, size=16, write_png=False,
                   channels=3)["channels"] == 3
    config = load_config("configs/GRUCell.yaml", [
        "model.emb_dim=8", "model.hidden_dim=8", "model.num_layers=1", "data.max_frames=4", "data.img_size=16",
        "data.train_clips_per_video=1", "data.eval_clips_per_video=1", "train.batch_size=4", "train.epochs=1",
        "train.warmup_epochs=0", "train.precise_bn_batches=0", f"log.models_dir={tmp_path / 'models'}",
        f"log.tboard_dir={tmp_path / 'tboard'}"])
    assert config["data"]["channels"] == "auto"
    train(config, data_root=prepared)
    checkpoint = torch.load(tmp_path / "models" / "GRUCell" / "best.pth")
    assert (checkpoint["channels"], checkpoint["config"]["data"]["channels"]) == (3, 3)
    assert checkpoint["provenance"]["data"]["channels"] == 3
    first_conv = next(w for k, w in checkpoint["model_state_dict"].items() if w.ndim == 4)
    assert first_conv.shape[1] == 3


def write_long_video(path: Path, frames: int = 400, width: int = 640, height: int = 360) -> Path:
    """An H.264 MP4 (libx264, ultrafast) of ``frames`` colour frames at ``width`` x ``height``: a square moving on
    gradients. 400 frames at 640x360 RGB are 276 MB decoded."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt, stream.options = width, height, "yuv420p", {"preset": "ultrafast"}
        for t in range(frames):
            image = np.stack([(x + 3 * t) % 256, (y + t) % 256, np.full_like(x, 64)], -1).astype(np.uint8)
            image[(abs(x - 20 - t) < 40) & (abs(y - height // 2) < 40)] = (255, 255, 0)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


PEAK_OF_PREPARE = """
import resource, sys
from src.data.prepare import prepare
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
index = prepare(sys.argv[1], sys.argv[2], workers=1, channels=3, write_png=False)
added = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(index["videos"][0]["num_frames"], added // 1024)
"""


@pytest.mark.slow
def test_a_long_high_resolution_video_is_prepared_in_bounded_memory(tmp_path):
    """400 frames of 640x360 in colour: read whole, then resized, the peak rose by 538 MB (the 276 MB array and its
    copies); made small frame by frame, by 18 MB (Intel Xeon, PyAV 18). The bound, 120 MB, is a quarter of the old
    rise and above the whole output (400 x 64 x 64 x 3: 4.9 MB) many times over."""
    import subprocess
    import sys

    video = write_long_video(tmp_path / "raw" / "drive" / "long.mp4")
    (tmp_path / "raw" / "park").mkdir()
    (tmp_path / "raw" / "park" / "long.mp4").symlink_to(video)
    result = subprocess.run([sys.executable, "-c", PEAK_OF_PREPARE, str(tmp_path / "raw"), str(tmp_path / "out")],
                            cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TQDM_DISABLE": "1"})
    assert result.returncode == 0, result.stderr
    frames, added_mb = map(int, result.stdout.split())
    assert frames == 400 and added_mb < 120, f"prepare's peak memory rose by {added_mb} MB"


def test_a_kth_action_whose_every_video_failed_keeps_its_label_and_is_named(tiny_raw, tmp_path, logs):
    raw = tmp_path / "raw"
    for action in ("boxing", "walking"):
        (raw / action).mkdir(parents=True)
        for source in sorted((tiny_raw / action).glob("person01_*.avi")):
            if action == "walking":
                (raw / action / source.name).write_bytes(b"")
            else:
                (raw / action / source.name).symlink_to(source)
    index = prepare(raw, tmp_path / "out", workers=1, write_png=False, allow_failures=True)
    assert index["classes"] == list(ACTIONS) and {v["class"] for v in index["videos"]} == {"boxing"}
    said = [line for line in logs().err.splitlines() if "every video of 'walking' failed" in line]
    assert len(said) == 1 and "KTH keeps its six labels" in said[0]
