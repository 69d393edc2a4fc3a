"""Recognition as the video arrives: one frame in, one answer out (issue 32).

Two wrappers with one API, ``reset()`` and ``step(frame (B, C, H, W) float in [0, 1]) -> logits
(B, num_classes)``, both run under ``torch.inference_mode`` and put their model in eval mode:

* :class:`StreamingClassifier` for the recurrent :class:`~src.nets.classifier.ActionClassifier`:
  each step encodes the ONE new frame, advances the recurrent state by one step (the same weights
  and equations as the clip forward, for every ``rnn_type``: :func:`recurrent_step`) and updates the
  temporal head incrementally, so a step costs one encoder pass plus one cell step whatever the
  stream's length, and its memory is constant.
* :class:`WindowedClassifier` for any clip model (R(2+1)D; the recurrent model as a contender): it
  keeps the last ``window`` frames (a bounded deque) and runs the model on them at every step.

Exactness. The head is ``Conv1d(hidden, hidden, 3, padding=1)`` -> GELU -> mean over time -> dropout
-> fc. Its output at position p reads hidden states p-1, p, p+1 (zeros beyond the clip), so after t
frames positions 0..t-2 are final and position t-1 still sees the zero right pad. The stream keeps the
sum of the final GELU outputs, and per step adds the one that became final (position t-2) to it and
answers ``fc((sum + GELU(y_{t-1} with the zero pad)) / t)``. After t frames with no reset in between
the answer equals ``model(clip of those t frames)`` up to float32 rounding (tests/test_streaming.py).

The state rule, for streams longer than a training clip (``max_frames`` frames; the model never saw
more in training), ``rule=``:

* ``'carry'``: the state and the running mean go on forever; the answer is ``model(every frame so
  far)``. Cheapest, but beyond ``max_frames`` the state is in a regime training never visited, and
  the mean over the whole stream reacts ever more slowly to a change of action.
* ``'reset'``: every ``every`` frames (default ``max_frames``) the state and the mean start again; the
  answer rests on the 1..every latest frames, so right after each reset it rests on very few.
* ``'window'`` (the default, :data:`DEFAULT_RULE`): ``states`` staggered copies of the state (default 2),
  copy k reset every ``every`` frames at frames ``k * every // states + m * every``; the answer comes from
  the copy that has seen the most frames. With 2 copies every answer after the first ``every`` frames
  rests on between ``every // 2 + 1`` and ``every`` latest frames, always inside the lengths the model
  was trained on, never on one or two frames; with ``states = every`` it is exactly the sliding window
  ``model(last every frames)``. The encoder runs once per frame for all copies (they are stacked along
  the batch), so a copy costs one more cell step and head update, a small part of a step.

Feed the stream at the model's frame rate: a model trained with ``data.slicing_step`` s saw every s-th
frame of the video, so give it every s-th frame (:func:`stream_accuracy` takes ``frame_step``).
"""
from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Protocol

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.transforms import v2

from src.nets.cells import OwnGRU, OwnLSTM, gru_recurrence_steps, lstm_recurrence_steps
from src.nets.classifier import ActionClassifier, SpatialConvLSTM, StackedCells

logger = logging.getLogger(__name__)

RULES = ("carry", "reset", "window")
"""The state rules of :class:`StreamingClassifier` for streams longer than a training clip."""
DEFAULT_RULE = "window"
DEFAULT_STATES = 2  # staggered copies of the state under the 'window' rule


class Stream(Protocol):
    """What :func:`stream_accuracy` drives: :class:`StreamingClassifier` and :class:`WindowedClassifier`."""

    def reset(self) -> None: ...

    def step(self, frame: torch.Tensor) -> torch.Tensor: ...


# ------------------------------------------------------------------ one recurrent step

def _per_layer(rnn: nn.Module) -> tuple[int, int, int]:
    """(layers, state tensors per layer (2 for an LSTM's h and c, 1 for a GRU's h), hidden size) of an
    ActionClassifier's recurrent module."""
    if isinstance(rnn, StackedCells):
        return len(rnn.cells), 2 if isinstance(rnn.cells[0], nn.LSTMCell) else 1, rnn.cells[0].hidden_size
    if isinstance(rnn, (OwnLSTM, OwnGRU)):
        return rnn.num_layers, 2 if isinstance(rnn, OwnLSTM) else 1, rnn.hidden_size
    if isinstance(rnn, SpatialConvLSTM):
        return rnn.conv_lstm.num_layers, 2, rnn.conv_lstm.hidden_channels
    raise TypeError(f"no single-step path for the recurrent module {type(rnn).__name__}; "
                    f"stream it with WindowedClassifier")


