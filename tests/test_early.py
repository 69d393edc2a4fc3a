"""src/training/early.py: early recognition, the streams' answers against the model on the frames they saw."""
import json

import pytest
import torch

from src.config import load_config
from src.nets.classifier import build_model
from src.nets.r2plus1d import R2Plus1D
from src.nets.streaming import DEFAULT_RULE, RULES, StreamingClassifier, WindowedClassifier
from src.training.early import (
    PERCENTS,
    Streams,
    clip_streams,
    early_recognition,
    fraction_steps,
    on_features,
    recurrent_predictions,
    state_rule_records,
    subsequence_streams,
    video_streams,
    windowed_predictions,
)
from src.training.evaluation import make_val_set
from src.training.loop import dataset_from_config

CPU = torch.device("cpu")
TINY = ["model.emb_dim=16", "model.hidden_dim=16", "model.num_layers=1", "data.max_frames=4",
        "data.eval_clips_per_video=3"]


@pytest.fixture(scope="module")
def test_set(tiny_prepared):
    """The tiny twin's test split as src.evaluate makes it: 3 fixed clips of 4 frames per video, every 3rd frame."""
    config = load_config("configs/GRUCell.yaml", TINY)
    return dataset_from_config(config, tiny_prepared, "test")


@pytest.fixture(scope="module")
def val_set(tiny_prepared):
    """The tiny twin's validation split, made as the test split is (src.training.evaluation.make_val_set)."""
    return make_val_set(load_config("configs/GRUCell.yaml", TINY), tiny_prepared)


def calibrated(model: torch.nn.Module, test_set) -> torch.nn.Module:
    """``model`` in eval mode, with its BatchNorm statistics those of a few test clips and its head scaled up and
    centred, so that an untrained model's answers differ from clip to clip."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a cumulative average
    clips = torch.stack([test_set[i][0] for i in range(0, len(test_set), 3)])
    with torch.no_grad():
        model.train()(clips)
        model.fc.weight.mul_(100)
        model.fc.bias.sub_(model.eval()(clips).mean(0))  # logits centred over the clips
    return model


def recurrent_model(rnn_type: str, test_set) -> torch.nn.Module:
    """An untrained ActionClassifier, :func:`calibrated`."""
    torch.manual_seed(0)
    config = load_config("configs/GRUCell.yaml", [*TINY, f"model.rnn_type={rnn_type}"])
    return calibrated(build_model(config["model"], len(test_set.classes)), test_set)


def frames_of(test_set, streams: Streams, i: int) -> torch.Tensor:
    """Stream i's frames, float (L, C, H, W) in [0, 1]."""
    return test_set.video_frames[streams.video[i]][streams.frames[i]].float() / 255


def labels_of(test_set, streams: Streams) -> torch.Tensor:
    return torch.tensor([test_set.labels[v] for v in streams.video])


def test_fraction_steps_read_ceil_of_the_share_without_float_rounding():
    steps = fraction_steps(torch.tensor([1, 3, 10, 7]))
    assert steps[0].tolist() == [1] * 10
    assert steps[1].tolist() == [1, 1, 1, 2, 2, 2, 3, 3, 3, 3]  # ceil(0.3 * 3) = 1, not 2 from 0.30000000000000004
    assert steps[2].tolist() == list(range(1, 11))
    assert steps[3, -1] == 7 and steps[3, 0] == 1 and steps.shape == (4, len(PERCENTS))


def test_the_streams_are_the_test_clips_the_subsequences_and_the_videos(test_set):
    clips = clip_streams(test_set)
    assert len(clips.video) == len(test_set) and all(len(frames) == 4 for frames in clips.frames)
    for i in (0, 4, len(test_set) - 1):  # the frames of the test pass's clip i
        torch.testing.assert_close(frames_of(test_set, clips, i), test_set[i][0])
    subsequences = subsequence_streams(test_set)
    assert len(subsequences.video) == sum(map(len, test_set.segments))
    start, end = test_set.segments[0][0]
    assert subsequences.frames[0].tolist() == list(range(start, end, 3))
    videos = video_streams(test_set)
    assert videos.frames[1].tolist() == list(range(0, len(test_set.video_frames[1]), 3))


