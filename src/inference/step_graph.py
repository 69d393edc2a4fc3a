"""A recurrent classifier's one streaming step as a function of explicit tensors (for ONNX), and the state
rule's bookkeeping around it in Python (issue 32, section 1: "exported ONNX models stream too").

:class:`StreamStep` is the arithmetic of one :meth:`src.nets.streaming.StreamingClassifier.step` with every
piece of state an input and an output::

    logits (R, classes), window (R, H, 4), total (R, H), *state  =  step(frame (B, C, S, S), rows (R,) int64,
                                                                    window, total, seen (R, 1), count (R, 1), *state)

R = copies x B rows: row r is copy r // B of stream r % B (``rows`` = ``arange(R) % B`` picks the encoder's
features of its frame: the encoder runs once per frame for all copies). ``window`` holds the hidden states
h_{n-3}, h_{n-2}, h_{n-1} and the zero pad, ``total`` the sum of the final GELU outputs of the temporal head,
``seen`` is 1 where a copy had seen a frame before this one (its head position n-1 is real), ``count`` the frames
each copy has seen with this one; ``state`` the recurrent state of :func:`src.nets.streaming.zero_state`.

:class:`GraphStream` keeps those tensors between steps and applies the rule (``carry``, ``reset``, ``window``
with staggered copies: which rows are zeroed before a step, which copy answers), exactly as StreamingClassifier
does; its ``step_fn`` is :class:`StreamStep` in torch, or an onnxruntime session of its export
(:func:`src.inference.export.export_stream_onnx`). Both give StreamingClassifier's answers
(tests/test_stream_predict.py).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from src.nets.classifier import ActionClassifier
from src.nets.streaming import DEFAULT_RULE, copies_due, recurrent_step, rule_schedule, zero_state

STEP_INPUTS = ("frame", "rows", "window", "total", "seen", "count")  # then state0, state1, ...
STEP_OUTPUTS = ("logits", "window_out", "total_out")               # then state0_out, ...


class StreamStep(nn.Module):
    """One streaming step of an ActionClassifier with its state explicit (see the module docstring)."""

    def __init__(self, model: ActionClassifier):
        super().__init__()
        self.model = model.eval()

    def forward(self, frame, rows, window, total, seen, count, *state):
        model = self.model
        features = model.encoder(frame).index_select(0, rows)                    # (R, E) or (R, E, h, w)
        hidden, new_state = recurrent_step(model.rnn, features, list(state))   # (R, H)
        window = torch.cat([window[:, :, 1:3], hidden.unsqueeze(2), torch.zeros_like(window[:, :, :1])], dim=2)
        conv, gelu = model.temporal_conv[0], model.temporal_conv[1]
        weight = conv.weight.flatten(1)                                         # (H, 3H): the Conv1d at one place
        final = gelu(F.linear(window[:, :, 0:3].flatten(1), weight, conv.bias))     # position n-1: now final
        boundary = gelu(F.linear(window[:, :, 1:4].flatten(1), weight, conv.bias))  # position n, zero right pad
        total = total + final * seen
        logits = model.fc(model.dropout((total + boundary) / count))
        return (logits, window, total, *new_state)


def step_state_shapes(model: ActionClassifier, channels: int, img_size: int) -> list[tuple[int, ...]]:
    """The shape of one row of each tensor the step carries: window (H, 4), total (H,), then the recurrent
    state's ((H,) or (H, h, w) for the ConvLSTM)."""
    with torch.inference_mode():
        features = model.encoder(torch.zeros(1, channels, img_size, img_size))
    hidden = model.fc.in_features
    return [(hidden, 4), (hidden,), *(tuple(t.shape[1:]) for t in zero_state(model.rnn, features))]


def step_example(model: ActionClassifier, channels: int, img_size: int, batch: int = 2, copies: int = 2) -> tuple:
    """Inputs of :class:`StreamStep` for tracing: ``batch`` frames, ``copies`` copies of the state."""
    rows = batch * copies
    carried = [torch.zeros(rows, *shape) for shape in step_state_shapes(model, channels, img_size)]
    return (torch.rand(batch, channels, img_size, img_size), torch.arange(rows) % batch, carried[0], carried[1],
            torch.ones(rows, 1), torch.ones(rows, 1), *carried[2:])


def torch_step_fn(model: ActionClassifier) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """:class:`StreamStep` of ``model`` (CPU) as a ``step_fn`` of :class:`GraphStream`: numpy in, numpy out."""
    step = StreamStep(model)

    @torch.inference_mode()
    def step_fn(inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [t.numpy() for t in step(*map(torch.from_numpy, inputs))]
    return step_fn


class GraphStream:
    """StreamingClassifier's rule around a ``step_fn`` with explicit state (see the module docstring).

    Args:
        step_fn: the inputs of :data:`STEP_INPUTS` then the states, numpy arrays -> the outputs of
            :data:`STEP_OUTPUTS` then the new states.
        row_shapes: one row's shape of window, total and each state (:func:`step_state_shapes`).
        max_frames, rule, every, states: as :class:`~src.nets.streaming.StreamingClassifier`.

    ``step(frame (B, C, H, W) float in [0, 1]) -> logits (B, classes)`` (torch tensors); :attr:`answer_frames`.
    """

    def __init__(self, step_fn: Callable, row_shapes: Sequence[tuple[int, ...]], max_frames: int,
                 rule: str = DEFAULT_RULE, every: int | None = None, states: int | None = None):
        every, states, self.offsets = rule_schedule(rule, max_frames, every, states)
        self.step_fn, self.row_shapes = step_fn, [tuple(s) for s in row_shapes]
        self.max_frames, self.rule, self.every, self.states = max_frames, rule, every, states
        self.reset()

    def reset(self) -> None:
        """Forget the stream."""
        self.frames_seen = 0
        self.answer_frames = 0
        self._counts = [0] * self.states
        self._batch: int | None = None
        self._carried: list[np.ndarray] = []  # window, total, *state: (states*B, ...) float32 each

    def _reset_due_copies(self) -> None:
        for k in copies_due(self.rule, self.frames_seen, self.offsets, self.every):
            for array in self._carried:
                array[k * self._batch:(k + 1) * self._batch] = 0
            self._counts[k] = 0

    def step(self, frame: torch.Tensor) -> torch.Tensor:
        """frame (B, C, H, W) float in [0, 1] -> logits (B, classes) of the copy that has seen the most frames."""
        batch = frame.shape[0]
        if self._batch is None:
            self._batch = batch
            self._carried = [np.zeros((self.states * batch, *shape), np.float32) for shape in self.row_shapes]
        elif batch != self._batch:
            raise ValueError(f"GraphStream.step: a frame batch of {batch} in a stream of {self._batch}; "
                             f"call reset() before changing the batch")
        self._reset_due_copies()
        seen = np.repeat(np.array([count > 0 for count in self._counts], np.float32), batch)[:, None]
        self._counts = [count + 1 for count in self._counts]
        count = np.repeat(np.array(self._counts, np.float32), batch)[:, None]
        rows = np.arange(self.states * batch, dtype=np.int64) % batch
        window, total, *state = self._carried
        logits, *self._carried = self.step_fn([np.ascontiguousarray(frame.numpy(), np.float32), rows, window, total,
                                               seen, count, *state])
        oldest = max(range(self.states), key=lambda k: (self._counts[k], -k))
        self.answer_frames = self._counts[oldest]
        self.frames_seen += 1
        return torch.from_numpy(np.array(logits[oldest * batch:(oldest + 1) * batch]))
