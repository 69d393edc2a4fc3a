"""Recurrent cells written from their equations: LSTM, GRU and ConvLSTM.

Nothing here calls PyTorch's recurrent kernels. The parameters are named and laid out
like PyTorch's (torch.nn.LSTMCell, torch.nn.LSTM, torch.nn.GRUCell, torch.nn.GRU), so
``own.load_state_dict(torch_module.state_dict())`` works and gives PyTorch's numbers.

Shapes use B batch, T time steps, I input features, H hidden features, L layers,
C input channels, Ch hidden channels and S the spatial size ((H, W) or (L,)).

Speed. The single-step cells are plain autograd code, equation by equation. The
sequence modules do what the fused kernels do:

* the input projection ``W_ih x_t + b`` of all T steps is one matrix multiply, with
  the gate weights stacked; only ``W_hh h_{t-1}`` and the element-wise gate step run
  per time step;
* the ConvLSTM convolves x_t and h_{t-1} separately (the four gate kernels stacked, one
  convolution each), skips the hidden convolution while the state is zero and needs no
  gradient of a concatenated [x_t, h_{t-1}]. Its input convolution runs per step: one
  convolution over all B*T frames was measured slower on CPU (its 4Ch-channel output
  for all frames falls out of cache);
* for OwnLSTM and OwnGRU the whole recurrence of a layer is one autograd.Function
  (:class:`LSTMRecurrence`, :class:`GRURecurrence`) whose backward through time is
  written by hand, with every factor that does not depend on the recurrence computed
  for all steps at once. This replaces the many tiny autograd nodes per step.

Under ``torch.compile`` OwnLSTM and OwnGRU run the same equations as plain ops
(:func:`lstm_recurrence_steps`, :func:`gru_recurrence_steps`), which the compiler traces
whole and fuses, forward and backward, without graph breaks.

    >>> import torch
    >>> from src.nets.cells import OwnLSTM
    >>> lstm = OwnLSTM(64, 128, num_layers=2)
    >>> out, (h_n, c_n) = lstm(torch.randn(4, 10, 64))   # out (4, 10, 128), h_n (2, 4, 128)
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd.function import once_differentiable
from torch.nn.modules.lazy import LazyModuleMixin
from torch.nn.parameter import UninitializedParameter

__all__ = [
    "OwnLSTMCell", "OwnLSTM", "OwnGRUCell", "OwnGRU", "ConvLSTMCell", "OwnConvLSTM",
    "LSTMRecurrence", "GRURecurrence", "lstm_recurrence_steps", "gru_recurrence_steps",
]


# --------------------------------------------------------------------------- helpers

def _xavier_gates_(weight: torch.Tensor, num_gates: int) -> None:
    """Xavier-uniform initialisation of each gate's block of a stacked weight, in place.

    ``weight`` is (num_gates*H, fan_in[, k, ...]); each (H, fan_in[, k, ...]) block gets
    its own Xavier bound, as if the gates were separate layers.
    """
    with torch.no_grad():
        for block in weight.chunk(num_gates, dim=0):
            nn.init.xavier_uniform_(block)


def _init_biases_(bias_ih: torch.Tensor | None, bias_hh: torch.Tensor | None, forget_gate: int | None) -> None:
    """Zero the biases; with ``forget_gate`` = its index, ``bias_ih``'s forget block starts at 1."""
    with torch.no_grad():
        for bias in (bias_ih, bias_hh):
            if bias is not None:
                bias.zero_()
        if forget_gate is not None and bias_ih is not None:
            bias_ih.chunk(4)[forget_gate].fill_(1.0)


def _check_features(name: str, x: torch.Tensor, ranks: tuple[int, ...], features: int, expected: str) -> None:
    """Raise a one-line ValueError unless ``x.dim()`` is in ``ranks`` and ``x.shape[-1] == features``."""
    if x.dim() not in ranks or x.shape[-1] != features:
        raise ValueError(f"{name}: expected input of shape {expected}, got {tuple(x.shape)}")


def _check_state(name: str, what: str, tensor: torch.Tensor, shape: tuple[int, ...]) -> None:
    """Raise a one-line ValueError unless ``tensor`` has exactly ``shape``."""
    if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != tuple(shape):
        got = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise ValueError(f"{name}: expected {what} of shape {tuple(shape)}, got {got}")


# --------------------------------------------------------------------------- LSTM

