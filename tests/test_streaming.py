"""Tests of src/nets/streaming.py: one frame at a time equals the clip forward, for every recurrent module."""
from pathlib import Path

import pytest
import torch

from src.config import load_config
from src.nets.classifier import ActionClassifier, build_model
from src.nets.r2plus1d import R2Plus1D
from src.nets.registry import RNN_TYPES
from src.nets.streaming import (
    RULES,
    StreamingClassifier,
    WindowedClassifier,
    rule_streams,
    stream_accuracy,
    streaming_for,
)
from src.training.checkpoint import load_model, save_checkpoint

REPO = Path(__file__).resolve().parents[1]
MAX_FRAMES = 6
SIZE = 16  # the ConvEncoder halves four times: 16x16 frames give 1x1 maps
TOLERANCE = dict(atol=1e-5, rtol=1e-5)  # float32 rounding; measured differences are ~3e-8


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def small_model(rnn_type: str = "GRUCell", num_layers: int = 2, seed: int = 0) -> ActionClassifier:
    torch.manual_seed(seed)
    return ActionClassifier(rnn_type=rnn_type, emb_dim=12, hidden_dim=10, num_layers=num_layers).eval()


def frames_of(length: int, batch: int = 2, size: int = SIZE, seed: int = 1) -> torch.Tensor:
    """Random frames (B, T, 1, size, size) in [0, 1]."""
    return torch.rand(batch, length, 1, size, size, generator=torch.Generator().manual_seed(seed))


def streamed(stream, frames: torch.Tensor):
    """The logits (B, classes) after each frame of frames (B, T, C, H, W), one frame at a time (a generator:
    the stream's attributes are read between its steps)."""
    return (stream.step(frames[:, t]) for t in range(frames.shape[1]))


@torch.inference_mode()
def clip_logits(model, frames: torch.Tensor) -> torch.Tensor:
    return model(frames)


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("rnn_type", RNN_TYPES)
@pytest.mark.parametrize("rule", RULES)
def test_streaming_equals_the_clip_forward_at_every_step(rnn_type, num_layers, rule):
    model = small_model(rnn_type, num_layers)
    frames = frames_of(MAX_FRAMES)
    stream = StreamingClassifier(model, MAX_FRAMES, rule=rule)
    for t, logits in enumerate(streamed(stream, frames), start=1):
        assert logits.shape == (2, 6)
        assert stream.answer_frames == t
        torch.testing.assert_close(logits, clip_logits(model, frames[:, :t]), **TOLERANCE)


@pytest.mark.parametrize("rnn_type", ["GRUCell", "OwnLSTM", "OwnConvLSTM"])
def test_carry_is_the_clip_of_every_frame_so_far(rnn_type):
    model = small_model(rnn_type)
    frames = frames_of(2 * MAX_FRAMES + 1, batch=1)
    stream = StreamingClassifier(model, MAX_FRAMES, rule="carry")
    for t, logits in enumerate(streamed(stream, frames), start=1):
        torch.testing.assert_close(logits, clip_logits(model, frames[:, :t]), **TOLERANCE)


def test_reset_starts_again_every_n_frames():
    model = small_model("OwnGRU")
    frames = frames_of(3 * MAX_FRAMES, batch=1)
    stream = StreamingClassifier(model, MAX_FRAMES, rule="reset", every=4)
    for t, logits in enumerate(streamed(stream, frames)):
        start = t - t % 4
        assert stream.answer_frames == t - start + 1
        torch.testing.assert_close(logits, clip_logits(model, frames[:, start:t + 1]), **TOLERANCE)