@pytest.mark.parametrize("rnn_type", ["GRUCell", "OwnLSTM", "OwnConvLSTM"])
def test_prefix_answers_are_the_model_on_the_prefix(test_set, rnn_type):
    model = recurrent_model(rnn_type, test_set)
    clips = clip_streams(test_set)
    answers = recurrent_predictions(model, test_set, {"clips": clips}, {"clips": ("carry",)}, CPU,
                                    videos_per_group=5)[("clips", "carry")]
    batch = torch.stack([frames_of(test_set, clips, i) for i in range(len(clips.video))])  # (N, 4, C, H, W)
    with torch.no_grad():
        expected = torch.stack([model(batch[:, :t]).argmax(1) for t in range(1, 5)], 1)  # (N, 4)
    assert torch.equal(torch.stack(answers), expected)
    assert len(expected.unique()) > 1  # the answers differ: the comparison could fail
    assert type(model.encoder).__name__ == "ConvEncoder"  # the view did not replace the model's own encoder


def test_the_rules_on_whole_subsequences_are_the_streams_on_their_frames(test_set):
    model = recurrent_model("GRUCell", test_set)
    subsequences = subsequence_streams(test_set)
    answers = recurrent_predictions(model, test_set, {"subsequences": subsequences}, {"subsequences": RULES}, CPU,
                                    videos_per_group=4)
    for rule in RULES:
        stream = StreamingClassifier(model, 4, rule=rule)
        for i in range(0, len(subsequences.video), 5):
            stream.reset()
            expected = torch.stack([stream.step(frame[None]).argmax(1)[0] for frame in frames_of(test_set,
                                                                                                   subsequences, i)])
            assert torch.equal(answers["subsequences", rule][i], expected), (rule, i)
    # subsequences longer than a clip: the rules part after max_frames steps
    assert any(not torch.equal(a, b) for a, b in zip(answers["subsequences", "carry"],
                                                     answers["subsequences", "reset"]))


def test_early_recognition_of_a_recurrent_model(test_set):
    model = recurrent_model("GRUCell", test_set)
    records = early_recognition(model, test_set, CPU)
    early, rules = records["early_recognition"], records["state_rules"]
    json.dumps(records)  # results.json takes it
    clips = clip_streams(test_set)
    batch = torch.stack([frames_of(test_set, clips, i) for i in range(len(clips.video))])
    with torch.no_grad():  # the last step is the test pass's clip accuracy
        clip_accuracy = (model(batch).argmax(1) == labels_of(test_set, clips)).float().mean().item()
    assert early["steps"] == [1, 2, 3, 4] and early["clip_accuracy"][-1] == pytest.approx(clip_accuracy)
    assert (early["rule"], early["clips"], early["percents"]) == (DEFAULT_RULE, len(test_set), list(PERCENTS))
    # at 100 % the default rule's answer after the whole subsequence, as state_rules has it
    assert early["subsequence_accuracy"][-1] == pytest.approx(rules["subsequences"][DEFAULT_RULE]["final"])
    # each share: the default rule's stream on the frames, read after ceil(p L / 100) steps
    subsequences = subsequence_streams(test_set)
    stream, right = StreamingClassifier(model, 4, rule=DEFAULT_RULE), []
    for i, steps in enumerate(fraction_steps(subsequences.lengths())):
        stream.reset()
        named = torch.stack([stream.step(frame[None]).argmax(1)[0] for frame in frames_of(test_set, subsequences, i)])
        right.append(named[steps - 1] == test_set.labels[subsequences.video[i]])
    assert early["subsequence_accuracy"] == pytest.approx(torch.stack(right).float().mean(0).tolist())
    assert set(rules) == {"subsequences", "num_subsequences"} and set(rules["subsequences"]) == set(RULES)
    assert all(0 <= score <= 1 for kind in ("subsequences",) for rule in RULES
               for score in rules[kind][rule].values())


@pytest.mark.parametrize("rnn_type", ["OwnGRU", "GRUCell"])
def test_early_recognition_under_bfloat16_steps_the_streams_in_float32(test_set, rnn_type):
    """A test pass at bfloat16 (train.amp on a CPU with native bf16): the encoder under autocast, the cell steps in
    float32. Under autocast OwnGRU's lerp met bf16 and float32 and the suite's evaluate failed."""
    model = recurrent_model(rnn_type, test_set)
    records = early_recognition(model, test_set, CPU, precision="bfloat16")["early_recognition"]
    assert len(records["clip_accuracy"]) == 4 and all(0 <= a <= 1 for a in records["clip_accuracy"])
    assert len(records["subsequence_accuracy"]) == len(PERCENTS)