class OwnLSTMCell(nn.Module):
    """One LSTM step, from the equations (Hochreiter & Schmidhuber 1997; Gers et al. 2000).

    With z_t = [h_{t-1}, x_t] and the stacked weights W = [W_ih | W_hh]::

        i_t = σ(W_i·z_t + b_i)            input gate
        f_t = σ(W_f·z_t + b_f)            forget gate
        C̃_t = tanh(W_C·z_t + b_C)         candidate ("g" in PyTorch)
        o_t = σ(W_o·z_t + b_o)            output gate
        C_t = f_t ⊙ C_{t-1} + i_t ⊙ C̃_t
        h_t = o_t ⊙ tanh(C_t)

    Parameters, laid out like torch.nn.LSTMCell (gate order i, f, g, o):
    ``weight_ih`` (4H, I), ``weight_hh`` (4H, H), ``bias_ih`` (4H,), ``bias_hh`` (4H,).
    Initialisation: Xavier-uniform per gate block; biases zero except the forget gate's
    block of ``bias_ih``, which starts at 1 so the cell remembers by default.

    Call: ``h, c = cell(x, (h, c))`` with x (B, I) and h, c (B, H); the state is optional
    (zeros).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _xavier_gates_(self.weight_ih, 4)
        _xavier_gates_(self.weight_hh, 4)
        _init_biases_(self.bias_ih, self.bias_hh, forget_gate=1)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """x (B, I), state (h, c) each (B, H) or None -> (h, c) each (B, H)."""
        name = type(self).__name__
        _check_features(name, x, (2,), self.input_size, f"(B, {self.input_size})")
        shape = (x.shape[0], self.hidden_size)
        if state is None:
            h = c = x.new_zeros(shape)
        else:
            h, c = state
            _check_state(name, "h", h, shape)
            _check_state(name, "c", c, shape)
        gates = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh, self.bias_hh)
        i, f, g, o = gates.chunk(4, dim=1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        return h, c

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias_ih is not None}"


class LSTMRecurrence(torch.autograd.Function):
    """The recurrence of one LSTM layer over T steps, with a hand-written backward.

    ``hs, c_n = LSTMRecurrence.apply(x_proj, weight_hh, h0, c0)``

    x_proj (T, B, 4H): ``W_ih x_t + b_ih + b_hh`` for all steps, gate order i, f, g, o;
    weight_hh (4H, H); h0, c0 (B, H) -> hs (T, B, H) the hidden states, c_n (B, H).

    Backward through time: with a_t the gate pre-activations and δ the gradients,
    δc_t += δh_t ⊙ o_t ⊙ (1 - tanh²C_t), then δa_t = [δc_t, δc_t, δc_t, δh_t] ⊙ M_t
    where M_t = [C̃_t, C_{t-1}, i_t, tanh C_t] ⊙ (derivative of each gate's activation)
    does not depend on the recurrence and is computed for all t at once;
    δh_{t-1} = δa_t W_hh and δC_{t-1} = δc_t ⊙ f_t. δW_hh is one matrix multiply over
    all steps at the end.

    Speed: every step writes into buffers allocated once for all T steps (``out=`` and
    in-place ops on precomputed per-step views), so the loops allocate almost nothing.
    """

    @staticmethod
    def forward(ctx, x_proj, weight_hh, h0, c0):
        T, B, four_h = x_proj.shape
        H = four_h // 4
        weight_hh_t = weight_hh.t()
        gates = x_proj.new_empty(T, B, four_h)    # the activated gates [i, f, C̃, o]: σ, σ, tanh, σ
        cs = x_proj.new_empty(T + 1, B, H)        # C_0 .. C_T
        tanh_cs = x_proj.new_empty(T, B, H)       # tanh C_1 .. tanh C_T
        hs = x_proj.new_empty(T + 1, B, H)        # h_0 .. h_T
        cs[0], hs[0] = c0, h0
        # Per-step views, made once: x_t, gates, i_t, f_t, C̃_t, o_t, C_t, tanh C_t, h_t.
        i, f, g, o = (gate.unbind(0) for gate in gates.chunk(4, dim=2))
        x_proj_t, gates_t = x_proj.unbind(0), gates.unbind(0)
        cs_t, tanh_cs_t, hs_t = cs.unbind(0), tanh_cs.unbind(0), hs.unbind(0)
        for t in range(T):
            pre = torch.addmm(x_proj_t[t], hs_t[t], weight_hh_t)
            torch.sigmoid(pre, out=gates_t[t])                   # σ of all four blocks; the g block is
            torch.tanh(pre[:, 2 * H:3 * H], out=g[t])            # overwritten by C̃_t = tanh
            torch.mul(f[t], cs_t[t], out=cs_t[t + 1])            # C_t = f_t ⊙ C_{t-1} + i_t ⊙ C̃_t
            cs_t[t + 1].addcmul_(i[t], g[t])
            torch.mul(o[t], torch.tanh(cs_t[t + 1], out=tanh_cs_t[t]), out=hs_t[t + 1])
        ctx.save_for_backward(gates, cs, tanh_cs, hs, weight_hh)
        return hs[1:], cs[T]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_hs, grad_c_n):
        gates, cs, tanh_c, hs, weight_hh = ctx.saved_tensors
        T, B, H = grad_hs.shape
        i, f, g, o = gates.chunk(4, dim=2)
        # Everything that does not depend on the recurrence, for all steps at once (few, large ops):
        # M_t = [C̃_t, C_{t-1}, i_t, tanh C_t] ⊙ [σ'(i), σ'(f), tanh'(g), σ'(o)] with σ' = σ(1 - σ), tanh' = 1 - C̃².
        one = gates.new_ones(())
        dc_from_dh = torch.addcmul(one, tanh_c, tanh_c, value=-1).mul_(o)        # o ⊙ (1 - tanh²C), (T, B, H)
        m = torch.addcmul(gates, gates, gates, value=-1)                        # σ - σ² = σ' on i, f, o
        m_i, m_f, m_g, m_o = m.chunk(4, dim=2)
        torch.addcmul(one, g, g, value=-1, out=m_g)                             # tanh' = 1 - C̃² on g
        m_i.mul_(g)
        m_f.mul_(cs[:-1])
        m_g.mul_(i)
        m_o.mul_(tanh_c)
        grad_pre = torch.empty_like(gates)                                      # δa_t, (T, B, 4H)
        # Per-step views: the i, f, g blocks (B, 3, H), which all take δc_t, and the o block, which takes δh_t.
        grad_pre_ifg_t = grad_pre.view(T, B, 4, H)[:, :, :3].unbind(0)
        m_ifg_t = m.view(T, B, 4, H)[:, :, :3].unbind(0)
        grad_pre_o_t, m_o_t = grad_pre[:, :, 3 * H:].unbind(0), m_o.unbind(0)
        grad_hs_t, grad_pre_t = grad_hs.unbind(0), grad_pre.unbind(0)
        f_t, dc_from_dh_t = f.unbind(0), dc_from_dh.unbind(0)
        grad_h = grad_hs_t[T - 1]
        grad_c = grad_c_n.clone()                                               # updated in place
        grad_c_ifg = grad_c.unsqueeze(1)                                        # (B, 1, H) view of it
        for t in reversed(range(T)):
            grad_c.addcmul_(grad_h, dc_from_dh_t[t])
            torch.mul(m_ifg_t[t], grad_c_ifg, out=grad_pre_ifg_t[t])
            torch.mul(m_o_t[t], grad_h, out=grad_pre_o_t[t])
            grad_h = torch.addmm(grad_hs_t[t - 1], grad_pre_t[t], weight_hh) if t > 0 else grad_pre_t[t] @ weight_hh
            grad_c.mul_(f_t[t])
        grad_weight_hh = grad_pre.view(T * B, 4 * H).t() @ hs[:-1].reshape(T * B, H)
        return grad_pre, grad_weight_hh, grad_h, grad_c


def lstm_recurrence_steps(x_proj: torch.Tensor, weight_hh: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor):
    """:class:`LSTMRecurrence`'s forward as plain autograd ops, step by step: what
    ``torch.compile`` traces (it cannot see into the hand-written Function's backward)
    and differentiates itself. Same arguments and results: ``hs (T, B, H), c_n (B, H)``."""
    h, c, hs = h0, c0, []
    for x_t in x_proj.unbind(0):
        i, f, g, o = torch.addmm(x_t, h, weight_hh.t()).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        hs.append(h)
    return torch.stack(hs), c


def gru_recurrence_steps(x_proj: torch.Tensor, weight_hh: torch.Tensor, bias_hh: torch.Tensor, h0: torch.Tensor):
    """:class:`GRURecurrence`'s forward as plain autograd ops, step by step (the compiled
    path, see :func:`lstm_recurrence_steps`): ``hs (T, B, H)``."""
    h, hs = h0, []
    for x_t in x_proj.unbind(0):
        x_r, x_z, x_n = x_t.chunk(3, dim=1)
        u_r, u_z, u_n = torch.addmm(bias_hh, h, weight_hh.t()).chunk(3, dim=1)
        r, z = torch.sigmoid(x_r + u_r), torch.sigmoid(x_z + u_z)
        n = torch.tanh(x_n + r * u_n)
        h = torch.lerp(n, h, z)
        hs.append(h)
    return torch.stack(hs)


class _StackedRecurrentLayers(nn.Module):
    """What OwnLSTM and OwnGRU share: per-layer parameters named and laid out like
    torch.nn.LSTM/GRU's (``weight_ih_l{k}`` (G·H, I or H), ``weight_hh_l{k}`` (G·H, H),
    ``bias_ih_l{k}``, ``bias_hh_l{k}`` (G·H,) with G gates), the optional final Linear
    ``fc``, and the reshaping of x to time-major (T, B, I) and back."""

    gates: int
    forget_gate: int | None  # index of the gate block whose bias_ih starts at 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, batch_first: bool = True,
                 dropout: float = 0.0, output_size: int | None = None):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"{type(self).__name__}: num_layers must be >= 1, got {num_layers}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.batch_first, self.dropout = batch_first, dropout
        G = self.gates
        for layer in range(num_layers):
            fan_in = input_size if layer == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{layer}", nn.Parameter(torch.empty(G * hidden_size, fan_in)))
            self.register_parameter(f"weight_hh_l{layer}", nn.Parameter(torch.empty(G * hidden_size, hidden_size)))
            self.register_parameter(f"bias_ih_l{layer}", nn.Parameter(torch.empty(G * hidden_size)))
            self.register_parameter(f"bias_hh_l{layer}", nn.Parameter(torch.empty(G * hidden_size)))
        self.fc = nn.Linear(hidden_size, output_size) if output_size is not None else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in range(self.num_layers):
            weight_ih, weight_hh, bias_ih, bias_hh = self.layer_parameters(layer)
            _xavier_gates_(weight_ih, self.gates)
            _xavier_gates_(weight_hh, self.gates)
            _init_biases_(bias_ih, bias_hh, forget_gate=self.forget_gate)
        if self.fc is not None:
            self.fc.reset_parameters()

    def layer_parameters(self, layer: int) -> tuple[nn.Parameter, ...]:
        """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer."""
        return tuple(getattr(self, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def _time_major(self, x: torch.Tensor) -> torch.Tensor:
        """Check x, (B, T, I) / (T, B, I) / (B, I), and return it as (T, B, I)."""
        I = self.input_size
        sequence = "(B, T, I)" if self.batch_first else "(T, B, I)"
        _check_features(type(self).__name__, x, (2, 3), I, f"{sequence.replace('I', str(I))} or (B, {I})")
        if x.dim() == 2:
            return x.unsqueeze(0)
        return x.transpose(0, 1) if self.batch_first else x

    def _output(self, seq: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The last layer's (T, B, H) shaped back like x, through ``fc`` if there is one."""
        out = seq[0] if x.dim() == 2 else (seq.transpose(0, 1) if self.batch_first else seq)
        return self.fc(out) if self.fc is not None else out

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"batch_first={self.batch_first}, dropout={self.dropout}")