@pytest.mark.parametrize("rnn_type", ["LSTMCell", "OwnConvLSTM"])
def test_window_answers_from_the_older_of_two_staggered_states(rnn_type):
    model = small_model(rnn_type)
    frames = frames_of(4 * MAX_FRAMES, batch=2)
    stream = StreamingClassifier(model, MAX_FRAMES)  # the default: 'window', 2 states, every max_frames
    assert (stream.rule, stream.states, stream.every) == ("window", 2, MAX_FRAMES)
    for t, logits in enumerate(streamed(stream, frames), start=1):
        span = stream.answer_frames
        assert span == t if t <= MAX_FRAMES else MAX_FRAMES // 2 < span <= MAX_FRAMES
        torch.testing.assert_close(logits, clip_logits(model, frames[:, t - span:t]), **TOLERANCE)


def test_window_with_max_frames_states_is_the_exact_sliding_window():
    model = small_model("GRUCell")
    frames = frames_of(3 * MAX_FRAMES, batch=1)
    stream = StreamingClassifier(model, MAX_FRAMES, rule="window", states=MAX_FRAMES)
    windowed = WindowedClassifier(model, MAX_FRAMES)
    for t in range(frames.shape[1]):
        logits, recomputed = stream.step(frames[:, t]), windowed.step(frames[:, t])
        last = frames[:, max(0, t + 1 - MAX_FRAMES):t + 1]
        torch.testing.assert_close(logits, clip_logits(model, last), **TOLERANCE)
        if t + 1 >= MAX_FRAMES:
            torch.testing.assert_close(logits, recomputed, **TOLERANCE)


def test_reset_restores_the_start():
    model = small_model("OwnLSTM")
    stream = StreamingClassifier(model, MAX_FRAMES)
    first = list(streamed(stream, frames_of(4)))
    list(streamed(stream, frames_of(9, seed=5)))
    stream.reset()
    assert stream.frames_seen == 0 and stream.state_tensors() == []
    again = list(streamed(stream, frames_of(4)))
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a, b)
    stream.reset()
    stream.step(frames_of(1, batch=3)[:, 0])  # after reset() another batch is fine


def test_memory_is_constant_over_the_stream():
    model = small_model("GRUCell", num_layers=1)
    frame = frames_of(1, batch=1)[:, 0]
    streams = {"carry": (StreamingClassifier(model, MAX_FRAMES, rule="carry"), 1000),
               "window": (StreamingClassifier(model, MAX_FRAMES), 1000),
               "recompute": (WindowedClassifier(model, MAX_FRAMES), 100)}  # full after MAX_FRAMES frames
    for name, (stream, steps) in streams.items():
        sizes = {}
        for t in range(1, steps + 1):
            stream.step(frame)
            if t in (10, steps):
                held = stream.state_tensors()
                sizes[t] = (len(held), sum(tensor.numel() for tensor in held))
        assert sizes[10] == sizes[steps], name


def test_windowed_r2plus1d_is_the_model_on_the_last_window():
    torch.manual_seed(0)
    model = R2Plus1D(widths=(4, 4, 8, 8)).eval()
    frames = frames_of(MAX_FRAMES + 3, batch=2, size=32)
    stream = WindowedClassifier(model, MAX_FRAMES)
    for t, logits in enumerate(streamed(stream, frames), start=1):
        clip = frames[:, max(0, t - MAX_FRAMES):t]
        if t < MAX_FRAMES:  # padded by repeating the last frame
            clip = torch.cat([clip, clip[:, -1:].expand(-1, MAX_FRAMES - t, -1, -1, -1)], dim=1)
        assert stream.answer_frames == min(t, MAX_FRAMES)
        torch.testing.assert_close(logits, clip_logits(model, clip), **TOLERANCE)


def test_unpadded_window_takes_the_short_clip():
    model = small_model("GRUCell")
    frames = frames_of(3)
    stream = WindowedClassifier(model, MAX_FRAMES, pad=False)
    for t, logits in enumerate(streamed(stream, frames), start=1):
        torch.testing.assert_close(logits, clip_logits(model, frames[:, :t]), **TOLERANCE)


