"""Early recognition (issue 32): how well a trained model names the action while the video is still arriving.

    records = early_recognition(model, test_set, device)     # src.training.evaluation.evaluate calls it

Every answer is the answer of the model's stream (src/nets/streaming.py), after ``t`` frames of it, one every
``data.slicing_step`` frames of the video, as training took them:

* **clips** (``early_recognition["clip_accuracy"]``): each test clip (the test pass's ``data.eval_clips_per_video``
  evenly spaced clips per video) played as a stream; the accuracy after t = 1..``max_frames`` of its frames. A
  recurrent model's stream is exact: after t frames it answers ``model(the clip's first t frames)``, so the last
  entry is the test clip accuracy. R(2+1)D streams by recomputing its window (:class:`WindowedClassifier`), here
  with ``pad=False``: after t frames it answers on the last min(t, max_frames) of them, as they are (R2Plus1D and
  TorchvisionR2Plus1D take clips of any length, 1 frame too), so this too is the model on the t-frame prefix.
  Padding them to ``max_frames`` by repeating the last (``pad=True``, the default of WindowedClassifier and of
  src.predict's stream) would cost up to twice as much here and feed frozen frames;
* **subsequences** (``"subsequence_accuracy"``): each subsequence of each test video that the test clips come from
  (the annotated ones of ``00sequences.txt`` at least one clip long, :attr:`VideoClipDataset.segments`; the whole
  video without ``data.use_sequences``), played as a stream under the default state rule
  (:data:`src.nets.streaming.DEFAULT_RULE`); the accuracy after 10 %, 20 %, ..., 100 % of its L steps, i.e. after
  ``ceil(p * L / 100)`` steps;
* **state rules** (``state_rules``, recurrent models only): every rule of :data:`src.nets.streaming.RULES` at its
  defaults on each whole subsequence (and, with ``whole_videos``, on each whole test video, every frame, not only
  the annotated parts):
  ``final``, the share whose answer after the last frame is right, and ``per_step``, the mean over them of the
  share of their answers that are right;
* **state rules on validation** (``state_rules["validation"]``, given the validation split): the same, on the
  subsequences (and videos) of the validation persons, the split the trainer selects models on: the split a rule
  is chosen on (src/early_analysis.py picks it), while the test numbers are read once.

Speed: all of a recurrent model's streams of a group of videos step together, a batch of streams per step, and
the encoder runs once per frame a group needs, for every stream and rule (the streams step on its features: a
view of the model whose encoder hands them through, :func:`on_features`); a clip's t-prefix answers all come
from one pass over it. R(2+1)D runs one window per answer that is read (every step of a clip, ten steps of a
subsequence), in batches.
"""
from __future__ import annotations

import copy
import itertools
import logging
import time
from dataclasses import dataclass

import torch
import torch.nn as nn
from torchvision.transforms import v2

from src.data.dataset import VideoClipDataset
from src.nets.classifier import ActionClassifier
from src.nets.streaming import DEFAULT_RULE, DEFAULT_STATES, RULES, StreamingClassifier
from src.training.device import autocast

logger = logging.getLogger(__name__)

PERCENTS = tuple(range(10, 101, 10))
"""The shares of a subsequence after which its answer is read, in %."""
ENCODER_BATCH = 256  # frames per encoder pass


@dataclass
class Streams:
    """Streams over the test videos: stream i plays the frames ``frames[i]`` (int64 (L_i,), indices into the
    frames of video ``video[i]``), one per step; its label is that video's."""

    video: list[int]
    frames: list[torch.Tensor]

    def lengths(self) -> torch.Tensor:
        """int64 (N,): the steps of every stream."""
        return torch.tensor([len(frames) for frames in self.frames], dtype=torch.int64)


def clip_streams(test_set: VideoClipDataset) -> Streams:
    """The test clips in dataset order, each a stream of its ``max_frames`` frames (the test pass's frames,
    padding included: :meth:`ClipTable.frame_indices`)."""
    video, frames = test_set.clip_table.frame_indices(torch.arange(len(test_set)))
    return Streams(video.tolist(), list(frames))


def subsequence_streams(test_set: VideoClipDataset) -> Streams:
    """Every subsequence the test clips come from (:attr:`VideoClipDataset.segments`), every ``slicing_step``-th
    frame from its first."""
    step = test_set.sampler.step
    pairs = [(v, torch.arange(start, end, step)) for v, segments in enumerate(test_set.segments)
             for start, end in segments]
    return Streams([v for v, _ in pairs], [frames for _, frames in pairs])


def video_streams(test_set: VideoClipDataset) -> Streams:
    """Every test video whole, every ``slicing_step``-th frame from frame 0."""
    step = test_set.sampler.step
    return Streams(list(range(len(test_set.videos))),
                   [torch.arange(0, len(frames), step) for frames in test_set.video_frames])