class OwnLSTM(_StackedRecurrentLayers):
    """A multi-layer LSTM with the calling convention of torch.nn.LSTM.

    ``out, (h_n, c_n) = lstm(x, state=None)``

    x: (B, T, I) when ``batch_first`` (the default), (T, B, I) otherwise, or a single
    step (B, I). state: (h_0, c_0), each (L, B, H); zeros when None.
    out: the last layer's hidden states, (B, T, H) / (T, B, H) / (B, H) like x; with
    ``output_size`` the final Linear maps them to (..., output_size).
    h_n, c_n: (L, B, H). Passing ``(h_n, c_n)`` back as ``state`` continues the sequence:
    T steps at once equal two chunks with the state carried.

    Each layer runs the equations of :class:`OwnLSTMCell`; ``dropout`` applies to the
    outputs of every layer but the last (in training), as in torch.nn.LSTM. The
    state_dict keys are torch.nn.LSTM's (``weight_ih_l0``, ``weight_hh_l0``,
    ``bias_ih_l0``, ``bias_hh_l0``, ...), plus ``fc.weight``/``fc.bias`` with
    ``output_size``. Initialisation as in :class:`OwnLSTMCell`.
    """

    gates, forget_gate = 4, 1  # gate order i, f, g, o

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        name, H, L = type(self).__name__, self.hidden_size, self.num_layers
        seq = self._time_major(x)  # (T, B, I)
        B = seq.shape[1]
        if state is None:
            h0 = c0 = seq.new_zeros(L, B, H)
        else:
            h0, c0 = state
            _check_state(name, "h_0", h0, (L, B, H))
            _check_state(name, "c_0", c0, (L, B, H))
        h_n, c_n = [], []
        for layer in range(L):
            weight_ih, weight_hh, bias_ih, bias_hh = self.layer_parameters(layer)
            if layer > 0 and self.dropout > 0:
                seq = F.dropout(seq, self.dropout, self.training)
            x_proj = F.linear(seq, weight_ih, bias_ih + bias_hh)               # (T, B, 4H), all steps at once
            # Under autocast x_proj may be float16/bfloat16: the recurrence runs in x_proj's dtype.
            dtype = x_proj.dtype
            recurrence = lstm_recurrence_steps if torch.compiler.is_compiling() else LSTMRecurrence.apply
            seq, c_last = recurrence(x_proj, weight_hh.to(dtype), h0[layer].to(dtype), c0[layer].to(dtype))
            h_n.append(seq[-1])
            c_n.append(c_last)
        return self._output(seq, x), (torch.stack(h_n), torch.stack(c_n))