def test_a_checkpoint_from_disk_streams_like_its_clips(tmp_path):
    config = load_config(REPO / "configs" / "OwnConvLSTM.yaml",
                         [f"data.max_frames={MAX_FRAMES}", "model.emb_dim=8", "model.hidden_dim=8"])
    model = build_model(config["model"], num_classes=4)
    path = save_checkpoint({"config": config, "model_state_dict": model.state_dict(),
                            "classes": list("abcd"), "channels": 1}, tmp_path / "best.pth")
    loaded, checkpoint = load_model(path)
    stream = streaming_for(loaded, checkpoint["config"])
    assert isinstance(stream, StreamingClassifier) and stream.max_frames == MAX_FRAMES
    frames = frames_of(MAX_FRAMES, batch=1, size=32)
    for t, logits in enumerate(streamed(stream, frames), start=1):
        torch.testing.assert_close(logits, clip_logits(model.eval(), frames[:, :t]), **TOLERANCE)


def test_the_committed_gru_checkpoint_streams_like_its_clips():
    model, checkpoint = load_model(REPO / "models" / "GRUCell" / "best.pth")
    data = checkpoint["config"]["data"]
    stream = streaming_for(model, checkpoint["config"])
    frames = frames_of(data["max_frames"], batch=1, size=data["img_size"])
    for t, logits in enumerate(streamed(stream, frames), start=1):
        torch.testing.assert_close(logits, clip_logits(model, frames[:, :t]), **TOLERANCE)


def test_streaming_for_a_clip_network_recomputes_its_window():
    stream = streaming_for(R2Plus1D(widths=(4, 4, 8, 8)), {"data": {"max_frames": 8}})
    assert isinstance(stream, WindowedClassifier) and stream.window == 8


def test_stream_accuracy_scores_every_rule():
    model = small_model("GRUCell")
    videos = [(frames_of(length, batch=1, seed=length)[0], 0) for length in (5, 14)]
    # label each video with what the model says about the whole of it: 'carry' must get every final answer right
    videos = [(frames, int(clip_logits(model, frames[None]).argmax())) for frames, _ in videos]
    uint8_videos = [((frames * 255).round().to(torch.uint8), label) for frames, label in videos]
    scores = stream_accuracy(rule_streams(model, MAX_FRAMES), videos)
    assert set(scores) == {"carry", "reset", "window", f"window, {MAX_FRAMES} states", "recompute window"}
    assert scores["carry"]["final"] == 1.0
    for score in scores.values():
        assert score["videos"] == 2 and 0 <= score["per_frame"] <= 1
    every_other = stream_accuracy({"carry": StreamingClassifier(model, MAX_FRAMES, rule="carry")}, uint8_videos,
                                  frame_step=2)
    assert every_other["carry"]["videos"] == 2


def test_bad_arguments_are_one_line_errors():
    model = small_model()
    with pytest.raises(TypeError, match="WindowedClassifier"):
        StreamingClassifier(R2Plus1D(), MAX_FRAMES)
    with pytest.raises(ValueError, match="unknown rule 'sliding'"):
        StreamingClassifier(model, MAX_FRAMES, rule="sliding")
    with pytest.raises(ValueError, match=r"states must be 1\.\.6"):
        StreamingClassifier(model, MAX_FRAMES, states=7)
    with pytest.raises(ValueError, match="states must be 1 under rule 'carry'"):
        StreamingClassifier(model, MAX_FRAMES, rule="carry", states=2)
    stream = StreamingClassifier(model, MAX_FRAMES)
    with pytest.raises(ValueError, match=r"one frame \(B, C, H, W\) with C = 1"):
        stream.step(frames_of(2))
    stream.step(frames_of(1)[:, 0])
    with pytest.raises(ValueError, match="call reset"):
        stream.step(frames_of(1, batch=3)[:, 0])
    with pytest.raises(ValueError, match="no videos"):
        stream_accuracy({"window": stream}, [])
