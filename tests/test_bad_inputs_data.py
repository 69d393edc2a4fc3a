"""Bad data inputs, run as a user would (issue 17): a ``prepare`` that fails leaves ``--out`` as it was and
exits non-zero (the failed videos listed) unless ``--allow-failures``; every bad ``prepare`` argument gets one
line before any work; a cache that disagrees with ``index.json``, a truncated ``.npy`` or ``index.json`` stop
``src.train`` in one line naming the file; an ``index.json`` without videos does not stop ``data.root: auto``.
Issue 18: a bad ``--layout``, ``--splits`` or ``--channels``, a bad ``groups.csv`` and a split that cannot train
or be measured each get one line before any work."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from src.data.sources.kth import ACTIONS
from tests.cli import assert_one_line_error, config_path, message_lines, run_cli, snapshot
from tests.test_sources import make_folder, make_hmdb51, make_ucf101
from tests.test_trainer import TINY

pytestmark = pytest.mark.slow  # every test runs python -m src.data or src.train as a subprocess (tests/cli.py)

BROKEN = ["person01_boxing_d2_uncomp.avi", "person03_walking_d3_uncomp.avi"]  # not in the tiny twin
VIDEO = "person01_boxing_d1"  # a video of the tiny twin's training split


def garbage(path: Path, size: int = 4000) -> Path:
    """A file named like a KTH video holding random bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(len(path.name)).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def mixed_raw(tiny_raw: Path, root: Path) -> tuple[Path, Path]:
    """A raw folder with the two boxing videos of person 1 of the tiny twin, its 00sequences.txt and one broken video:
    ``(raw, broken)``."""
    raw = root / "raw"
    (raw / "boxing").mkdir(parents=True)
    shutil.copy(tiny_raw / "00sequences.txt", raw)
    for path in sorted((tiny_raw / "boxing").glob("person01_*.avi")):
        shutil.copy(path, raw / "boxing")
    return raw, garbage(raw / "boxing" / "person03_boxing_d2_uncomp.avi")


def prepare(raw, out, *args, cwd):
    return run_cli("src.data", "prepare", "--raw", raw, "--out", out, "--workers", "1", *args, cwd=cwd)


def without_png(folder: str, names: list[str]) -> list[str]:
    """For shutil.copytree: leave out the PNG tree of a prepared dataset (training reads the cache)."""
    return [name for name in names if name in ACTIONS]


def failed_lines(result) -> list[str]:
    return [line for line in message_lines(result.stderr) if line.startswith("failed:")]


# ---------------------------------------------------------------- prepare: failed videos

@pytest.mark.parametrize("out_holds", ["nothing", "a prepared dataset"])
def test_prepare_where_every_video_fails_leaves_out_as_it_was(tmp_path, tiny_prepared, out_holds):
    raw, out = tmp_path / "raw", tmp_path / "out"
    broken = [garbage(raw / name) for name in BROKEN]
    if out_holds == "a prepared dataset":
        shutil.copytree(tiny_prepared, out)
    before = snapshot(out)
    result = prepare(raw, out, cwd=tmp_path)
    error = assert_one_line_error(result, *broken, "none of the 2 videos", code=1, only_line=False)
    assert "nothing was written" in error
    assert [line.split(": ")[1] for line in failed_lines(result)] == list(map(str, broken))
    assert snapshot(out) == before  # no index.json, cache or PNG left, and a prepared dataset kept as it was
    assert out.exists() == (out_holds != "nothing")
    if out.exists():
        assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in tiny_prepared.iterdir())


def test_prepare_with_one_broken_video_among_good_ones_writes_nothing(tmp_path, tiny_raw):
    raw, broken = mixed_raw(tiny_raw, tmp_path)
    out = tmp_path / "out"
    result = prepare(raw, out, cwd=tmp_path)
    assert_one_line_error(result, broken, "1 of 3 videos", "--allow-failures", code=1, only_line=False)
    assert len(failed_lines(result)) == 1 and str(broken) in failed_lines(result)[0]
    assert not out.exists()


def test_a_failed_rerun_at_another_size_keeps_the_prepared_dataset(tmp_path, tiny_raw, tiny_prepared):
    """The good videos would be prepared again (at 32x32) over the dataset's 64x64 ones: staged, never moved."""
    raw, broken = mixed_raw(tiny_raw, tmp_path)
    out = shutil.copytree(tiny_prepared, tmp_path / "out")
    before = snapshot(out)
    result = prepare(raw, out, "--size", "32", cwd=tmp_path)
    assert_one_line_error(result, broken, code=1, only_line=False)
    assert snapshot(out) == before
    assert not [p for p in out.rglob(".*")], "no temporary file left behind"