# --------------------------------------------------------------------------- GRU

class OwnGRUCell(nn.Module):
    """One GRU step, from the equations (Cho et al. 2014), as torch.nn.GRUCell computes it::

        r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)          reset gate
        z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)          update gate
        n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))   candidate
        h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    Parameters, laid out like torch.nn.GRUCell (gate order r, z, n): ``weight_ih``
    (3H, I), ``weight_hh`` (3H, H), ``bias_ih`` (3H,), ``bias_hh`` (3H,).
    Initialisation: Xavier-uniform per gate block, biases zero.

    Call: ``h = cell(x, h)`` with x (B, I) and h (B, H); h is optional (zeros).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _xavier_gates_(self.weight_ih, 3)
        _xavier_gates_(self.weight_hh, 3)
        _init_biases_(self.bias_ih, self.bias_hh, forget_gate=None)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, I), h (B, H) or None -> h (B, H)."""
        name = type(self).__name__
        _check_features(name, x, (2,), self.input_size, f"(B, {self.input_size})")
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        else:
            _check_state(name, "h", h, (x.shape[0], self.hidden_size))
        x_r, x_z, x_n = F.linear(x, self.weight_ih, self.bias_ih).chunk(3, dim=1)
        h_r, h_z, h_n = F.linear(h, self.weight_hh, self.bias_hh).chunk(3, dim=1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        return (1 - z) * n + z * h

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias_ih is not None}"


