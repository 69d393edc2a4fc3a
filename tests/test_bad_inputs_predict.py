"""Bad inputs of src.predict, src.export and src.evaluate (issue 17), run as a user would: each case is a
subprocess on the tiny twin that ends in one line naming the file or the flag (with ``--json``, that line
is also JSON on stdout), or in the right result, and leaves the files that were there unchanged."""
import json
import os
import resource
import shutil

import av
import pytest
import torch

import src.train
from src.data.prepare import decode_video
from src.training.evaluation import evaluate
from tests.cli import assert_one_line_error, config_path, run_cli, snapshot
from tests.test_checkpoint import damage
from tests.test_trainer import TINY

pytestmark = pytest.mark.slow  # every test runs python -m src.predict, src.export or src.evaluate as a subprocess

# a device this machine lacks: plain 'cuda' where there is no CUDA (the case), else an index beyond it
MISSING_DEVICE = "cuda" if not torch.cuda.is_available() else "cuda:99"


@pytest.fixture(scope="module")
def run(tiny_prepared, tmp_path_factory):
    """A 2-epoch GRUCell run on the tiny twin, evaluated: ``models/GRUCell/{best,last}.pth`` and
    ``results.json``, plus the files a careless user gives as a checkpoint, beside them."""
    out = tmp_path_factory.mktemp("bad_inputs_predict")
    src.train.main(["--config", config_path("GRUCell"), "--data", str(tiny_prepared), "--set", *TINY,
                    "eval.latency_repeats=1", f"log.models_dir={out / 'models'}", f"log.tboard_dir={out / 'tboard'}"])
    run_dir = out / "models" / "GRUCell"
    evaluate(run_dir / "best.pth", device="cpu")  # results.json, as src.evaluate writes it
    (run_dir / "empty.pth").touch()
    (run_dir / "truncated.pth").write_bytes((run_dir / "best.pth").read_bytes()[:2000])
    shutil.copy(run_dir / "best.pth", run_dir / "damaged.pth")
    damage(run_dir / "damaged.pth")  # bytes flipped inside a tensor record: loads as other weights but for the CRC
    torch.save({"config": Payload(out / "ran")}, run_dir / "crafted.pth")
    return run_dir


class Payload:
    """A crafted pickle: unpickling it would run ``touch <ran>`` (weights_only refuses it, and nothing runs)."""

    def __init__(self, ran):
        self.ran = ran

    def __reduce__(self):
        return os.system, (f"touch {self.ran}",)


