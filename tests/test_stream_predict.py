"""``python -m src.predict --stream SOURCE`` (issue 32 section 1) and bounded decoding (issue 33 #9, #10): the reader
(src/inference/stream.py), the one-step graph (src/inference/step_graph.py), the CLI's JSON lines and its one-line
messages, a live named pipe, memory over 10,000 frames, ONNX streams."""
from __future__ import annotations

import io
import json
import math
import os
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from src.config import load_config
from src.data.prepare import decode_video, resize_frames
from src.inference.gif import band_height
from src.inference.predictor import load_predictor, predict_input
from src.inference.step_graph import GraphStream, step_state_shapes, torch_step_fn
from src.inference.stream import FrameReader, StreamStalled
from src.nets.classifier import ActionClassifier, build_model
from src.nets.registry import RNN_TYPES
from src.nets.streaming import RULES, StreamingClassifier, WindowedClassifier
from src.predict import main
from src.training.checkpoint import load_model, save_checkpoint
from tests.cli import REPO, message_lines

MODEL_OF_RECORD = REPO / "models" / "GRUCell" / "best.pth"
SAMPLE = "person04_boxing_d1_uncomp.mp4"  # 328 frames, 160x120, 25 fps
KEYS = {"frame", "time_s", "class", "probabilities", "latency_ms", "step_ms", "answer_frames"}


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def moving_square(t: int, width: int, height: int) -> np.ndarray:
    """An RGB frame (height, width, 3): a bright square that moves with ``t`` on a dark ground."""
    frame = np.full((height, width, 3), 30, np.uint8)
    side = max(4, height // 4)
    x, y = (3 * t) % (width - side), (2 * t) % (height - side)
    frame[y:y + side, x:x + side] = (220, 180 - t % 100, 40)
    return frame


def encode(frames, target, fmt: str | None = None, codec: str = "mpeg4", fps: int = 25) -> None:
    """Encode RGB frames (an iterable of (H, W, 3)) into ``target`` (a path or a BytesIO), with PyAV."""
    with av.open(target, "w", format=fmt) as out:
        stream = None
        for frame in frames:
            if stream is None:
                stream = out.add_stream(codec, rate=fps)
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "yuv420p"
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def mpegts_bytes(count: int, width: int = 64, height: int = 48) -> bytes:
    buffer = io.BytesIO()
    encode((moving_square(t, width, height) for t in range(count)), buffer, fmt="mpegts")
    return buffer.getvalue()


def tiny_checkpoint(path: Path, arch_set: list[str] | None = None, img_size: int = 32, slicing_step: int = 3) -> Path:
    """A random tiny model's checkpoint (GRUCell unless ``arch_set`` says otherwise), max_frames 4."""
    config = load_config("configs/GRUCell.yaml", ["model.emb_dim=8", "model.hidden_dim=8", "model.num_layers=1",
                                                  "data.max_frames=4", f"data.img_size={img_size}",
                                                  f"data.slicing_step={slicing_step}", *(arch_set or [])])
    torch.manual_seed(0)
    model = build_model(config["model"], num_classes=3, in_channels=1, load_pretrained=False)
    save_checkpoint({"config": config, "model_state_dict": model.state_dict(), "classes": ["a", "b", "c"],
                     "channels": 1}, path)
    return path


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def expected_stream(model, max_frames: int, frames: np.ndarray, step: int, **rule) -> list[torch.Tensor]:
    """StreamingClassifier's probabilities after each frame of uint8 (T, S, S) ``frames``[::step]."""
    stream = StreamingClassifier(model, max_frames, **rule)
    x = v2.functional.to_dtype(torch.from_numpy(frames[::step]).unsqueeze(1), torch.float32, scale=True)
    return [stream.step(frame.unsqueeze(0))[0].softmax(0) for frame in x]


# ----------------------------------------------------------------------------- the reader

def test_the_reader_takes_every_step_th_frame_resized_as_the_prepared_data(tmp_path):
    video = tmp_path / "clip.avi"
    encode((moving_square(t, 80, 60) for t in range(20)), str(video))
    reference = resize_frames(decode_video(video), 32)             # prepare's path: decode all, then resize
    reader = FrameReader(video, size=32, channels=1, step=3)
    frames = list(reader)
    assert [f.index for f in frames] == list(range(0, 20, 3)) and reader.frames_read == 20
    assert [f.time_s for f in frames] == pytest.approx([i / 25 for i in range(0, 20, 3)], abs=1e-3)
    np.testing.assert_array_equal(np.stack([f.pixels for f in frames]), reference[::3])
    colour = list(FrameReader(video, size=16, channels=3, step=1, display_size=40))
    assert colour[0].pixels.shape == (16, 16, 3) and colour[0].display.shape == (40, 40, 3) and len(colour) == 20


def test_a_folder_of_frames_whose_size_changes_is_resized_frame_by_frame_and_said_once(tmp_path, caplog):
    folder = tmp_path / "frames"
    folder.mkdir()
    for t in range(6):
        size = (40, 30) if t < 3 else (80, 60)
        Image.new("L", size, 40 * t).save(folder / f"{t:03d}.png")
    with caplog.at_level("WARNING", logger="src.inference.stream"):
        frames = list(FrameReader(folder, size=16))
    assert len(frames) == 6 and all(f.pixels.shape == (16, 16) for f in frames)
    assert [f.pixels[0, 0] for f in frames] == [40 * t for t in range(6)]
    changes = [r.getMessage() for r in caplog.records]
    assert len(changes) == 1 and "changed from 40x30 to 80x60 at frame 3" in changes[0]


def test_a_stream_whose_resolution_changes_mid_way_goes_on(tmp_path, capsys):
    """Two mpegts streams of different frame sizes, one after the other: one note, every frame answered."""
    source = tmp_path / "two_sizes.ts"
    source.write_bytes(mpegts_bytes(12, 64, 48) + mpegts_bytes(12, 96, 72))
    checkpoint = tiny_checkpoint(tmp_path / "tiny.pth")
    assert main(["--checkpoint", str(checkpoint), "--stream", str(source)]) == 0
    captured = capsys.readouterr()
    answers = json_lines(captured.out)
    notes = [line for line in captured.err.splitlines() if "frame size changed" in line]
    assert len(notes) == 1 and "64x48 to 96x72" in notes[0] and "goes on" in notes[0]
    assert len(answers) == math.ceil(24 / 3)


def test_a_source_that_stalls_times_out_with_one_line(tmp_path):
    fifo = tmp_path / "stalled.fifo"
    os.mkfifo(fifo)
    data = mpegts_bytes(30)

    def writer():  # a few frames, then silence while the pipe stays open
        with open(fifo, "wb") as f:
            f.write(data[:len(data) // 2])
            f.flush()
            time.sleep(3)
    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    reader = FrameReader(fifo, size=16, step=1, timeout=0.7, fmt="mpegts")
    frames = []
    with pytest.raises(StreamStalled) as info:
        for frame in reader:
            frames.append(frame)
    assert frames and f"{fifo}: no frame for 0.7 s after frame" in str(info.value) and "\n" not in str(info.value)


# ----------------------------------------------------------------------------- the step graph

@pytest.mark.parametrize("rnn_type", RNN_TYPES)
def test_the_explicit_state_step_gives_the_streaming_classifiers_answers(rnn_type):
    """GraphStream around StreamStep (what is exported to ONNX) = StreamingClassifier, for every rule."""
    torch.manual_seed(0)
    model = ActionClassifier(rnn_type=rnn_type, emb_dim=12, hidden_dim=10, num_layers=2).eval()
    frames = torch.rand(2, 15, 1, 16, 16)
    for rule, every in (("carry", None), ("reset", None), ("window", None), ("window", 5)):
        reference = StreamingClassifier(model, 6, rule=rule, every=every)
        graph = GraphStream(torch_step_fn(model), step_state_shapes(model, 1, 16), 6, rule=rule, every=every)
        for t in range(frames.shape[1]):
            torch.testing.assert_close(graph.step(frames[:, t]), reference.step(frames[:, t]), atol=1e-6, rtol=1e-6)
            assert graph.answer_frames == reference.answer_frames
    assert set(RULES) == {"carry", "reset", "window"}


# ----------------------------------------------------------------------------- the command line

def test_the_stream_of_the_model_of_record_on_a_real_sample_is_the_streaming_classifiers(kth_samples, capsys):
    """(b) and (d): the JSON lines parse, have the keys, one per frame taken; their probabilities are
    StreamingClassifier's on the same frames (decoded, resized, every slicing_step-th) of a checkpoint from disk."""
    video = kth_samples / SAMPLE
    assert main(["--checkpoint", str(MODEL_OF_RECORD), "--stream", str(video)]) == 0
    captured = capsys.readouterr()
    answers = json_lines(captured.out)
    model, checkpoint = load_model(MODEL_OF_RECORD)
    data = checkpoint["config"]["data"]
    frames = resize_frames(decode_video(video), data["img_size"])
    expected = expected_stream(model, data["max_frames"], frames, data["slicing_step"])
    assert len(answers) == len(expected) == math.ceil(328 / data["slicing_step"])
    for t, (answer, probabilities) in enumerate(zip(answers, expected)):
        assert set(answer) == KEYS and answer["frame"] == t * data["slicing_step"]
        assert answer["time_s"] == pytest.approx(answer["frame"] / 25, abs=1e-3)
        assert list(answer["probabilities"]) == checkpoint["classes"]
        assert list(answer["probabilities"].values()) == pytest.approx(probabilities.tolist(), abs=1e-4)
        assert answer["class"] == checkpoint["classes"][int(probabilities.argmax())]
        assert answer["latency_ms"] >= answer["step_ms"] > 0
    assert [a["answer_frames"] for a in answers[:12]] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 6, 7]  # 'window', 2 copies
    assert "rule 'window'" in captured.err and f"{SAMPLE}: 328 frames read, 110 answers" in captured.err


def test_rule_and_every_pass_to_the_streaming_classifier(kth_samples, capsys):
    video = kth_samples / SAMPLE
    assert main(["--checkpoint", str(MODEL_OF_RECORD), "--stream", str(video), "--rule", "reset", "--every", "4"]) == 0
    answers = json_lines(capsys.readouterr().out)
    assert [a["answer_frames"] for a in answers[:9]] == [1, 2, 3, 4, 1, 2, 3, 4, 1]
    model, checkpoint = load_model(MODEL_OF_RECORD)
    frames = resize_frames(decode_video(video), 64)
    expected = expected_stream(model, 10, frames, 3, rule="reset", every=4)
    assert list(answers[-1]["probabilities"].values()) == pytest.approx(expected[-1].tolist(), abs=1e-4)


@pytest.mark.parametrize("source, words", [("/dev/video97", ["/dev/video97", "no such camera device"]),
                                           ("missing.mp4", ["missing.mp4", "no such file or folder"])])
def test_a_camera_or_file_that_does_not_exist_is_one_line(tmp_path, capsys, source, words):
    checkpoint = tiny_checkpoint(tmp_path / "tiny.pth")
    source = source if source.startswith("/dev") else str(tmp_path / source)
    assert main(["--checkpoint", str(checkpoint), "--stream", source]) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert captured.out == "" and len(errors) == 1 and all(word in errors[0] for word in words)


def test_a_url_that_does_not_answer_is_one_line(tmp_path, capsys):
    with socket.socket() as s:  # a port of 127.0.0.1 that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/live.ts"
    checkpoint = tiny_checkpoint(tmp_path / "tiny.pth")
    assert main(["--checkpoint", str(checkpoint), "--stream", url, "--timeout", "3"]) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert captured.out == "" and len(errors) == 1 and errors[0].startswith(f"error: {url}: could not open")


def test_a_stream_that_ends_before_its_header_says_gets_a_note(tmp_path, capsys):
    video = tmp_path / "clip.avi"
    encode((moving_square(t, 64, 48) for t in range(60)), str(video))
    cut = tmp_path / "cut.avi"
    cut.write_bytes(video.read_bytes()[:video.stat().st_size * 7 // 10])  # the first keyframe is most of it
    checkpoint = tiny_checkpoint(tmp_path / "tiny.pth")
    assert main(["--checkpoint", str(checkpoint), "--stream", str(cut)]) == 0
    captured = capsys.readouterr()
    answers = json_lines(captured.out)
    notes = [line for line in captured.err.splitlines() if "ended after" in line]
    assert 0 < len(answers) < 20 and len(notes) == 1 and "of the 60 frames its header announces" in notes[0]

    broken = tmp_path / "cut.nut"  # a nut stream cut mid-packet: the decoder fails after some frames
    encode((moving_square(t, 64, 48) for t in range(60)), str(tmp_path / "clip.nut"), fmt="nut")
    broken.write_bytes((tmp_path / "clip.nut").read_bytes()[:(tmp_path / "clip.nut").stat().st_size // 2])
    assert main(["--checkpoint", str(checkpoint), "--stream", str(broken)]) == 1
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error: ")]
    assert json_lines(captured.out) and len(errors) == 1 and "the stream broke off after" in errors[0]


def test_a_stream_draws_its_running_answer_into_a_gif_and_a_video(tmp_path, capsys):
    video = tmp_path / "clip.avi"
    encode((moving_square(t, 160, 120) for t in range(30)), str(video))
    checkpoint = tiny_checkpoint(tmp_path / "tiny.pth")
    gif, mp4 = tmp_path / "out.gif", tmp_path / "out.mp4"
    assert main(["--checkpoint", str(checkpoint), "--stream", str(video), "--gif", str(gif), "--video", str(mp4),
                 "--gif-size", "48"]) == 0
    answers = json_lines(capsys.readouterr().out)
    assert len(answers) == 10
    with Image.open(gif) as image:
        assert image.n_frames == 10 and image.size == (48, 48 + band_height(48)) and image.info["duration"] == 120
    with av.open(str(mp4)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi", "out.gif", "out.mp4", "tiny.pth"]


def test_stream_flags_that_do_not_go_together_are_refused(tmp_path, capsys):
    checkpoint = str(tiny_checkpoint(tmp_path / "tiny.pth"))
    for argv, words in ((["x.mp4", "--stream", "y.mp4"], "or --stream SOURCE, not both"),
                        ([], "required: inputs (or --stream SOURCE)"),
                        (["--stream", "y.mp4", "--every", "0"], "argument --every: must be >= 1"),
                        (["--stream", "y.mp4", "--timeout", "0"], "argument --timeout: must be > 0"),
                        (["x.mp4", "--video", "o.mp4"], "argument --video: goes with --stream")):
        with pytest.raises(SystemExit) as info:
            main(["--checkpoint", checkpoint, *argv])
        assert info.value.code == 2 and words in capsys.readouterr().err


# ----------------------------------------------------------------------------- bounded whole-video work

def test_the_whole_video_gif_is_drawn_at_the_model_size_and_frame_step_and_stays_small(tmp_path):
    """Issue 33 #10: a minute of 320x240 video at 25 fps -> a GIF of every 3rd frame at 64x64, a few MB."""
    video = tmp_path / "minute.avi"
    encode((moving_square(t, 320, 240) for t in range(1500)), str(video))
    predictor = load_predictor(tiny_checkpoint(tmp_path / "tiny.pth", img_size=64))
    result = predict_input(predictor, video, clips=2, gif=tmp_path / "out.gif")
    with Image.open(tmp_path / "out.gif") as gif:
        assert gif.n_frames == 500 and gif.size == (64, 64 + band_height(64))
    assert result["num_frames"] == 1500 and (tmp_path / "out.gif").stat().st_size < 3e6


# ----------------------------------------------------------------------------- subprocesses

def cli_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PRETRAINED_BASE_URL": "http://127.0.0.1:1"}


def run_measured(args: list[str], cwd: Path) -> tuple[int, str, str, int]:
    """``python -m src.predict args`` -> (exit code, stdout, stderr, its own peak RSS in KiB: os.wait4)."""
    out, err = cwd / f"out{time.monotonic_ns()}.txt", cwd / f"err{time.monotonic_ns()}.txt"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "src.predict", *args], cwd=cwd, env=cli_env(),
                                   stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, out.read_text(), err.read_text(), usage.ru_maxrss


@pytest.mark.slow
def test_the_first_answer_comes_while_a_slow_writer_is_still_feeding_the_named_pipe(tmp_path):
    """(a) A writer process feeds an mpegts stream into a named pipe, a chunk every 50 ms; after half of it, it
    waits (up to 60 s) for the test to have read the predictor's first JSON line before it writes the rest. An
    offline predictor, one that reads the whole stream before answering, fails: its first line comes after the
    writer has given up waiting and written its last chunk."""
    data = mpegts_bytes(150)
    (tmp_path / "stream.ts").write_bytes(data)
    fifo = tmp_path / "live.fifo"
    os.mkfifo(fifo)
    checkpoint = tiny_checkpoint(tmp_path / "tiny.pth")
    predictor = subprocess.Popen([sys.executable, "-m", "src.predict", "--checkpoint", str(checkpoint), "--stream",
                                  str(fifo), "--format", "mpegts"], cwd=tmp_path, env=cli_env(), text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    last, go = tmp_path / "last_chunk_written", tmp_path / "first_answer_read"
    writer = subprocess.Popen([sys.executable, "-c", f"""
import os, time
data = open({str(tmp_path / 'stream.ts')!r}, 'rb').read()
size = len(data) // 40 + 1
chunks = [data[i:i + size] for i in range(0, len(data), size)]
with open({str(fifo)!r}, 'wb') as pipe:  # blocks until the predictor opens the pipe
    for i, chunk in enumerate(chunks):
        if i == len(chunks) // 2:
            deadline = time.monotonic() + 60
            while not os.path.exists({str(go)!r}) and time.monotonic() < deadline:
                time.sleep(0.05)
        if i == len(chunks) - 1:
            open({str(last)!r}, 'w').close()
        pipe.write(chunk)
        pipe.flush()
        time.sleep(0.05)
"""])
    try:
        ready, _, _ = select.select([predictor.stdout], [], [], 120)
        assert ready, "no answer in 120 s"
        first = json.loads(predictor.stdout.readline())
        assert writer.poll() is None and not last.exists(), "the writer had finished before the first answer"
        go.touch()
        assert set(first) == KEYS and first["frame"] == 0
        rest, err = predictor.communicate(timeout=120)
    finally:
        writer.wait(timeout=60)
        predictor.kill()
    answers = [first, *json_lines(rest)]
    assert predictor.returncode == 0, err
    frames = [a["frame"] for a in answers]  # a pipe is a live source: under load it may drop a waiting frame
    assert frames == sorted(set(frames)) and set(frames) <= set(range(0, 150, 3)) and len(frames) >= 40, frames


@pytest.mark.slow
def test_a_container_stream_on_standard_input(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "tiny.pth")
    result = subprocess.run([sys.executable, "-m", "src.predict", "--checkpoint", str(checkpoint), "--stream", "-"],
                            input=mpegts_bytes(30), cwd=tmp_path, env=cli_env(), capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    answers = json_lines(result.stdout.decode())
    assert len(answers) == 10 and all(set(a) == KEYS for a in answers)
    assert "standard input (stdin)" in result.stderr.decode()


@pytest.mark.slow
def test_memory_stays_flat_over_ten_thousand_frames(tmp_path):
    """(c) 10,000 frames of 80x60 (48 MB if held decoded in grayscale, 72 MB as yuv420p), every 10th taken: the
    predictor's peak RSS exceeds that of a 300-frame stream by less than 20 MB."""
    long, short = tmp_path / "long.avi", tmp_path / "short.avi"
    encode((moving_square(t, 80, 60) for t in range(10_000)), str(long))
    encode((moving_square(t, 80, 60) for t in range(300)), str(short))
    checkpoint = str(tiny_checkpoint(tmp_path / "tiny.pth", slicing_step=10))
    code, out, err, short_rss = run_measured(["--checkpoint", checkpoint, "--stream", str(short)], tmp_path)
    assert code == 0, err
    code, out, err, long_rss = run_measured(["--checkpoint", checkpoint, "--stream", str(long)], tmp_path)
    assert code == 0, err
    assert len(out.splitlines()) == 1000 and json.loads(out.splitlines()[-1])["frame"] == 9990
    assert (long_rss - short_rss) / 1024 < 20, f"peak RSS {short_rss / 1024:.0f} MB -> {long_rss / 1024:.0f} MB"


@pytest.mark.slow
def test_a_long_large_video_is_decoded_within_a_memory_bound(tmp_path):
    """Issue 33 #9: 400 frames of 640x360 (276 MB in RGB, 92 MB in gray at full size) predicted whole, as a colour
    model: the peak RSS exceeds that of a 20-frame video by less than 60 MB (frames are resized as decoded)."""
    long, short = tmp_path / "long.avi", tmp_path / "short.avi"
    encode((moving_square(t, 640, 360) for t in range(400)), str(long))
    encode((moving_square(t, 640, 360) for t in range(20)), str(short))
    config = load_config("configs/GRUCell.yaml", ["model.emb_dim=8", "model.hidden_dim=8", "model.num_layers=1",
                                                  "data.max_frames=4"])
    model = build_model(config["model"], num_classes=2, in_channels=3)
    save_checkpoint({"config": config, "model_state_dict": model.state_dict(), "classes": ["x", "y"], "channels": 3},
                    tmp_path / "colour.pth")
    rss = {}
    for name, video in (("short", short), ("long", long)):
        code, out, err, rss[name] = run_measured(["--checkpoint", str(tmp_path / "colour.pth"), str(video), "--json"],
                                                 tmp_path)
        assert code == 0, err
    assert json.loads(out)[0]["num_frames"] == 400
    growth = (rss["long"] - rss["short"]) / 1024
    assert growth < 60, f"peak RSS {rss['short'] / 1024:.0f} -> {rss['long'] / 1024:.0f} MB"


# ----------------------------------------------------------------------------- ONNX

@pytest.mark.slow  # an ONNX export: seconds
def test_the_onnx_step_graph_streams_like_the_checkpoint(kth_samples, tmp_path, capsys):
    from src.inference.export import export_stream_onnx

    onnx_path = export_stream_onnx(MODEL_OF_RECORD, tmp_path / "gru_step.onnx")
    video = str(kth_samples / SAMPLE)
    outputs = {}
    for checkpoint in (MODEL_OF_RECORD, onnx_path):
        assert main(["--checkpoint", str(checkpoint), "--stream", video, "--every", "6"]) == 0
        outputs[checkpoint] = json_lines(capsys.readouterr().out)
    from_pth, from_onnx = outputs.values()
    assert len(from_pth) == len(from_onnx) == 110
    for a, b in zip(from_pth, from_onnx):
        assert (a["frame"], a["answer_frames"]) == (b["frame"], b["answer_frames"])
        assert list(a["probabilities"].values()) == pytest.approx(list(b["probabilities"].values()), abs=1e-4)
    whole = [predict_input(load_predictor(path), video, clips=3)["probabilities"] for path in outputs]
    assert list(whole[0].values()) == pytest.approx(list(whole[1].values()), abs=1e-4)


@pytest.mark.slow  # an ONNX export: seconds
def test_an_r2plus1d_onnx_streams_by_the_window(tmp_path, capsys):
    from src.inference.export import ExportError, export_onnx, export_stream_onnx

    checkpoint = tiny_checkpoint(tmp_path / "r21d.pth", ["model.arch=r2plus1d"])
    with pytest.raises(ExportError, match="clip network with no state to carry"):
        export_stream_onnx(checkpoint, tmp_path / "step.onnx")
    onnx_path = export_onnx(checkpoint, tmp_path / "r21d.onnx")
    video = tmp_path / "clip.avi"
    encode((moving_square(t, 64, 48) for t in range(24)), str(video))
    assert main(["--checkpoint", str(onnx_path), "--stream", str(video)]) == 0
    captured = capsys.readouterr()
    answers = json_lines(captured.out)
    assert "recomputing its last 4-frame window" in captured.err
    model, _ = load_model(checkpoint)
    window = WindowedClassifier(model, 4)
    frames = v2.functional.to_dtype(torch.from_numpy(resize_frames(decode_video(video), 32)[::3]).unsqueeze(1),
                                    torch.float32, scale=True)
    expected = [window.step(frame.unsqueeze(0))[0].softmax(0) for frame in frames]
    assert len(answers) == len(expected) == 8
    for answer, probabilities in zip(answers, expected):
        assert list(answer["probabilities"].values()) == pytest.approx(probabilities.tolist(), abs=1e-4)
    assert not message_lines(captured.err)[0].startswith("error")