def test_allow_failures_prepares_the_good_videos_and_lists_the_failed(tmp_path, tiny_raw):
    raw, broken = mixed_raw(tiny_raw, tmp_path)
    out = tmp_path / "out"
    result = prepare(raw, out, "--allow-failures", "--no-png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = message_lines(result.stderr)
    assert not [line for line in lines if line.startswith("error:")]
    warnings = [line for line in lines if line.startswith("warning:") and "could not be decoded" in line]
    assert len(warnings) == 1 and str(broken) in warnings[0] and "1 of 3" in warnings[0]
    index = json.loads((out / "index.json").read_text())
    assert [v["video_id"] for v in index["videos"]] == sorted(p.name[:-len("_uncomp.avi")]
                                                              for p in (raw / "boxing").glob("person01_*.avi"))
    assert [(f["video_id"], f["file"]) for f in index["failed"]] == [("person03_boxing_d2", str(broken))]
    assert sorted(p.name for p in (out / "cache").iterdir()) == [f"{v['video_id']}.npy" for v in index["videos"]]
    assert not [p for p in out.rglob(".*")]


# ---------------------------------------------------------------- prepare: bad arguments, one line before work

@pytest.mark.parametrize("case", ["raw missing", "raw is a file", "raw without videos", "raw with unnamed videos",
                                  "raw with bad sequences", "layout unknown", "layout kth of a folder",
                                  "splits missing", "splits for kth", "channels 2",
                                  "out under a file", "out is a file", "size 0", "size negative", "size huge",
                                  "workers 0", "workers negative"])
def test_a_bad_prepare_argument_gets_one_line_before_any_work(tmp_path, tiny_raw, case):
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    shutil.copy(tiny_raw / "00sequences.txt", raw)
    shutil.copy(next((tiny_raw / "walking").glob("*.avi")), raw)
    args, names = [], []
    if case == "raw missing":
        raw, names = tmp_path / "nowhere", [tmp_path / "nowhere", "no such folder"]
    elif case == "raw is a file":
        raw, names = raw / "00sequences.txt", [raw / "00sequences.txt", "not a folder"]
    elif case == "raw without videos":
        raw = tmp_path / "empty"
        raw.mkdir()
        (raw / "00sequences.txt").write_text("")
        names = [raw, "no KTH-named"]
    elif case == "raw with unnamed videos":
        raw = tmp_path / "holidays"
        raw.mkdir()
        shutil.copy(next((tiny_raw / "walking").glob("*.avi")), raw / "beach.avi")
        names = [raw, "beach.avi", "holds no video in a class folder"]
    elif case == "raw with bad sequences":
        (raw / "00sequences.txt").write_text("person01_walking_d1\t\tframes\t1-x, 5-9\n")
        names = [raw / "00sequences.txt"]
    elif case == "layout unknown":
        args, names = ["--layout", "ucf"], ["--layout", "'ucf'", "auto, kth, folder, ucf101, hmdb51"]
    elif case == "layout kth of a folder":
        raw = tmp_path / "mine"
        (raw / "wave").mkdir(parents=True)
        shutil.copy(next((tiny_raw / "walking").glob("*.avi")), raw / "wave" / "clip 1.avi")
        args, names = ["--layout", "kth"], [raw, "holds no KTH-named video", "wave/clip 1.avi", "--layout folder"]
    elif case == "splits missing":
        args, names = ["--splits", tmp_path / "lists"], ["--splits", tmp_path / "lists", "no such folder"]
    elif case == "splits for kth":
        args, names = ["--splits", raw], ["--splits", "layout kth reads no split files"]
    elif case == "channels 2":
        args, names = ["--channels", "2"], ["--channels", "1 (grayscale) or 3"]
    elif case == "out under a file":
        (tmp_path / "file.txt").write_text("a file")
        out, names = tmp_path / "file.txt" / "out", [tmp_path / "file.txt" / "out", "not a folder"]
    elif case == "out is a file":
        out.write_text("a file")
        names = [out, "is a file"]
    elif case.startswith("size"):
        value = {"size 0": "0", "size negative": "-3", "size huge": "100000"}[case]
        args, names = ["--size", value], ["--size", value]
    else:
        value = {"workers 0": "0", "workers negative": "-2"}[case]
        args, names = ["--workers", value], ["--workers", value]
    before, paths = snapshot(tmp_path), set(tmp_path.rglob("*"))
    result = run_cli("src.data", "prepare", "--raw", raw, "--out", out, *args, cwd=tmp_path)
    assert_one_line_error(result, *names, code=1)
    assert snapshot(tmp_path) == before and set(tmp_path.rglob("*")) == paths  # no file or folder made


# ---------------------------------------------------------------- train on a broken prepared dataset

def _wrong_shape(root: Path) -> str:
    np.save(root / "cache" / f"{VIDEO}.npy", np.zeros((5, 32, 32), np.uint8))
    return "[5, 32, 32]"


def _truncated_npy(root: Path) -> str:
    path = root / "cache" / f"{VIDEO}.npy"
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 3])
    return "truncated"