@pytest.fixture(scope="module")
def videos(tiny_raw, tmp_path_factory):
    """``(short, truncated)``: a short AVI of the tiny twin, and a copy of it cut to a third of its bytes."""
    short = sorted(tiny_raw.glob("boxing/*.avi"))[0]
    truncated = tmp_path_factory.mktemp("truncated") / f"cut_{short.name}"
    data = short.read_bytes()
    truncated.write_bytes(data[:len(data) // 3])
    return short, truncated


BAD_CHECKPOINTS = {  # what the error line must say about each
    "results.json": "the results of an evaluation",
    "empty.pth": "an empty file",
    "truncated.pth": "a truncated or damaged torch file",
    ".": "a folder",
    "damaged.pth": "a damaged checkpoint (its record archive/data/",  # fails the CRC-32 of its zip record
    "crafted.pth": "a torch file of other Python objects",
}


def assert_checkpoint_error(result, path, what, run_dir):
    """One line naming ``path``, saying ``what`` it is (not a checkpoint, or a damaged one) and to give the run's
    best.pth; never 'delete'; a crafted pickle's code was not run."""
    kind = ("copy it again",) if "a damaged checkpoint" in what else ("not a checkpoint",)
    line = assert_one_line_error(result, path, what, *kind, f"give {run_dir / 'best.pth'}")
    assert "delete" not in line and not (run_dir.parent.parent / "ran").exists()
    return line


def assert_json_error(result, line):
    """stdout is one JSON object whose 'error' is the line of stderr."""
    assert json.loads(result.stdout) == {"error": line.removeprefix("error: ")}


# ----------------------------------------------------------------------------- src.predict

def test_predict_work_is_bounded_and_a_truncated_video_gets_a_note(run, videos, tmp_path):
    """--clips 100000 on a 73-frame video is capped at its distinct windows, and --stride 1 --timeline
    makes one window per start, all batch by batch: the run stays well under 2 GB (it used 23.8 GB)."""
    short, truncated = videos
    before = snapshot(run)
    result = run_cli("src.predict", "--checkpoint", run / "best.pth", short, truncated, "--clips", "100000",
                     "--timeline", "--stride", "1", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss < 2 * 1024 ** 2  # KiB: every child so far
    good, cut = json.loads(result.stdout)
    data = torch.load(run / "best.pth")["config"]["data"]
    span = (data["max_frames"] - 1) * data["slicing_step"] + 1
    windows = good["num_frames"] - span + 1
    assert f"--clips 100000 capped at {windows}" in good["note"] and "\n" not in good["note"]
    assert len(good["timeline"]) == windows and [w["start_frame"] for w in good["timeline"]] == list(range(windows))

    with av.open(str(truncated)) as container:
        announced = container.streams.video[0].frames
    read = len(decode_video(truncated))
    assert read < announced == good["num_frames"] and cut["num_frames"] == read
    assert f"read {read} of the {announced} frames {truncated.name} announces" in cut["note"]
    assert f"note: {truncated}: " in result.stderr
    assert snapshot(run) == before


@pytest.mark.parametrize("name", BAD_CHECKPOINTS)
def test_predict_a_file_that_is_no_checkpoint(run, videos, name, tmp_path):
    """One line that says what the file is and what to give instead; with --json, JSON on stdout."""
    path = (run / name).resolve()
    before = snapshot(run)
    result = run_cli("src.predict", "--checkpoint", path, videos[0], "--json", cwd=tmp_path)
    line = assert_checkpoint_error(result, path, BAD_CHECKPOINTS[name], run)
    assert_json_error(result, line)
    assert snapshot(run) == before


def test_predict_a_device_this_machine_lacks_is_not_blamed_on_the_checkpoint(run, videos, tmp_path):
    before = snapshot(run)
    result = run_cli("src.predict", "--checkpoint", run / "best.pth", videos[0], "--device", MISSING_DEVICE,
                     "--json", cwd=tmp_path)
    line = assert_one_line_error(result, "--device", repr(MISSING_DEVICE))
    assert "best.pth" not in line and "delete" not in line
    assert_json_error(result, line)
    assert snapshot(run) == before


def test_predict_a_gif_path_under_a_file_is_refused_before_predicting(run, videos, tmp_path):
    """Refused up front (instant, nothing predicted to throw away); the input is not blamed."""
    (tmp_path / "notes.txt").write_text("a file")
    gif = tmp_path / "notes.txt" / "out.gif"
    before = snapshot(run, tmp_path)
    result = run_cli("src.predict", "--checkpoint", run / "best.pth", videos[0], "--gif", gif, cwd=tmp_path)
    assert_one_line_error(result, "--gif", gif, "notes.txt is a file")
    assert result.stdout == "" and str(videos[0]) not in result.stderr
    assert snapshot(run, tmp_path) == before


def test_predict_bad_numbers_are_json_too(run, videos, tmp_path):
    result = run_cli("src.predict", "--checkpoint", run / "best.pth", videos[0], "--clips", "0", "--json", cwd=tmp_path)
    assert_one_line_error(result, "--clips", code=2)
    assert "--clips" in json.loads(result.stdout)["error"]


def test_predict_a_stream_from_a_camera_or_url_that_is_not_there_is_one_line(run, tmp_path):
    """--stream /dev/video97 and a 127.0.0.1 port nothing listens on: one line each, nothing on stdout, no --gif."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/live.ts"
    for source, words in (("/dev/video97", ["/dev/video97", "no such camera device"]), (url, [url, "could not open"])):
        result = run_cli("src.predict", "--checkpoint", run / "best.pth", "--stream", source, "--gif",
                         tmp_path / "out.gif", "--timeout", "5", cwd=tmp_path)
        assert_one_line_error(result, *words, code=1)
        assert result.stdout == "" and not (tmp_path / "out.gif").exists()


def test_predict_a_stream_that_stalls_says_so_after_its_answers(run, videos, tmp_path):
    """A named pipe that a writer opens, fills with a video, and then leaves open and silent: the answers so
    far on stdout, then one line naming the pipe and the timeout; exit code 1."""
    import os
    import subprocess
    import sys

    fifo = tmp_path / "stalled.fifo"
    os.mkfifo(fifo)
    script = (f"import time\nwith open({str(fifo)!r}, 'wb') as f:\n"
              f"    f.write(open({str(videos[0])!r}, 'rb').read())\n    f.flush()\n    time.sleep(30)")
    writer = subprocess.Popen([sys.executable, "-c", script])
    try:
        result = run_cli("src.predict", "--checkpoint", run / "best.pth", "--stream", fifo, "--format", "avi",
                         "--timeout", "2", cwd=tmp_path)
    finally:
        writer.kill()
    line = assert_one_line_error(result, str(fifo), "no frame for 2 s", "the stream stalled", only_line=False, code=1)
    assert "after frame" in line and len(result.stdout.splitlines()) > 0


# ----------------------------------------------------------------------------- src.export

@pytest.mark.parametrize("name, what", [("missing.pth", "no checkpoint there"),
                                        *[(name, BAD_CHECKPOINTS[name]) for name in
                                          ("results.json", "truncated.pth", "damaged.pth", "crafted.pth")]])
def test_export_a_bad_checkpoint(run, name, what, tmp_path):
    before = snapshot(run)
    result = run_cli("src.export", "--checkpoint", run / name, "--onnx", tmp_path / "out" / "m.onnx", cwd=tmp_path)
    assert_one_line_error(result, run / name, what)
    assert snapshot(run) == before and not (tmp_path / "out").exists()


def test_export_into_a_folder_that_cannot_be_made(run, tmp_path):
    (tmp_path / "notes.txt").write_text("a file")
    onnx_path = tmp_path / "notes.txt" / "sub" / "m.onnx"
    before = snapshot(run, tmp_path)
    result = run_cli("src.export", "--checkpoint", run / "best.pth", "--onnx", onnx_path, cwd=tmp_path)
    assert_one_line_error(result, "--onnx", onnx_path)
    assert snapshot(run, tmp_path) == before


def test_export_an_opset_out_of_range(run, tmp_path):
    result = run_cli("src.export", "--checkpoint", run / "best.pth", "--onnx", tmp_path / "m.onnx", "--opset", "7",
                     cwd=tmp_path)
    assert_one_line_error(result, "--opset 7", "18")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- src.evaluate

@pytest.mark.parametrize("name", ["results.json", "damaged.pth", "crafted.pth"])
def test_evaluate_a_file_that_is_no_checkpoint_or_a_damaged_one(run, name, tmp_path):
    before = snapshot(run)
    result = run_cli("src.evaluate", "--checkpoint", run / name, "--device", "cpu", cwd=tmp_path)
    assert_checkpoint_error(result, run / name, BAD_CHECKPOINTS[name], run)
    assert snapshot(run) == before and list(tmp_path.iterdir()) == []


def test_evaluate_a_checkpoint_in_the_folder_of_another_run(run, tmp_path):
    """GRUCell's best.pth copied over OwnGRU's (issue 34 #3): its results.json would be counted as OwnGRU's."""
    other = tmp_path / "models" / "OwnGRU"
    other.mkdir(parents=True)
    for name in ("best.pth", "results.json"):
        shutil.copy(run / name, other / name)
    before = snapshot(tmp_path)
    result = run_cli("src.evaluate", "--checkpoint", other / "best.pth", "--device", "cpu", cwd=tmp_path)
    assert_one_line_error(result, f"{other / 'best.pth'}: the checkpoint of run 'GRUCell', in the folder of run "
                                  f"'OwnGRU'", f"put it in {tmp_path / 'models' / 'GRUCell'}/", code=1)
    assert snapshot(tmp_path) == before and sorted(p.name for p in other.iterdir()) == ["best.pth", "results.json"]


def test_evaluate_a_device_this_machine_lacks(run, tmp_path):
    before = snapshot(run)
    result = run_cli("src.evaluate", "--checkpoint", run / "best.pth", "--device", MISSING_DEVICE, cwd=tmp_path)
    line = assert_one_line_error(result, "--device", repr(MISSING_DEVICE))
    assert "best.pth" not in line
    assert snapshot(run) == before


def test_evaluate_data_that_is_not_prepared(run, tmp_path):
    (tmp_path / "raw").mkdir()
    before = snapshot(run)
    result = run_cli("src.evaluate", "--checkpoint", run / "best.pth", "--data", tmp_path / "raw", "--device", "cpu",
                     cwd=tmp_path)
    assert_one_line_error(result, tmp_path / "raw", "no prepared dataset")
    assert snapshot(run) == before


def test_evaluate_where_results_json_cannot_be_written(run, tmp_path):
    """Refused before the test pass, naming the file; the checkpoint is kept."""
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(run / "best.pth", copy / "best.pth")
    (copy / "results.json").mkdir()  # a folder where the file should go
    before = snapshot(copy)
    result = run_cli("src.evaluate", "--checkpoint", copy / "best.pth", "--device", "cpu", cwd=tmp_path)
    assert_one_line_error(result, copy / "results.json", "is a folder")
    assert snapshot(copy) == before and list((copy / "results.json").iterdir()) == []