class GRURecurrence(torch.autograd.Function):
    """The recurrence of one GRU layer over T steps, with a hand-written backward.

    ``hs = GRURecurrence.apply(x_proj, weight_hh, bias_hh, h0)``

    x_proj (T, B, 3H): ``W_ih x_t + b_ih`` for all steps, gate order r, z, n;
    weight_hh (3H, H); bias_hh (3H,); h0 (B, H) -> hs (T, B, H).

    Backward through time, with u_t = W_hh h_{t-1} + b_hh and δ the gradients:
    δn̂_t = δh_t ⊙ (1 - z_t)(1 - n_t²) (pre-activation of n), δẑ_t = δh_t ⊙ (h_{t-1} - n_t) z_t(1 - z_t),
    δr̂_t = δn̂_t ⊙ u_n,t r_t(1 - r_t); δx_proj_t = [δr̂, δẑ, δn̂], δu_t = [δr̂, δẑ, δn̂ ⊙ r_t],
    δh_{t-1} = δh_t ⊙ z_t + δu_t W_hh. The per-step factors are computed for all t at once.
    """

    @staticmethod
    def forward(ctx, x_proj, weight_hh, bias_hh, h0):
        T, B, three_h = x_proj.shape
        H = three_h // 3
        weight_hh_t = weight_hh.t()
        gates = x_proj.new_empty(T, B, three_h)    # r, z, n
        hidden_n = x_proj.new_empty(T, B, H)       # u_n = W_hn h_{t-1} + b_hn
        hs = x_proj.new_empty(T + 1, B, H)
        hs[0] = h0
        for t in range(T):
            u = torch.addmm(bias_hh, hs[t], weight_hh_t)
            torch.sigmoid(x_proj[t, :, :2 * H] + u[:, :2 * H], out=gates[t, :, :2 * H])
            r, z = gates[t, :, :H], gates[t, :, H:2 * H]
            hidden_n[t] = u[:, 2 * H:]
            torch.tanh(torch.addcmul(x_proj[t, :, 2 * H:], r, hidden_n[t]), out=gates[t, :, 2 * H:])
            torch.lerp(gates[t, :, 2 * H:], hs[t], z, out=hs[t + 1])
        ctx.save_for_backward(gates, hidden_n, hs, weight_hh)
        return hs[1:]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_hs):
        gates, hidden_n, hs, weight_hh = ctx.saved_tensors
        T, B, H = grad_hs.shape
        r, z, n = gates.chunk(3, dim=2)
        # Everything that does not depend on the recurrence, for all steps at once.
        dn = (1 - z) * (1 - n * n)                                                # δn̂ / δh
        m = torch.cat([dn * hidden_n * r * (1 - r), (hs[:-1] - n) * z * (1 - z), dn], dim=2)
        dn_r = dn * r                                                             # δu_n / δh
        grad_x_proj = torch.empty_like(gates)
        grad_u = torch.empty_like(gates)
        grad_h = grad_hs.new_zeros(B, H)
        for t in reversed(range(T)):
            grad_h = grad_hs[t] + grad_h
            torch.mul(torch.cat([grad_h, grad_h, grad_h], dim=1), m[t], out=grad_x_proj[t])
            grad_u[t, :, :2 * H] = grad_x_proj[t, :, :2 * H]
            torch.mul(grad_h, dn_r[t], out=grad_u[t, :, 2 * H:])
            grad_h = torch.addmm(grad_h * z[t], grad_u[t], weight_hh)
        grad_u_flat = grad_u.view(T * B, 3 * H)
        grad_weight_hh = grad_u_flat.t() @ hs[:-1].reshape(T * B, H)
        return grad_x_proj, grad_weight_hh, grad_u_flat.sum(0), grad_h