def _truncated_index(root: Path) -> str:
    path = root / "index.json"
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    return "invalid JSON"


BREAKS = {  # how the copy is broken -> (the break, the file the error line must name)
    "cache of another shape": (_wrong_shape, f"cache/{VIDEO}.npy"),
    "truncated cache file": (_truncated_npy, f"cache/{VIDEO}.npy"),
    "truncated index.json": (_truncated_index, "index.json"),
}  # other breaks (another dtype, a key missing, no videos): tests/test_dataset.py and tests/test_prepared.py


@pytest.mark.parametrize("case", list(BREAKS))
def test_train_on_a_broken_prepared_dataset_stops_in_one_line_naming_the_file(tmp_path, tiny_prepared, case):
    data = shutil.copytree(tiny_prepared, tmp_path / "data", ignore=without_png)
    breaks, file = BREAKS[case]
    what = breaks(data)
    before = snapshot(data)
    result = run_cli("src.train", "--config", config_path("GRUCell"), "--data", data, "--set", *TINY,
                     f"log.models_dir={tmp_path / 'models'}", f"log.tboard_dir={tmp_path / 'tboard'}", cwd=tmp_path)
    error = assert_one_line_error(result, data / file, what, "python -m src.data prepare", code=1)
    if case == "cache of another shape":  # what the index says, next to what the file holds
        entry = next(v for v in json.loads((tiny_prepared / "index.json").read_text())["videos"]
                     if v["video_id"] == VIDEO)
        assert f"[{entry['num_frames']}, 64, 64]" in error
    assert snapshot(data) == before
    assert not list(tmp_path.rglob("*.pth")), "no training may start"