def zero_state(rnn: nn.Module, features: torch.Tensor) -> list[torch.Tensor]:
    """The recurrent state before the first frame: zeros, what ``rnn(x)`` starts from.

    features: the encoder's output for one frame, (B, E), or (B, E, h, w) for SpatialConvLSTM ->
    a list of (B, H) tensors ((B, H, h, w) for SpatialConvLSTM), per layer ``[h, c]`` (LSTMs) or ``[h]``
    (GRUs), layer after layer. Every tensor is batch-first.
    """
    layers, per_layer, hidden = _per_layer(rnn)
    shape = (features.shape[0], hidden, *features.shape[2:])
    return [features.new_zeros(shape) for _ in range(layers * per_layer)]


def recurrent_step(rnn: nn.Module, features: torch.Tensor,
                   state: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One time step of an ActionClassifier's recurrent module, with the weights and equations its
    sequence forward runs:

    * StackedCells: each nn.LSTMCell / nn.GRUCell once, layer after layer;
    * OwnLSTM / OwnGRU: each layer's input projection, then its recurrence over one step
      (:func:`src.nets.cells.lstm_recurrence_steps` / :func:`~src.nets.cells.gru_recurrence_steps`: the
      plain-ops form of :class:`~src.nets.cells.LSTMRecurrence` / ``GRURecurrence``, the cell equations);
    * SpatialConvLSTM: each ConvLSTMCell once, then the average over space.

    features (B, E), or (B, E, h, w) for SpatialConvLSTM; state: from :func:`zero_state` or the step
    before -> (hidden (B, H): the module's output ``rnn(x)[0][:, t]`` at this step, the new state).
    Dropout between layers is left out: streaming is inference (eval mode).
    """
    layers, per_layer, _ = _per_layer(rnn)
    x, new_state = features, []
    for layer in range(layers):
        layer_state = state[layer * per_layer:(layer + 1) * per_layer]
        if isinstance(rnn, StackedCells):
            cell = rnn.cells[layer]
            layer_state = list(cell(x, tuple(layer_state))) if per_layer == 2 else [cell(x, layer_state[0])]
        elif isinstance(rnn, OwnLSTM):
            weight_ih, weight_hh, bias_ih, bias_hh = rnn.layer_parameters(layer)
            x_proj = F.linear(x, weight_ih, bias_ih + bias_hh).unsqueeze(0)             # (1, B, 4H)
            hs, c = lstm_recurrence_steps(x_proj, weight_hh, *layer_state)
            layer_state = [hs[0], c]
        elif isinstance(rnn, OwnGRU):
            weight_ih, weight_hh, bias_ih, bias_hh = rnn.layer_parameters(layer)
            x_proj = F.linear(x, weight_ih, bias_ih).unsqueeze(0)                       # (1, B, 3H)
            layer_state = [gru_recurrence_steps(x_proj, weight_hh, bias_hh, layer_state[0])[0]]
        else:  # SpatialConvLSTM
            layer_state = list(rnn.conv_lstm.cells[layer](x, tuple(layer_state)))      # (B, Ch, h, w) each
        x = layer_state[0]
        new_state += layer_state
    if isinstance(rnn, (OwnLSTM, OwnGRU)) and rnn.fc is not None:
        x = rnn.fc(x)
    if isinstance(rnn, SpatialConvLSTM):
        x = x.mean(dim=(-2, -1))                                                        # (B, Ch)
    return x, new_state


def _check_frame(frame: torch.Tensor, channels: int, name: str) -> None:
    """One-line ValueError unless ``frame`` is (B, channels, H, W)."""
    if frame.dim() != 4 or frame.shape[1] != channels:
        raise ValueError(f"{name}.step expects one frame (B, C, H, W) with C = {channels}; "
                         f"got shape {tuple(frame.shape)}")


# ------------------------------------------------------------------ the streaming classifier

def rule_schedule(rule: str, max_frames: int, every: int | None = None,
                  states: int | None = None) -> tuple[int, int, list[int]]:
    """The checked ``(every, states, offsets)`` of a state rule: ``offsets[k]`` is the frame at which copy k
    first resets (then every ``every`` frames). Shared by :class:`StreamingClassifier` and the ONNX step's
    stream (src/inference/step_graph.py), so that both follow one schedule."""
    if rule not in RULES:
        raise ValueError(f"unknown rule {rule!r}: choose one of {', '.join(RULES)}")
    every = max_frames if every is None else every
    states = (DEFAULT_STATES if rule == "window" else 1) if states is None else states
    if max_frames < 1 or every < 1:
        raise ValueError(f"max_frames and every must be >= 1, got {max_frames} and {every}")
    if not 1 <= states <= (every if rule == "window" else 1):
        allowed = f"1..{every} (every)" if rule == "window" else "1"
        raise ValueError(f"states must be {allowed} under rule {rule!r}, got {states}")
    return every, states, [k * every // states for k in range(states)]


def copies_due(rule: str, frames_seen: int, offsets: list[int], every: int) -> list[int]:
    """The copies whose reset falls before frame ``frames_seen`` (none under 'carry', none at frame 0)."""
    if rule == "carry" or frames_seen == 0:
        return []
    return [k for k, offset in enumerate(offsets) if frames_seen >= offset and (frames_seen - offset) % every == 0]


class StreamingClassifier:
    """A recurrent ActionClassifier fed one frame at a time (see the module docstring for the rules).

    Args:
        model: an :class:`~src.nets.classifier.ActionClassifier` (any encoder and ``rnn_type``); it is
            put in eval mode, and its weights are used as they are (not copied).
        max_frames: frames per training clip (the checkpoint's ``config["data"]["max_frames"]``).
        rule: ``'carry'``, ``'reset'`` or ``'window'`` (:data:`RULES`; default :data:`DEFAULT_RULE`).
        every: frames between two resets of one copy of the state (``'reset'``, ``'window'``); default
            ``max_frames``.
        states: staggered copies of the state under ``'window'``, 1..``every`` (default 2; ``every``
            gives the exact sliding window). Must be 1 for the other rules.

    ``step(frame (B, C, H, W) float in [0, 1]) -> logits (B, num_classes)``: the answer after this frame.
    The batch must stay the same until :meth:`reset`. :attr:`answer_frames` says how many of the latest
    frames the last answer rests on: it equals ``model(last answer_frames frames)``.
    Memory: a fixed set of tensors (:meth:`state_tensors`), whatever the stream's length.
    """

    def __init__(self, model: ActionClassifier, max_frames: int, rule: str = DEFAULT_RULE, every: int | None = None,
                 states: int | None = None):
        if not isinstance(model, ActionClassifier):
            raise TypeError(f"StreamingClassifier takes a recurrent ActionClassifier, got {type(model).__name__}; "
                            f"stream a clip model with WindowedClassifier(model, window)")
        conv = model.temporal_conv[0]
        if conv.kernel_size != (3,) or conv.padding != (1,) or conv.stride != (1,) or conv.dilation != (1,):
            raise ValueError(f"StreamingClassifier expects the temporal head Conv1d(kernel_size=3, padding=1); "
                             f"got {conv}")
        every, states, offsets = rule_schedule(rule, max_frames, every, states)
        _per_layer(model.rnn)  # a TypeError now, not at the first frame, for a module without a step
        self.model = model.eval()
        self.max_frames, self.rule, self.every, self.states = max_frames, rule, every, states
        self.offsets = offsets  # the frame at which copy k first resets
        self.reset()

    def reset(self) -> None:
        """Forget the stream: the next frame is frame 0 of a new one."""
        self.frames_seen = 0            # frames stepped since the reset
        self.answer_frames = 0          # how many of the latest frames the last answer rests on
        self._counts = [0] * self.states  # frames each copy has seen since its last reset
        self._batch: int | None = None
        self._state: list[torch.Tensor] = []      # the recurrent state of every copy, (states*B, ...) each
        self._window: torch.Tensor | None = None  # (states*B, H, 4): h_{n-3}, h_{n-2}, h_{n-1}, the zero pad
        self._sum: torch.Tensor | None = None     # (states*B, H): sum of the final GELU outputs

    def state_tensors(self) -> list[torch.Tensor]:
        """Every tensor the stream holds between steps (a fixed number, of fixed sizes)."""
        return [*self._state, *(t for t in (self._window, self._sum) if t is not None)]

    def _start(self, features: torch.Tensor) -> None:
        """Allocate the zero state of all copies for the batch of ``features`` (B, E[, h, w])."""
        self._batch = features.shape[0]
        stacked = features.new_zeros((self.states * self._batch, *features.shape[1:]))
        self._state = zero_state(self.model.rnn, stacked)
        hidden = self.model.fc.in_features
        self._window = features.new_zeros(self.states * self._batch, hidden, 4)
        self._sum = features.new_zeros(self.states * self._batch, hidden)

    def _reset_due_copies(self) -> None:
        """Before frame ``frames_seen``: start again the copies whose reset falls on it (none under 'carry')."""
        for k in copies_due(self.rule, self.frames_seen, self.offsets, self.every):
            rows = slice(k * self._batch, (k + 1) * self._batch)
            for tensor in self.state_tensors():
                tensor[rows] = 0
            self._counts[k] = 0

    @torch.inference_mode()
    def step(self, frame: torch.Tensor) -> torch.Tensor:
        """frame (B, C, H, W) float in [0, 1] -> logits (B, num_classes) after it (see the class docstring)."""
        _check_frame(frame, self.model.in_channels, type(self).__name__)
        features = self.model.encoder(frame)                                   # (B, E) or (B, E, h, w)
        if self._batch is None:
            self._start(features)
        elif features.shape[0] != self._batch:
            raise ValueError(f"StreamingClassifier.step: a frame batch of {features.shape[0]} in a stream of "
                             f"{self._batch}; call reset() before changing the batch")
        self._reset_due_copies()
        if self.states > 1:
            features = features.repeat(self.states, *([1] * (features.dim() - 1)))  # copy k: rows k*B..(k+1)*B
        hidden, self._state = recurrent_step(self.model.rnn, features, self._state)  # (states*B, H)
        logits = self._head_step(hidden)
        self.frames_seen += 1
        return logits

    def _head_step(self, hidden: torch.Tensor) -> torch.Tensor:
        """The temporal head after the new hidden states (states*B, H) -> logits (B, num_classes) of the
        copy that has seen the most frames."""
        window = self._window
        window[:, :, 0].copy_(window[:, :, 1])
        window[:, :, 1].copy_(window[:, :, 2])
        window[:, :, 2].copy_(hidden)
        conv, gelu = self.model.temporal_conv[0], self.model.temporal_conv[1]
        # The Conv1d at one position is a Linear of its 3 inputs: weight (H, H, 3) -> (H, 3H), a view, matching
        # window[:, :, k:k+3] (B', H, 3) flattened; 5x faster than F.conv1d on so short a sequence.
        weight = conv.weight.flatten(1)
        final = gelu(F.linear(window[:, :, 0:3].flatten(1), weight, conv.bias))     # position n-1: now final
        boundary = gelu(F.linear(window[:, :, 1:4].flatten(1), weight, conv.bias))  # position n, zero right pad
        if all(self._counts):                        # position n-1 exists in every copy
            self._sum += final
        elif any(self._counts):                      # not in the copies that were just reset
            seen = torch.tensor(self._counts, device=hidden.device).repeat_interleave(self._batch) > 0
            self._sum += final * seen.unsqueeze(1)
        self._counts = [count + 1 for count in self._counts]
        oldest = max(range(self.states), key=lambda k: (self._counts[k], -k))
        rows = slice(oldest * self._batch, (oldest + 1) * self._batch)
        self.answer_frames = self._counts[oldest]
        pooled = (self._sum[rows] + boundary[rows]) / self.answer_frames     # (B, H): the mean over time
        return self.model.fc(self.model.dropout(pooled))                     # (B, num_classes)


# ------------------------------------------------------------------ recomputing a window

class WindowedClassifier:
    """Any clip model (R(2+1)D, or the ActionClassifier as a contender) answering on the last ``window``
    frames at every step: ``step(frame (B, C, H, W) float in [0, 1]) -> model(clip (B, window, C, H, W))``
    (B, num_classes).

    Until ``window`` frames have arrived the clip is what there is, padded to ``window`` frames by
    repeating the last frame (``pad=True``, the dataset's rule for short clips: TemporalSampling), or
    left short (``pad=False``; a recurrent model takes any length). The frames are copied into a deque of
    at most ``window`` tensors: memory is constant. The model is put in eval mode.
    """

    def __init__(self, model: nn.Module, window: int, pad: bool = True):
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.model, self.window, self.pad = model.eval(), window, pad
        self.in_channels = getattr(model, "in_channels", None)
        self.reset()

    def reset(self) -> None:
        """Forget the stream."""
        self._frames: deque[torch.Tensor] = deque(maxlen=self.window)
        self.frames_seen = 0

    @property
    def answer_frames(self) -> int:
        """How many of the latest frames the last answer rests on."""
        return len(self._frames)

    def state_tensors(self) -> list[torch.Tensor]:
        """Every tensor the stream holds between steps: at most ``window`` frames."""
        return list(self._frames)

    def clip(self) -> torch.Tensor:
        """The clip the next answer is computed on: (B, window, C, H, W) (fewer frames with ``pad=False``)."""
        clip = torch.stack(list(self._frames), dim=1)
        missing = self.window - clip.shape[1]
        if self.pad and missing > 0:
            clip = torch.cat([clip, clip[:, -1:].expand(-1, missing, *clip.shape[2:])], dim=1)
        return clip

    @torch.inference_mode()
    def step(self, frame: torch.Tensor) -> torch.Tensor:
        """frame (B, C, H, W) float in [0, 1] -> logits (B, num_classes) of the model on the last window."""
        _check_frame(frame, self.in_channels if self.in_channels is not None else frame.shape[1], type(self).__name__)
        if self._frames and frame.shape != self._frames[-1].shape:
            raise ValueError(f"WindowedClassifier.step: a frame of shape {tuple(frame.shape)} in a stream of "
                             f"{tuple(self._frames[-1].shape)}; call reset() before changing it")
        self._frames.append(frame.clone())
        self.frames_seen += 1
        return self.model(self.clip())


def streaming_for(model: nn.Module, config: dict, rule: str = DEFAULT_RULE,
                  states: int | None = None) -> StreamingClassifier | WindowedClassifier:
    """The stream of a model and its experiment config (``checkpoint["config"]`` of
    :func:`src.training.checkpoint.load_model`): a :class:`StreamingClassifier` under ``rule`` for an
    ActionClassifier, a :class:`WindowedClassifier` of ``data.max_frames`` frames for a clip network."""
    max_frames = int(config["data"]["max_frames"])
    if isinstance(model, ActionClassifier):
        return StreamingClassifier(model, max_frames, rule=rule, states=states)
    return WindowedClassifier(model, max_frames)


# ------------------------------------------------------------------ accuracy of the rules

def rule_streams(model: ActionClassifier, max_frames: int) -> dict[str, Stream]:
    """The contenders of :func:`stream_accuracy` for one recurrent model: each rule at its defaults, the
    exact sliding window (``'window'`` with ``max_frames`` copies) and the recomputed window
    (:class:`WindowedClassifier`, which pads the first clips instead)."""
    return {
        "carry": StreamingClassifier(model, max_frames, rule="carry"),
        "reset": StreamingClassifier(model, max_frames, rule="reset"),
        "window": StreamingClassifier(model, max_frames, rule="window"),
        f"window, {max_frames} states": StreamingClassifier(model, max_frames, rule="window", states=max_frames),
        "recompute window": WindowedClassifier(model, max_frames),
    }


def stream_accuracy(streams: Mapping[str, Stream], videos: Iterable[tuple[torch.Tensor, int]],
                    frame_step: int = 1) -> dict[str, dict[str, float]]:
    """How well each stream recognises whole videos, frame by frame.

    Args:
        streams: name -> a stream (:func:`rule_streams`, or any object with ``reset`` and ``step``).
        videos: (frames (T, C, H, W), uint8 or float in [0, 1]; label int) per video, e.g.
            ``zip(dataset.video_frames, dataset.labels)`` of a :class:`~src.data.dataset.VideoClipDataset`
            of the test split (its frames are already at the model's img_size).
        frame_step: every ``frame_step``-th frame is fed (the model's ``data.slicing_step``).

    Returns name -> ``{"final": share of videos whose answer after their last frame is right,
    "per_frame": mean over videos of the share of their answers that are right, "videos": count}``.
    """
    if frame_step < 1:
        raise ValueError(f"frame_step must be >= 1, got {frame_step}")
    final = {name: 0 for name in streams}
    per_frame = {name: 0.0 for name in streams}
    count = 0
    for frames, label in videos:
        frames = v2.functional.to_dtype(frames[::frame_step], torch.float32, scale=True)  # (T', C, H, W)
        for name, stream in streams.items():
            stream.reset()
            right = [int(stream.step(frame.unsqueeze(0)).argmax(1)) == int(label) for frame in frames]
            final[name] += right[-1]
            per_frame[name] += sum(right) / len(right)
        count += 1
        logger.debug("video %d: %d frames streamed", count, len(frames))
    if count == 0:
        raise ValueError("stream_accuracy: no videos given")
    return {name: {"final": final[name] / count, "per_frame": per_frame[name] / count, "videos": count}
            for name in streams}