class OwnGRU(_StackedRecurrentLayers):
    """A multi-layer GRU with the calling convention of torch.nn.GRU.

    ``out, h_n = gru(x, h=None)``

    x: (B, T, I) when ``batch_first`` (the default), (T, B, I) otherwise, or a single
    step (B, I). h: (L, B, H); zeros when None. out: the last layer's hidden states,
    shaped like x with I -> H (or -> output_size through the final Linear ``fc``).
    h_n: (L, B, H); passing it back as ``h`` continues the sequence.

    Each layer runs the equations of :class:`OwnGRUCell`; ``dropout`` as in OwnLSTM.
    The state_dict keys are torch.nn.GRU's (``weight_ih_l0``, ... ``bias_hh_l0``, ...).
    """

    gates, forget_gate = 3, None  # gate order r, z, n

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None):
        name, H, L = type(self).__name__, self.hidden_size, self.num_layers
        seq = self._time_major(x)  # (T, B, I)
        B = seq.shape[1]
        if h is None:
            h = seq.new_zeros(L, B, H)
        else:
            _check_state(name, "h_0", h, (L, B, H))
        h_n = []
        for layer in range(L):
            weight_ih, weight_hh, bias_ih, bias_hh = self.layer_parameters(layer)
            if layer > 0 and self.dropout > 0:
                seq = F.dropout(seq, self.dropout, self.training)
            x_proj = F.linear(seq, weight_ih, bias_ih)                          # (T, B, 3H), all steps at once
            dtype = x_proj.dtype  # float16/bfloat16 under autocast: the recurrence runs in x_proj's dtype
            recurrence = gru_recurrence_steps if torch.compiler.is_compiling() else GRURecurrence.apply
            seq = recurrence(x_proj, weight_hh.to(dtype), bias_hh.to(dtype), h[layer].to(dtype))
            h_n.append(seq[-1])
        return self._output(seq, x), torch.stack(h_n)


# --------------------------------------------------------------------------- ConvLSTM