def test_auto_is_not_stopped_by_an_index_without_videos(tmp_path, tiny_prepared):
    """data/kth/index.json listing no videos (as older code left after a failed prepare): 'auto' says so in
    one line and trains on the synthetic twin (here the tiny one, already prepared in data/synth_tiny)."""
    kth = tmp_path / "data" / "kth"
    kth.mkdir(parents=True)
    (kth / "index.json").write_text(json.dumps({"version": 2, "source": "kth", "size": 64, "channels": 1,
                                                "synthetic": False, "classes": list(ACTIONS), "group_kind": "person",
                                                "folds": [], "videos": []}))
    shutil.copytree(tiny_prepared, tmp_path / "data" / "synth_tiny", ignore=without_png)
    before = snapshot(tmp_path / "data")
    result = run_cli("src.train", "--config", config_path("GRUCell"), "--set", *TINY, "train.epochs=1",
                     "data.synthetic_preset=tiny", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    notes = [line for line in message_lines(result.stderr) if "lists no videos" in line]
    assert len(notes) == 1 and "data/kth/index.json" in notes[0] and "synthetic twin" in notes[0], result.stderr
    assert "error:" not in result.stderr
    assert snapshot(tmp_path / "data") == before
    assert "best val accuracy" in result.stdout
    checkpoint = torch.load(tmp_path / "models" / "GRUCell" / "last.pth", map_location="cpu", weights_only=False)
    assert checkpoint["provenance"]["data"]["root"] == str(Path("data") / "synth_tiny")


# ---------------------------------------------------------------- issue 18: groups.csv, and splits refused

def test_prepare_with_a_bad_groups_csv_names_it_and_the_row(tmp_path, tiny_raw):
    raw = make_folder(tiny_raw, tmp_path, groups=True)
    with open(raw / "groups.csv", "a", encoding="utf-8") as f:
        f.write("boxe/nobody.avi,zoe\n")
    before, paths = snapshot(tmp_path), set(tmp_path.rglob("*"))
    result = prepare(raw, tmp_path / "out", cwd=tmp_path)
    assert_one_line_error(result, raw / "groups.csv", "row 26", "'boxe/nobody.avi'", "which is no video", code=1)
    assert snapshot(tmp_path) == before and set(tmp_path.rglob("*")) == paths


@pytest.fixture(scope="module")
def prepared_folder(layouts) -> Path:
    """tests/test_sources.py's folder of class subfolders with groups.csv (4 groups), prepared (tests/conftest.py,
    shared with tests/test_dataset.py)."""
    return layouts["folder+groups"]


@pytest.mark.parametrize("overrides, names", [
    (["data.split=schuldt2004"], ["data.split: schuldt2004 splits KTH's persons", "this data is folder"]),
    (["data.split=kfold", "data.folds=5", "data.fold=5"], ["data.split: kfold fold 5 leaves the test split empty"]),
    (["data.split=given"], ["data.split: given fold 1", "ships no split folds"]),
    (["data.groups=[anna, ben]"], ["data.split: random leaves the val split empty", "among data.groups"]),
    (["data.channels=3"], ["data.channels: 3 (colour)", "holds grayscale frames", "--channels 3"]),
])
def test_a_split_that_cannot_train_is_refused_before_training(tmp_path, prepared_folder, overrides, names):
    result = run_cli("src.train", "--config", config_path("GRUCell"), "--data", prepared_folder, "--set", *TINY,
                     *overrides, f"log.models_dir={tmp_path / 'models'}", f"log.tboard_dir={tmp_path / 'tboard'}",
                     cwd=tmp_path)
    assert_one_line_error(result, *names, code=1)
    assert not list(tmp_path.rglob("*.pth")), "no training may start"


def test_a_folder_dataset_without_out_is_refused_before_it_could_pass_for_the_real_kth(tiny_raw, tmp_path):
    """``--out`` defaults to data/kth, the folder every command takes for the real KTH: only KTH may land there."""
    raw = make_folder(tiny_raw, tmp_path)
    result = run_cli("src.data", "prepare", "--raw", raw, "--workers", "1", cwd=tmp_path)
    assert_one_line_error(result, "--out", str(raw), "folder", "_prepared")
    assert not (tmp_path / "data").exists()


# ---------------------------------------------------------------- issue 33: a user's own videos

def test_a_one_class_dataset_is_refused_naming_its_layout_and_the_flag(tiny_raw, tmp_path):
    """UCF101's video tree without its split lists reads as one class folder, 'UCF-101': refused, out not made."""
    raw = make_ucf101(tiny_raw, tmp_path)
    shutil.rmtree(raw / "ucfTrainTestlist")
    before, paths = snapshot(tmp_path), set(tmp_path.rglob("*"))
    result = prepare(raw, tmp_path / "out", cwd=tmp_path)
    assert_one_line_error(result, raw, "read as a class folder whose only class is 'UCF-101'",
                          "2 or more classes", "--layout ucf101 --splits DIR", f"--raw {raw / 'UCF-101'}", code=1,
                          only_line=False)  # the scan's warnings (no groups.csv) come first
    assert snapshot(tmp_path) == before and set(tmp_path.rglob("*")) == paths


@pytest.mark.parametrize("layout", ["ucf101", "hmdb51"])
def test_an_explicit_layout_without_its_split_files_is_an_error(tiny_raw, tmp_path, layout):
    raw = (make_ucf101 if layout == "ucf101" else make_hmdb51)(tiny_raw, tmp_path)
    for lists in [*raw.rglob("*list0*.txt"), *raw.rglob("*_test_split*.txt")]:
        lists.unlink()
    before, paths = snapshot(tmp_path), set(tmp_path.rglob("*"))
    result = prepare(raw, tmp_path / "out", "--layout", layout, cwd=tmp_path)
    assert_one_line_error(result, raw, f"layout {layout} has no split", "--splits DIR", "--layout folder", code=1)
    assert snapshot(tmp_path) == before and set(tmp_path.rglob("*")) == paths


def test_splits_above_hmdb51s_split_folder_are_found(tiny_raw, tmp_path):
    raw = make_hmdb51(tiny_raw, tmp_path)
    above = tmp_path / "downloads"
    above.mkdir()
    shutil.move(raw / "testTrainMulti_7030_splits", above)
    result = prepare(raw, tmp_path / "out", "--splits", above, "--no-png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert (index["source"], index["folds"]) == ("hmdb51", ["1", "2"])