def test_a_carried_stream_over_a_whole_video_scores_its_last_answer(test_set):
    model = recurrent_model("GRUCell", test_set)
    videos = video_streams(test_set)
    records = early_recognition(model, test_set, CPU, whole_videos=True)["state_rules"]["videos"]["carry"]
    right = []
    with torch.no_grad():
        for i in range(len(videos.video)):  # carry: the answer is the model on every frame so far
            named = model(frames_of(test_set, videos, i)[None]).argmax(1)[0]
            right.append(bool(named == test_set.labels[i]))
    assert records["final"] == pytest.approx(sum(right) / len(right))


def test_the_window_of_a_clip_model_is_its_stream(test_set):
    torch.manual_seed(0)
    model = calibrated(R2Plus1D(num_classes=6, widths=(8, 8, 8, 8)), test_set)
    clips, subsequences = clip_streams(test_set), subsequence_streams(test_set)
    few = Streams(subsequences.video[:6], subsequences.frames[:6])
    steps = [torch.arange(1, len(frames) + 1) for frames in few.frames]
    for pad in (False, True):
        answers = windowed_predictions(model, test_set, few, steps, CPU, batch_size=7, pad=pad)
        stream = WindowedClassifier(model, 4, pad=pad)
        for i in range(len(few.video)):
            stream.reset()
            expected = torch.stack([stream.step(frame[None]).argmax(1)[0] for frame in frames_of(test_set, few, i)])
            assert torch.equal(answers[i], expected), (pad, i)
        assert len(torch.cat(answers).unique()) > 1
    # a clip model's record: no state rules; after max_frames steps its window is the clip itself
    records = early_recognition(model, test_set, CPU, batch_size=64)
    assert records["state_rules"] is None and records["early_recognition"]["rule"] == "recompute window, unpadded"
    batch = torch.stack([frames_of(test_set, clips, i) for i in range(len(clips.video))])
    with torch.no_grad():
        accuracy = (model(batch).argmax(1) == labels_of(test_set, clips)).float().mean().item()
    assert records["early_recognition"]["clip_accuracy"][-1] == pytest.approx(accuracy)


def test_the_view_on_features_shares_the_weights_and_leaves_the_model_whole(test_set):
    model = recurrent_model("GRUCell", test_set)
    clip = test_set[0][0][None]
    with torch.no_grad():
        before = model(clip)
        view = on_features(model, (16,))
        stream = StreamingClassifier(view, 4, rule="carry")
        for frame in clip[0]:
            logits = stream.step(model.encoder(frame[None])[..., None, None])
    torch.testing.assert_close(logits, before, rtol=1e-5, atol=1e-5)
    assert view.rnn is model.rnn and view.fc is model.fc and model.encoder is not view.encoder
    torch.testing.assert_close(model(clip), before)


def test_the_state_rules_on_validation_are_the_validation_streams(test_set, val_set):
    assert {v["person"] for v in val_set.videos}.isdisjoint(v["person"] for v in test_set.videos)
    model = recurrent_model("GRUCell", test_set)
    rules = early_recognition(model, test_set, CPU, whole_videos=True, val_set=val_set)["state_rules"]
    validation = rules["validation"]
    assert set(validation) == {"subsequences", "videos", "num_subsequences", "num_videos"}
    assert validation["num_subsequences"] == sum(map(len, val_set.segments))
    assert validation["num_videos"] == len(val_set.videos)
    # carry over a whole validation video: its answer after the last frame is the model on all its frames
    videos, right = video_streams(val_set), []
    with torch.no_grad():
        for i in range(len(videos.video)):
            right.append(bool(model(frames_of(val_set, videos, i)[None]).argmax(1)[0] == val_set.labels[i]))
    assert validation["videos"]["carry"]["final"] == pytest.approx(sum(right) / len(right))
    assert validation == state_rule_records(model, val_set, CPU, whole_videos=True)
    assert early_recognition(model, test_set, CPU)["state_rules"].keys() == {"subsequences", "num_subsequences"}