class ConvLSTMCell(LazyModuleMixin, nn.Module):
    """One ConvLSTM step (Shi et al., NeurIPS 2015, arXiv 1506.04214).

    The LSTM of :class:`OwnLSTMCell` with every matrix product W·[h, x] replaced by a
    convolution with 'same' padding, so h and c keep the input's spatial size S
    ((H, W) for ``spatial_dims=2``, (L,) for ``spatial_dims=1``; ∗ is convolution)::

        i_t = σ(W_xi ∗ x_t + W_hi ∗ h_{t-1} + w_ci ⊙ C_{t-1} + b_i)
        f_t = σ(W_xf ∗ x_t + W_hf ∗ h_{t-1} + w_cf ⊙ C_{t-1} + b_f)
        C̃_t = tanh(W_xc ∗ x_t + W_hc ∗ h_{t-1} + b_c)
        C_t = f_t ⊙ C_{t-1} + i_t ⊙ C̃_t
        o_t = σ(W_xo ∗ x_t + W_ho ∗ h_{t-1} + w_co ⊙ C_t + b_o)
        h_t = o_t ⊙ tanh(C_t)

    Reduction to the LSTM: with kernel_size=1 on 1x1 maps every convolution is a
    matrix product, and without peepholes the cell is exactly OwnLSTMCell with
    ``weight_ih = conv.weight_ih.view(4Ch, C)`` and ``weight_hh = conv.weight_hh.view(4Ch, Ch)``.

    Parameters (gate order i, f, g, o; the four kernels are stacked and computed in one
    convolution): ``weight_ih`` (4Ch, C, k[, k]), ``weight_hh`` (4Ch, Ch, k[, k]),
    ``bias_ih``, ``bias_hh`` (4Ch,). With ``peephole=True`` the paper's Hadamard terms
    ``weight_ci``, ``weight_cf``, ``weight_co``, each (Ch, *S): one weight per hidden
    channel and position. Their spatial size S is fixed by the first input the cell
    sees (they are lazy parameters, like those of torch.nn.LazyLinear, and start at
    zero); loading a state_dict also fixes it. Later inputs must have that size.
    Initialisation: Xavier-uniform per gate kernel; biases zero except the forget
    gate's block of ``bias_ih`` (1).

    Call: ``h, c = cell(x, (h, c))`` with x (B, C, *S) and h, c (B, Ch, *S); the state
    is optional (zeros). ``cell.input_conv(x)`` and ``cell.step(x_proj, state)`` split
    the step, so that inputs convolved beforehand (e.g. all frames at once) can be fed.
    """

    def __init__(self, input_channels: int, hidden_channels: int, kernel_size: int = 3, spatial_dims: int = 2,
                 bias: bool = True, peephole: bool = False):
        super().__init__()
        if kernel_size % 2 == 0 or kernel_size < 1:
            raise ValueError(f"ConvLSTMCell: kernel_size must be odd for 'same' padding, got {kernel_size}; use e.g. 3")
        if spatial_dims not in (1, 2):
            raise ValueError(f"ConvLSTMCell: spatial_dims must be 1 (Conv1d) or 2 (Conv2d), got {spatial_dims}")
        self.input_channels, self.hidden_channels = input_channels, hidden_channels
        self.kernel_size, self.spatial_dims, self.peephole = kernel_size, spatial_dims, peephole
        self.padding = kernel_size // 2
        self.conv = F.conv2d if spatial_dims == 2 else F.conv1d
        kernel = (kernel_size,) * spatial_dims
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_channels, input_channels, *kernel))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_channels, hidden_channels, *kernel))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_channels)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_channels)) if bias else None
        if peephole:
            self.weight_ci, self.weight_cf, self.weight_co = (UninitializedParameter() for _ in range(3))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _xavier_gates_(self.weight_ih, 4)
        _xavier_gates_(self.weight_hh, 4)
        _init_biases_(self.bias_ih, self.bias_hh, forget_gate=1)
        if self.peephole and not self.has_uninitialized_params():
            for weight in (self.weight_ci, self.weight_cf, self.weight_co):
                nn.init.zeros_(weight)

    def initialize_parameters(self, x: torch.Tensor, *args, **kwargs) -> None:
        """Called once before the first forward (by LazyModuleMixin): fix the peepholes' size from x (B, C, *S)."""
        self._materialize_peepholes(x.shape[-self.spatial_dims:])

    def _materialize_peepholes(self, spatial_size) -> None:
        """Give the lazy peephole weights their shape (Ch, *S), zeros; a no-op once done."""
        if self.has_uninitialized_params():
            with torch.no_grad():
                for weight in (self.weight_ci, self.weight_cf, self.weight_co):
                    weight.materialize((self.hidden_channels, *spatial_size))
                    weight.zero_()

    def _check_input(self, x: torch.Tensor, ranks: tuple[int, ...], name: str = "ConvLSTMCell",
                     expected: str = "(B, C, *S)") -> None:
        """One-line ValueError unless x has a rank in ``ranks`` and C channels at dim -1-spatial_dims."""
        if x.dim() not in ranks or x.shape[-1 - self.spatial_dims] != self.input_channels:
            spatial = "H, W" if self.spatial_dims == 2 else "L"
            expected = expected.replace("C", str(self.input_channels)).replace("*S", spatial)
            raise ValueError(f"{name}: expected input of shape {expected}, got {tuple(x.shape)}")

    def input_conv(self, x: torch.Tensor) -> torch.Tensor:
        """W_ih ∗ x + b_ih + b_hh for any number of frames: x (N, C, *S) -> (N, 4Ch, *S)."""
        bias = self.bias_ih + self.bias_hh if self.bias_ih is not None else None
        return self.conv(x, self.weight_ih, bias, padding=self.padding)

    def step(self, x_proj: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None):
        """The recurrent part of one step: x_proj (B, 4Ch, *S) from :meth:`input_conv` -> (h, c) each (B, Ch, *S)."""
        shape = (x_proj.shape[0], self.hidden_channels, *x_proj.shape[2:])
        if state is None:
            h = c = x_proj.new_zeros(shape)
            gates = x_proj
        else:
            h, c = state
            _check_state(type(self).__name__, "h", h, shape)
            _check_state(type(self).__name__, "c", c, shape)
            gates = x_proj + self.conv(h, self.weight_hh, None, padding=self.padding)
        i, f, g, o = gates.chunk(4, dim=1)
        if self.peephole:
            self._materialize_peepholes(shape[2:])
            if tuple(self.weight_ci.shape[1:]) != tuple(shape[2:]):
                raise ValueError(f"ConvLSTMCell: the peephole weights were fixed to spatial size "
                                 f"{tuple(self.weight_ci.shape[1:])} by the first input; got {tuple(shape[2:])}")
            i = i + self.weight_ci * c
            f = f + self.weight_cf * c
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        if self.peephole:
            o = o + self.weight_co * c
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """x (B, C, *S), state (h, c) each (B, Ch, *S) or None -> (h, c) each (B, Ch, *S)."""
        self._check_input(x, ranks=(self.spatial_dims + 2,))
        return self.step(self.input_conv(x), state)

    def extra_repr(self) -> str:
        return (f"{self.input_channels}, {self.hidden_channels}, kernel_size={self.kernel_size}, "
                f"spatial_dims={self.spatial_dims}, bias={self.bias_ih is not None}, peephole={self.peephole}")