def fraction_steps(lengths: torch.Tensor, percents=PERCENTS) -> torch.Tensor:
    """int64 (N, P): after how many steps of a stream of L steps (``lengths`` (N,)) p % of it is seen:
    ``ceil(p * L / 100)``, at least 1 (integer arithmetic: no float rounding)."""
    percents = torch.tensor(percents, dtype=torch.int64)
    return ((lengths[:, None] * percents + 99) // 100).clamp(min=1)


# ------------------------------------------------------------------ the recurrent models: streams on features

class _Precomputed(nn.Module):
    """The encoder of :func:`on_features`' view: the 'frame' stepped is the encoder's output, computed before;
    (B, E, 1, 1) -> (B, E) for a flat encoder, (B, E, h, w) unchanged for a spatial one."""

    def __init__(self, flat: bool):
        super().__init__()
        self.flat = flat

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features.flatten(1) if self.flat else features


def on_features(model: ActionClassifier, feature_shape: tuple[int, ...]) -> ActionClassifier:
    """A view of ``model`` (its recurrent module, head and weights, shared, not copied) whose encoder hands
    precomputed features through: a :class:`StreamingClassifier` of it steps on ``model.encoder(frame)``
    given as (B, E, 1, 1) (a flat encoder's (B, E); ``feature_shape`` (E,)) or (B, E, h, w) (a spatial one's;
    ``feature_shape`` (E, h, w)), and answers as on the frames, with the encoder run once for every stream."""
    view = copy.copy(model)
    object.__setattr__(view, "_modules", {**model._modules, "encoder": _Precomputed(len(feature_shape) == 1)})
    view.in_channels = feature_shape[0]
    return view


def _frames_float(frames: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 (or float) frames (N, C, H, W) -> float32 in [0, 1] on ``device``, as the dataset gives them."""
    return v2.functional.to_dtype(frames.to(device), torch.float32, scale=True)


@torch.inference_mode()
def _group_features(model: ActionClassifier, test_set: VideoClipDataset, videos: list[int],
                    needed: dict[int, torch.Tensor], device: torch.device, precision: str) -> dict:
    """``{video: (frame indices (K,) sorted, features (K, E) or (K, E, h, w) float32)}`` of the frames each
    video of ``videos`` needs (``needed[video]``), the encoder run over them in batches of :data:`ENCODER_BATCH`."""
    indices = {v: torch.unique(needed[v]) for v in videos}
    frames = torch.cat([test_set.video_frames[v][indices[v]] for v in videos])
    features = []
    for chunk in frames.split(ENCODER_BATCH):
        with autocast(device, precision):
            features.append(model.encoder(_frames_float(chunk, device)).float())
    features = torch.cat(features).split([len(indices[v]) for v in videos])
    return {v: (indices[v], f) for v, f in zip(videos, features)}


def _stream_inputs(streams: Streams, rows: list[int], features: dict) -> torch.Tensor:
    """(B, L_max, E, 1, 1) or (B, L_max, E, h, w): the features of streams ``rows``, step by step, zeros after a
    stream's end (their answers are not read: a stream's answer at a step depends on no later step)."""
    parts = []
    for i in rows:
        indices, video_features = features[streams.video[i]]
        parts.append(video_features[torch.searchsorted(indices, streams.frames[i].to(indices.device))])
    inputs = nn.utils.rnn.pad_sequence(parts, batch_first=True)
    return inputs[..., None, None] if inputs.dim() == 3 else inputs


@torch.inference_mode()
def _step_predictions(stream: StreamingClassifier, inputs: torch.Tensor) -> torch.Tensor:
    """The class the stream names after every step: inputs (B, L, ...) -> int64 (B, L) on the CPU. The steps run
    in float32 whatever the test precision, at which the encoder ran (its features are float32, and the cells'
    state updates, e.g. ``lerp``, take one dtype: under bfloat16 autocast OwnGRU's failed)."""
    stream.reset()
    answers = []
    for t in range(inputs.shape[1]):
        answers.append(stream.step(inputs[:, t]).argmax(1))
    return torch.stack(answers, 1).cpu()


def recurrent_predictions(model: ActionClassifier, test_set: VideoClipDataset, streams: dict[str, Streams],
                          plays: dict[str, tuple[str, ...]], device: torch.device, precision: str = "float32",
                          videos_per_group: int = 32) -> dict[tuple[str, str], list[torch.Tensor]]:
    """What a recurrent model's streams name at every step: ``{(kind, rule): [int64 (L_i,) per stream of
    streams[kind]]}``, for every rule of ``plays[kind]`` (its defaults, :class:`StreamingClassifier`). The
    videos go in groups of ``videos_per_group``: the encoder runs once per frame a group needs
    (:func:`_group_features`), then each kind's streams of the group step together under each rule."""
    max_frames = test_set.max_frames
    by_video = {kind: {} for kind in streams}
    for kind, kind_streams in streams.items():
        for i, v in enumerate(kind_streams.video):
            by_video[kind].setdefault(v, []).append(i)
    answers = {(kind, rule): [None] * len(streams[kind].video) for kind in plays for rule in plays[kind]}
    rules: dict[str, StreamingClassifier] = {}
    all_videos = list(range(len(test_set.videos)))
    for first in range(0, len(all_videos), videos_per_group):
        videos = all_videos[first:first + videos_per_group]
        needed = {v: torch.cat([streams[kind].frames[i] for kind in plays for i in by_video[kind].get(v, [])])
                  for v in videos}
        features = _group_features(model, test_set, videos, needed, device, precision)
        if not rules:
            view = on_features(model, tuple(next(iter(features.values()))[1].shape[1:]))
            rules = {rule: StreamingClassifier(view, max_frames, rule=rule) for rule in RULES}
        for kind, kind_rules in plays.items():
            rows = [i for v in videos for i in by_video[kind].get(v, [])]
            if not rows:
                continue
            inputs = _stream_inputs(streams[kind], rows, features)
            for rule in kind_rules:
                predicted = _step_predictions(rules[rule], inputs)
                for row, i in enumerate(rows):
                    answers[kind, rule][i] = predicted[row, :len(streams[kind].frames[i])]
    return answers


# ------------------------------------------------------------------ clip models: a window per answer read

def window_clip(frames: torch.Tensor, steps: int, window: int, pad: bool = False) -> torch.Tensor:
    """The clip :class:`src.nets.streaming.WindowedClassifier` answers on after ``steps`` frames of a stream of
    ``frames`` (L, C, H, W): the last ``min(steps, window)`` of its first ``steps`` -> (min(steps, window), C, H, W),
    or with ``pad`` (``WindowedClassifier(pad=True)``) padded to ``window`` frames by repeating the last."""
    clip = frames[max(0, steps - window):steps]
    missing = window - len(clip)
    return torch.cat([clip, clip[-1:].expand(missing, *clip.shape[1:])]) if pad and missing > 0 else clip


@torch.inference_mode()
def windowed_predictions(model: nn.Module, test_set: VideoClipDataset, streams: Streams, steps: list[torch.Tensor],
                         device: torch.device, precision: str = "float32", batch_size: int = 32,
                         pad: bool = False) -> list[torch.Tensor]:
    """What a clip model's stream (its window recomputed, :func:`window_clip`) names after ``steps[i]`` (int64
    (K_i,), 1..L_i) steps of stream i: a list of int64 (K_i,), one window per answer, up to ``batch_size`` windows
    of one length at once."""
    model.eval()
    window = test_set.max_frames
    requests = [(i, int(n)) for i, stream_steps in enumerate(steps) for n in stream_steps]
    length = [window if pad else min(n, window) for _, n in requests]
    named = torch.zeros(len(requests), dtype=torch.int64)
    for _, same_length in itertools.groupby(sorted(range(len(requests)), key=length.__getitem__), length.__getitem__):
        same_length = list(same_length)
        for first in range(0, len(same_length), batch_size):
            chunk = same_length[first:first + batch_size]
            clips = torch.stack([window_clip(test_set.video_frames[streams.video[requests[k][0]]]
                                             [streams.frames[requests[k][0]]], requests[k][1], window, pad)
                                 for k in chunk])                                     # (b, T, C, H, W)
            with autocast(device, precision):
                logits = model(_frames_float(clips.flatten(0, 1), device).unflatten(0, clips.shape[:2]))
            named[chunk] = logits.argmax(1).cpu()
    return list(named.split([len(stream_steps) for stream_steps in steps]))


# ------------------------------------------------------------------ the records

def _right(answers: list[torch.Tensor], streams: Streams, labels: list[int]) -> list[torch.Tensor]:
    """Per stream, bool (K_i,): which of its answers name its video's label."""
    return [named == labels[v] for named, v in zip(answers, streams.video)]


def rule_scores(right: list[torch.Tensor]) -> dict[str, float]:
    """``{'final': share of streams right after their last step, 'per_step': mean over streams of the share of
    their steps right}`` of ``right`` (bool (L_i,) per stream, every step)."""
    return {"final": torch.stack([r[-1] for r in right]).float().mean().item(),
            "per_step": torch.stack([r.float().mean() for r in right]).mean().item()}


def state_rule_records(model: ActionClassifier, dataset: VideoClipDataset, device: torch.device,
                       precision: str = "float32", whole_videos: bool = False) -> dict:
    """Every state rule of :data:`RULES` on the whole subsequences of ``dataset`` (and with ``whole_videos`` on
    its whole videos), a recurrent model's streams: ``{'subsequences': {rule: rule_scores}, 'num_subsequences'}``
    (plus ``'videos'``, ``'num_videos'``), as ``state_rules`` holds them for the test split."""
    streams = {"subsequences": subsequence_streams(dataset), **({"videos": video_streams(dataset)}
                                                                  if whole_videos else {})}
    answers = recurrent_predictions(model.eval(), dataset, streams, {kind: RULES for kind in streams}, device,
                                    precision)
    return _rule_records(answers, streams, dataset)


def _rule_records(answers: dict, streams: dict[str, Streams], dataset: VideoClipDataset) -> dict:
    """The ``state_rules`` record of the rules' ``answers`` (:func:`recurrent_predictions`) on ``streams``."""
    kinds = [kind for kind in streams if kind != "clips"]
    records = {kind: {rule: rule_scores(_right(answers[kind, rule], streams[kind], dataset.labels))
                      for rule in RULES} for kind in kinds}
    records["num_subsequences"] = len(streams["subsequences"].video)
    if "videos" in kinds:
        records["num_videos"] = len(dataset.videos)
    return records


def early_recognition(model: nn.Module, test_set: VideoClipDataset, device: torch.device, precision: str = "float32",
                      batch_size: int = 32, whole_videos: bool = False,
                      val_set: VideoClipDataset | None = None) -> dict:
    """The early-recognition records of results.json (module docstring), of ``model`` on its test set
    (fixed clips, as :func:`src.training.evaluation.make_test_set` makes it):

    ``{'early_recognition': {'rule', 'states' (None for a clip model), 'frame_step', 'steps' [1..max_frames],
    'clip_accuracy' [max_frames], 'clips', 'percents' [10..100], 'subsequence_accuracy' [10], 'subsequences',
    'seconds'}, 'state_rules': {'subsequences': {rule: rule_scores}, 'num_subsequences'} or None (a clip model)}``;
    with ``whole_videos`` also ``'videos': {rule: rule_scores}, 'num_videos'`` in ``state_rules``: every test video
    whole, which costs about as much again (the videos are longer than their subsequences; off in src.evaluate).
    With ``val_set`` (the validation split, made as the test set is: :func:`src.training.evaluation.make_val_set`)
    ``state_rules`` also holds ``'validation'``: the same record on its subsequences (and videos)
    (:func:`state_rule_records`), the numbers a rule is chosen on. Accuracies are shares in [0, 1]; ``precision``
    is the test pass's; ``batch_size``: windows per forward of a clip model."""
    start = time.perf_counter()
    labels, max_frames = test_set.labels, test_set.max_frames
    clips, subsequences = clip_streams(test_set), subsequence_streams(test_set)
    at = fraction_steps(subsequences.lengths())                                    # (S, 10)
    recurrent = isinstance(model, ActionClassifier)
    if recurrent:
        streams = {"clips": clips, "subsequences": subsequences, **({"videos": video_streams(test_set)}
                                                                     if whole_videos else {})}
        plays = {"clips": ("carry",), **{kind: RULES for kind in streams if kind != "clips"}}
        answers = recurrent_predictions(model.eval(), test_set, streams, plays, device, precision)
        clip_right = _right(answers["clips", "carry"], clips, labels)
        sub_right = [r[at[i] - 1] for i, r in enumerate(_right(answers["subsequences", DEFAULT_RULE], subsequences,
                                                                 labels))]
        state_rules = _rule_records(answers, streams, test_set)
        if val_set is not None:
            state_rules["validation"] = state_rule_records(model, val_set, device, precision, whole_videos)
    else:
        every = [torch.arange(1, max_frames + 1)] * len(clips.video)
        clip_right = _right(windowed_predictions(model, test_set, clips, every, device, precision, batch_size),
                            clips, labels)
        sub_right = _right(windowed_predictions(model, test_set, subsequences, list(at), device, precision,
                                                batch_size), subsequences, labels)
        state_rules = None
    seconds = time.perf_counter() - start
    logger.info("early recognition: %d clips, %d subsequences%s in %.1f s", len(clips.video), len(subsequences.video),
                f" (and {state_rules['validation']['num_subsequences']} validation subsequences)"
                if state_rules and "validation" in state_rules else "", seconds)
    return {"early_recognition": {
        "rule": DEFAULT_RULE if recurrent else "recompute window, unpadded",
        "states": DEFAULT_STATES if recurrent and DEFAULT_RULE == "window" else None,
        "frame_step": test_set.sampler.step, "steps": list(range(1, max_frames + 1)),
        "clip_accuracy": torch.stack(clip_right).float().mean(0).tolist(), "clips": len(clips.video),
        "percents": list(PERCENTS), "subsequence_accuracy": torch.stack(sub_right).float().mean(0).tolist(),
        "subsequences": len(subsequences.video), "seconds": round(seconds, 2)},
        "state_rules": state_rules}