class OwnConvLSTM(nn.Module):
    """A stack of :class:`ConvLSTMCell` layers run over a sequence of maps.

    ``out, states = m(x, state=None)``

    x: (B, T, C, *S) when ``batch_first`` (the default), (T, B, C, *S) otherwise, or a
    single step (B, C, *S); S is (H, W) for ``spatial_dims=2`` and (L,) for 1.
    state: a list of one (h, c) per layer, each (B, Ch, *S); zeros when None.
    out: the last layer's hidden sequence, (B, T, Ch, *S) (or shaped like x).
    states: the final (h, c) of every layer; passing it back continues the sequence.

    Each step runs :class:`ConvLSTMCell` (see the module docstring for why the input
    convolution is not batched over all frames). Parameters live in ``cells``
    (``cells.0.weight_ih``, ...).
    """

    def __init__(self, input_channels: int, hidden_channels: int, kernel_size: int = 3, num_layers: int = 1,
                 spatial_dims: int = 2, batch_first: bool = True, peephole: bool = False):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"OwnConvLSTM: num_layers must be >= 1, got {num_layers}")
        self.input_channels, self.hidden_channels, self.num_layers = input_channels, hidden_channels, num_layers
        self.spatial_dims, self.batch_first = spatial_dims, batch_first
        self.cells = nn.ModuleList(
            ConvLSTMCell(input_channels if layer == 0 else hidden_channels, hidden_channels, kernel_size,
                         spatial_dims, peephole=peephole)
            for layer in range(num_layers))

    def forward(self, x: torch.Tensor, state: list[tuple[torch.Tensor, torch.Tensor]] | None = None):
        d = self.spatial_dims
        sequence = "(B, T, C, *S)" if self.batch_first else "(T, B, C, *S)"
        self.cells[0]._check_input(x, ranks=(d + 2, d + 3), name=type(self).__name__,
                                   expected=f"{sequence} or (B, C, *S)")
        single_step = x.dim() == d + 2
        seq = x.unsqueeze(0) if single_step else (x.transpose(0, 1) if self.batch_first else x)  # (T, B, C, *S)
        if state is not None and len(state) != self.num_layers:
            raise ValueError(f"OwnConvLSTM: expected state to hold {self.num_layers} (h, c) pairs, got {len(state)}")
        states = []
        for layer, cell in enumerate(self.cells):
            layer_state = state[layer] if state is not None else None
            hs = []
            for x_t in seq.unbind(0):  # unbind: one backward node for all steps, not one zero-filled gradient per x[t]
                layer_state = cell(x_t, layer_state)
                hs.append(layer_state[0])
            seq = torch.stack(hs)                                                # (T, B, Ch, *S)
            states.append(layer_state)
        out = seq[0] if single_step else (seq.transpose(0, 1) if self.batch_first else seq)
        return out, states

    def extra_repr(self) -> str:
        return f"batch_first={self.batch_first}"
