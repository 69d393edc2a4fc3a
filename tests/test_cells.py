"""The own recurrent cells against PyTorch's, an independent ConvLSTM reference, and gradcheck."""
import ast
import os
import re
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import src.nets.cells as models
from src.nets.cells import ConvLSTMCell, OwnConvLSTM, OwnGRU, OwnGRUCell, OwnLSTM, OwnLSTMCell

MODELS_PY = Path(models.__file__)
ATOL = {torch.float64: 1e-10, torch.float32: 1e-5}
DTYPES = pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])


def assert_close(actual, expected, dtype, what, rtol=0.0):
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    torch.testing.assert_close(actual, expected, atol=ATOL[dtype], rtol=rtol, msg=lambda m: f"{what}: {m}")


def random_loss(*tensors):
    """A loss that weighs every element of every tensor differently (fixed seed), so every gradient matters."""
    generator = torch.Generator().manual_seed(1234)
    return sum((t * torch.randn(t.shape, generator=generator, dtype=t.dtype)).sum() for t in tensors)


def gradients(loss, named_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    grads = torch.autograd.grad(loss, list(named_inputs.values()))
    return dict(zip(named_inputs, grads))


# --------------------------------------------------------------------------- no recurrent kernels

BANNED_STRINGS = ("torch._VF", "nn.LSTM(", "nn.GRU(", "nn.LSTMCell(", "nn.GRUCell(", "lstm_cell(", "gru_cell(")
KERNEL_NAMES = {"_VF", "LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell", "lstm", "gru", "rnn_tanh", "rnn_relu",
                "lstm_cell", "gru_cell", "rnn_tanh_cell", "rnn_relu_cell", "mkldnn_rnn_layer", "_thnn_fused_lstm_cell",
                "_thnn_fused_gru_cell"}


def test_source_names_no_recurrent_kernel():
    source = MODELS_PY.read_text()
    for banned in BANNED_STRINGS:
        assert banned not in source, f"src/nets/cells.py contains {banned!r}"
    used = {node.attr for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Attribute)}
    used |= {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}
    assert not used & KERNEL_NAMES, f"src/nets/cells.py uses {sorted(used & KERNEL_NAMES)}"
    assert not re.search(r"import\s+.*\b_VF\b|getattr\(\s*torch", source)


def test_forward_and_backward_run_without_recurrent_kernels(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a recurrent kernel of PyTorch was called")

    for name in ("lstm", "gru", "lstm_cell", "gru_cell", "rnn_tanh", "rnn_relu"):
        monkeypatch.setattr(torch._VF, name, forbidden, raising=False)
        monkeypatch.setattr(torch, name, forbidden, raising=False)
    for module in (nn.LSTM, nn.GRU, nn.LSTMCell, nn.GRUCell, nn.RNN, nn.RNNCell):
        monkeypatch.setattr(module, "forward", forbidden)
    with pytest.raises(AssertionError, match="recurrent kernel"):  # the patch is live
        nn.LSTM(3, 4)(torch.randn(2, 3))
    x = torch.randn(2, 5, 3, requires_grad=True)
    frames = torch.randn(2, 3, 3, 6, 6, requires_grad=True)
    outputs = [OwnLSTMCell(3, 4)(x[:, 0])[0], OwnGRUCell(3, 4)(x[:, 0]), OwnLSTM(3, 4, num_layers=2)(x)[0],
               OwnGRU(3, 4, num_layers=2)(x)[0], ConvLSTMCell(3, 4, peephole=True)(frames[:, 0])[0],
               OwnConvLSTM(3, 4, num_layers=2)(frames)[0]]
    sum(out.sum() for out in outputs).backward()
    assert x.grad is not None and frames.grad is not None


# --------------------------------------------------------------------------- cells against torch

@DTYPES
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_lstm_cell_matches_torch(dtype, with_state, bias):
    torch.manual_seed(0)
    ref = nn.LSTMCell(5, 7, bias=bias).to(dtype)
    own = OwnLSTMCell(5, 7, bias=bias).to(dtype)
    own.load_state_dict(ref.state_dict())
    x = torch.randn(3, 5, dtype=dtype, requires_grad=True)
    state = tuple(torch.randn(3, 7, dtype=dtype, requires_grad=True) for _ in range(2)) if with_state else None
    inputs = {"x": x, **({"h0": state[0], "c0": state[1]} if with_state else {})}
    own_out, ref_out = own(x, state), ref(x, state)
    own_grads = gradients(random_loss(*own_out), {**inputs, **dict(own.named_parameters())})
    ref_grads = gradients(random_loss(*ref_out), {**inputs, **dict(ref.named_parameters())})
    for name, a, b in zip(("h", "c"), own_out, ref_out):
        assert_close(a, b, dtype, name)
    for name in ref_grads:
        assert_close(own_grads[name], ref_grads[name], dtype, f"grad of {name}")


@DTYPES
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_gru_cell_matches_torch(dtype, with_state, bias):
    torch.manual_seed(0)
    ref = nn.GRUCell(5, 7, bias=bias).to(dtype)
    own = OwnGRUCell(5, 7, bias=bias).to(dtype)
    own.load_state_dict(ref.state_dict())
    x = torch.randn(3, 5, dtype=dtype, requires_grad=True)
    h0 = torch.randn(3, 7, dtype=dtype, requires_grad=True) if with_state else None
    inputs = {"x": x, **({"h0": h0} if with_state else {})}
    own_out, ref_out = own(x, h0), ref(x, h0)
    own_grads = gradients(random_loss(own_out), {**inputs, **dict(own.named_parameters())})
    ref_grads = gradients(random_loss(ref_out), {**inputs, **dict(ref.named_parameters())})
    assert_close(own_out, ref_out, dtype, "h")
    for name in ref_grads:
        assert_close(own_grads[name], ref_grads[name], dtype, f"grad of {name}")


# --------------------------------------------------------------------------- sequences against torch

def run_pair(own, ref, x, state, is_lstm):
    """Outputs and gradients (input, state, every parameter) of own and torch's module on the same data."""
    results = []
    for module in (own, ref):
        out, final = module(x, state)
        finals = final if is_lstm else (final,)
        inputs = {"x": x}
        if state is not None:
            inputs.update(zip(("h0", "c0"), state if is_lstm else (state,)))
        grads = gradients(random_loss(out, *finals), {**inputs, **dict(module.named_parameters())})
        results.append(((out, *finals), grads))
    return results


@DTYPES
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "time_first"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "given_state"])
def test_sequence_matches_torch(dtype, kind, num_layers, batch_first, with_state):
    torch.manual_seed(0)
    B, T, I, H = 3, 6, 5, 7
    is_lstm = kind == "lstm"
    ref = (nn.LSTM if is_lstm else nn.GRU)(I, H, num_layers=num_layers, batch_first=batch_first).to(dtype)
    own = (OwnLSTM if is_lstm else OwnGRU)(I, H, num_layers=num_layers, batch_first=batch_first).to(dtype)
    own.load_state_dict(ref.state_dict())
    x = torch.randn(*((B, T) if batch_first else (T, B)), I, dtype=dtype, requires_grad=True)
    state = None
    if with_state:
        state = tuple(torch.randn(num_layers, B, H, dtype=dtype, requires_grad=True) for _ in range(2 if is_lstm else 1))
        state = state if is_lstm else state[0]
    (own_out, own_grads), (ref_out, ref_grads) = run_pair(own, ref, x, state, is_lstm)
    for name, a, b in zip(("out", "h_n", "c_n"), own_out, ref_out):
        assert_close(a, b, dtype, name)
    assert set(own_grads) == set(ref_grads)
    for name in ref_grads:
        assert_close(own_grads[name], ref_grads[name], dtype, f"grad of {name}")


@DTYPES
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_single_step_input_matches_torch(dtype, kind):
    torch.manual_seed(0)
    is_lstm = kind == "lstm"
    ref = (nn.LSTM if is_lstm else nn.GRU)(5, 7, num_layers=2, batch_first=True).to(dtype)
    own = (OwnLSTM if is_lstm else OwnGRU)(5, 7, num_layers=2).to(dtype)
    own.load_state_dict(ref.state_dict())
    x = torch.randn(3, 5, dtype=dtype)
    own_out, own_final = own(x)
    ref_out, ref_final = ref(x.unsqueeze(1))
    assert own_out.shape == (3, 7)
    assert_close(own_out, ref_out[:, 0], dtype, "out")
    for a, b in zip(own_final if is_lstm else (own_final,), ref_final if is_lstm else (ref_final,)):
        assert_close(a, b, dtype, "final state")


@pytest.mark.parametrize("cls, ref_cls", [(OwnLSTM, nn.LSTM), (OwnGRU, nn.GRU)])
def test_state_dict_layout_is_torchs(cls, ref_cls):
    ref, own = ref_cls(5, 7, num_layers=3), cls(5, 7, num_layers=3)
    assert {k: v.shape for k, v in own.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}


@pytest.mark.parametrize("cls", [OwnLSTM, OwnGRU])
def test_output_size_adds_a_final_linear(cls):
    torch.manual_seed(0)
    plain = cls(5, 7, num_layers=2).double()
    with_head = cls(5, 7, num_layers=2, output_size=3).double()
    with_head.load_state_dict({**plain.state_dict(), **{f"fc.{k}": v for k, v in with_head.fc.state_dict().items()}})
    x = torch.randn(4, 6, 5, dtype=torch.double)
    hidden, _ = plain(x)
    out, _ = with_head(x)
    assert out.shape == (4, 6, 3)
    torch.testing.assert_close(out, with_head.fc(hidden), atol=1e-12, rtol=0)


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(0)
    lstm = OwnLSTM(5, 7, num_layers=2, dropout=0.5)
    x = torch.randn(4, 6, 5)
    no_dropout = OwnLSTM(5, 7, num_layers=2, dropout=0.0)
    no_dropout.load_state_dict(lstm.state_dict())
    lstm.eval()
    torch.testing.assert_close(lstm(x)[0], no_dropout(x)[0])  # in eval, dropout is the identity
    lstm.train()
    assert not torch.allclose(lstm(x)[0], lstm(x)[0])


def test_initialisation_is_xavier_with_forget_bias_one():
    torch.manual_seed(0)
    lstm = OwnLSTM(64, 32, num_layers=2)
    bound = (6 / (64 + 32)) ** 0.5
    assert lstm.weight_ih_l0.abs().max() <= bound and lstm.weight_ih_l0.abs().max() > 0.9 * bound
    i, f, g, o = lstm.bias_ih_l0.chunk(4)
    assert f.eq(1).all() and i.eq(0).all() and g.eq(0).all() and o.eq(0).all() and lstm.bias_hh_l0.eq(0).all()


# --------------------------------------------------------------------------- ConvLSTM

@DTYPES
def test_conv_lstm_cell_with_1x1_kernel_on_1x1_maps_is_an_lstm_cell(dtype):
    torch.manual_seed(0)
    conv = ConvLSTMCell(5, 7, kernel_size=1).to(dtype)
    lstm = nn.LSTMCell(5, 7).to(dtype)
    lstm.load_state_dict({"weight_ih": conv.weight_ih.detach().view(28, 5), "weight_hh": conv.weight_hh.detach().view(28, 7),
                          "bias_ih": conv.bias_ih.detach(), "bias_hh": conv.bias_hh.detach()})
    x = torch.randn(3, 5, dtype=dtype, requires_grad=True)
    h0, c0 = (torch.randn(3, 7, dtype=dtype) for _ in range(2))
    conv_h, conv_c = conv(x[:, :, None, None], (h0[:, :, None, None], c0[:, :, None, None]))
    lstm_h, lstm_c = lstm(x, (h0, c0))
    assert_close(conv_h.flatten(1), lstm_h, dtype, "h")
    assert_close(conv_c.flatten(1), lstm_c, dtype, "c")
    conv_grad = gradients(random_loss(conv_h.flatten(1), conv_c.flatten(1)), {"x": x, "w": conv.weight_ih})
    lstm_grad = gradients(random_loss(lstm_h, lstm_c), {"x": x, "w": lstm.weight_ih})
    assert_close(conv_grad["x"], lstm_grad["x"], dtype, "grad of x")
    assert_close(conv_grad["w"].view(28, 5), lstm_grad["w"], dtype, "grad of weight_ih")


def reference_conv_lstm(cells, x, states=None):
    """ConvLSTM of Shi et al. written from the paper with one convolution of [x_t, h_{t-1}] per step.

    x (B, T, C, *S) -> hidden sequence (B, T, Ch, *S) and the final (h, c) of every layer.
    Reads only the weights of ``cells`` (gate order i, f, g, o).
    """
    finals = []
    for layer, cell in enumerate(cells):
        conv = F.conv2d if x.dim() == 5 else F.conv1d
        weight = torch.cat([cell.weight_ih, cell.weight_hh], dim=1)
        bias = cell.bias_ih + cell.bias_hh
        B, T, _, *spatial = x.shape
        h, c = states[layer] if states else (x.new_zeros(B, cell.hidden_channels, *spatial),) * 2
        hs = []
        for t in range(T):
            z = conv(torch.cat([x[:, t], h], dim=1), weight, bias, padding=cell.kernel_size // 2)
            zi, zf, zg, zo = z.split(cell.hidden_channels, dim=1)
            if cell.peephole:
                zi, zf = zi + cell.weight_ci * c, zf + cell.weight_cf * c
            c = torch.sigmoid(zf) * c + torch.sigmoid(zi) * torch.tanh(zg)
            if cell.peephole:
                zo = zo + cell.weight_co * c
            h = torch.sigmoid(zo) * torch.tanh(c)
            hs.append(h)
        x = torch.stack(hs, dim=1)
        finals.append((h, c))
    return x, finals


@DTYPES
@pytest.mark.parametrize("peephole", [False, True], ids=["plain", "peephole"])
@pytest.mark.parametrize("spatial", [(6, 5), (7,)], ids=["conv2d", "conv1d"])
def test_conv_lstm_matches_reference(dtype, peephole, spatial):
    torch.manual_seed(0)
    model = OwnConvLSTM(3, 4, kernel_size=3, num_layers=2, spatial_dims=len(spatial), peephole=peephole).to(dtype)
    x = torch.randn(2, 4, 3, *spatial, dtype=dtype, requires_grad=True)
    model(x[:1, :1])  # fixes the lazy peephole weights' size
    if peephole:
        with torch.no_grad():
            for name, weight in model.named_parameters():
                if name.split(".")[-1] in ("weight_ci", "weight_cf", "weight_co"):
                    weight.normal_()
    states = [tuple(torch.randn(2, 4, *spatial, dtype=dtype) for _ in range(2)) for _ in range(2)]
    out, finals = model(x, states)
    ref_out, ref_finals = reference_conv_lstm(model.cells, x, states)
    assert out.shape == (2, 4, 4, *spatial)
    assert_close(out, ref_out, dtype, "out")
    for (h, c), (ref_h, ref_c) in zip(finals, ref_finals):
        assert_close(h, ref_h, dtype, "h_n")
        assert_close(c, ref_c, dtype, "c_n")
    params = {"x": x, **dict(model.named_parameters())}
    own_grads = gradients(random_loss(out, *finals[-1]), params)
    ref_grads = gradients(random_loss(ref_out, *ref_finals[-1]), params)
    # Gradients of conv weights and biases sum over every position and step (values up to ~30 here):
    # in float32 they also get torch's default relative tolerance, 1.3e-6.
    rtol = 1.3e-6 if dtype == torch.float32 else 0.0
    for name in params:
        assert_close(own_grads[name], ref_grads[name], dtype, f"grad of {name}", rtol=rtol)


def test_conv_lstm_time_first_and_single_step():
    torch.manual_seed(0)
    model = OwnConvLSTM(3, 4, batch_first=False).double()
    x = torch.randn(5, 2, 3, 6, 6, dtype=torch.double)  # (T, B, C, H, W)
    out, states = model(x)
    ref_out, _ = reference_conv_lstm(model.cells, x.transpose(0, 1))
    assert out.shape == (5, 2, 4, 6, 6) and len(states) == 1
    torch.testing.assert_close(out, ref_out.transpose(0, 1), atol=1e-10, rtol=0)
    step_out, _ = model(x[0])
    torch.testing.assert_close(step_out, out[0], atol=1e-10, rtol=0)


def test_peephole_weights_take_the_first_input_size():
    cell = ConvLSTMCell(3, 4, peephole=True)
    cell(torch.randn(2, 3, 9, 7))
    assert cell.weight_ci.shape == cell.weight_cf.shape == cell.weight_co.shape == (4, 9, 7)
    loaded = ConvLSTMCell(3, 4, peephole=True)
    loaded.load_state_dict(cell.state_dict())
    assert loaded.weight_co.shape == (4, 9, 7)
    with pytest.raises(ValueError, match=r"peephole.*\(9, 7\)"):
        cell(torch.randn(2, 3, 8, 8))


# --------------------------------------------------------------------------- gradcheck

def double(*shape):
    return torch.randn(*shape, dtype=torch.double, requires_grad=True)


def test_gradcheck_lstm_cell():
    cell = OwnLSTMCell(3, 4).double()
    assert torch.autograd.gradcheck(lambda x, h, c: cell(x, (h, c)), (double(2, 3), double(2, 4), double(2, 4)))


def test_gradcheck_gru_cell():
    cell = OwnGRUCell(3, 4).double()
    assert torch.autograd.gradcheck(cell, (double(2, 3), double(2, 4)))


@pytest.mark.parametrize("spatial", [(4, 3), (5,)], ids=["conv2d", "conv1d"])
@pytest.mark.parametrize("peephole", [False, True], ids=["plain", "peephole"])
def test_gradcheck_conv_lstm_cell(spatial, peephole):
    cell = ConvLSTMCell(2, 3, spatial_dims=len(spatial), peephole=peephole).double()
    cell(torch.zeros(1, 2, *spatial, dtype=torch.double))
    if peephole:
        with torch.no_grad():
            for weight in (cell.weight_ci, cell.weight_cf, cell.weight_co):
                weight.normal_()
    assert torch.autograd.gradcheck(lambda x, h, c: cell(x, (h, c)),
                                    (double(2, 2, *spatial), double(2, 3, *spatial), double(2, 3, *spatial)))


def test_gradcheck_lstm_sequence_with_its_hand_written_backward():
    lstm = OwnLSTM(3, 4, num_layers=2).double()
    weights = [double(*p.shape) for p in lstm.layer_parameters(1)]  # layer 1's weights as checked inputs

    def run(x, h0, c0, w_ih, w_hh, b_ih, b_hh):
        params = dict(zip(("weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"), (w_ih, w_hh, b_ih, b_hh)))
        out, (h_n, c_n) = torch.func.functional_call(lstm, params, (x, (h0, c0)))
        return out, h_n, c_n

    assert torch.autograd.gradcheck(run, (double(2, 4, 3), double(2, 2, 4), double(2, 2, 4), *weights))


def test_gradcheck_gru_sequence_with_its_hand_written_backward():
    gru = OwnGRU(3, 4, num_layers=2).double()
    weights = [double(*p.shape) for p in gru.layer_parameters(1)]

    def run(x, h0, w_ih, w_hh, b_ih, b_hh):
        params = dict(zip(("weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1"), (w_ih, w_hh, b_ih, b_hh)))
        return torch.func.functional_call(gru, params, (x, h0))

    assert torch.autograd.gradcheck(run, (double(2, 4, 3), double(2, 2, 4), *weights))


def test_gradcheck_conv_lstm_sequence():
    model = OwnConvLSTM(2, 3, num_layers=2, peephole=True).double()
    model(torch.zeros(1, 1, 2, 3, 3, dtype=torch.double))
    with torch.no_grad():
        model.cells[1].weight_cf.normal_()

    def run(x, h0, c0):
        out, states = model(x, [(h0, c0), (h0, c0)])
        return out, *states[-1]

    assert torch.autograd.gradcheck(run, (double(1, 3, 2, 3, 3), double(1, 3, 3, 3), double(1, 3, 3, 3)))


# --------------------------------------------------------------------------- chunked sequences

@pytest.mark.parametrize("batch_first", [True, False], ids=["batch_first", "time_first"])
@pytest.mark.parametrize("cls", [OwnLSTM, OwnGRU])
def test_chunked_sequence_equals_whole(cls, batch_first):
    torch.manual_seed(0)
    model = cls(5, 7, num_layers=2, batch_first=batch_first).double()
    x = torch.randn(*((3, 9) if batch_first else (9, 3)), 5, dtype=torch.double)
    time_dim = 1 if batch_first else 0
    whole, whole_state = model(x)
    first, state = model(x.narrow(time_dim, 0, 4))
    second, state = model(x.narrow(time_dim, 4, 4), state)
    last, state = model(x.select(time_dim, 8), state)  # a single step continues it too
    torch.testing.assert_close(torch.cat([first, second, last.unsqueeze(time_dim)], time_dim), whole, atol=1e-12, rtol=0)
    for a, b in zip(state if cls is OwnLSTM else (state,), whole_state if cls is OwnLSTM else (whole_state,)):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)


def test_chunked_conv_lstm_equals_whole():
    torch.manual_seed(0)
    model = OwnConvLSTM(3, 4, num_layers=2, peephole=True).double()
    x = torch.randn(2, 7, 3, 6, 6, dtype=torch.double)
    model(x[:, :1])
    with torch.no_grad():
        for cell in model.cells:
            cell.weight_ci.normal_()
    whole, whole_states = model(x)
    first, states = model(x[:, :3])
    second, states = model(x[:, 3:], states)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, atol=1e-12, rtol=0)
    for (h, c), (whole_h, whole_c) in zip(states, whole_states):
        torch.testing.assert_close(h, whole_h, atol=1e-12, rtol=0)
        torch.testing.assert_close(c, whole_c, atol=1e-12, rtol=0)


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("make, call, message", [
    (lambda: OwnLSTMCell(5, 7), lambda m: m(torch.randn(3, 4)), r"expected input of shape \(B, 5\), got \(3, 4\)"),
    (lambda: OwnLSTMCell(5, 7), lambda m: m(torch.randn(3, 5), (torch.zeros(3, 6), torch.zeros(3, 7))),
     r"expected h of shape \(3, 7\), got \(3, 6\)"),
    (lambda: OwnGRUCell(5, 7), lambda m: m(torch.randn(2, 3, 5)), r"expected input of shape \(B, 5\)"),
    (lambda: OwnLSTM(5, 7), lambda m: m(torch.randn(2, 3, 4, 5)), r"OwnLSTM: expected input of shape \(B, T, 5\)"),
    (lambda: OwnLSTM(5, 7, batch_first=False), lambda m: m(torch.randn(2, 3, 4)), r"\(T, B, 5\) or \(B, 5\), got \(2, 3, 4\)"),
    (lambda: OwnLSTM(5, 7, num_layers=2), lambda m: m(torch.randn(3, 4, 5), (torch.zeros(1, 3, 7), torch.zeros(2, 3, 7))),
     r"expected h_0 of shape \(2, 3, 7\), got \(1, 3, 7\)"),
    (lambda: OwnGRU(5, 7), lambda m: m(torch.randn(3, 4, 5), torch.zeros(1, 4, 7)), r"OwnGRU: expected h_0 of shape \(1, 3, 7\)"),
    (lambda: ConvLSTMCell(3, 4), lambda m: m(torch.randn(2, 5, 8, 8)), r"expected input of shape \(B, 3, H, W\), got \(2, 5, 8, 8\)"),
    (lambda: ConvLSTMCell(3, 4, spatial_dims=1), lambda m: m(torch.randn(2, 3, 8, 8)), r"\(B, 3, L\)"),
    (lambda: ConvLSTMCell(3, 4), lambda m: m(torch.randn(2, 3, 8, 8), (torch.zeros(2, 4, 8, 7),) * 2),
     r"expected h of shape \(2, 4, 8, 8\), got \(2, 4, 8, 7\)"),
    (lambda: OwnConvLSTM(3, 4), lambda m: m(torch.randn(2, 3, 8, 8, 8)), r"OwnConvLSTM: expected input of shape \(B, T, 3, H, W\)"),
    (lambda: OwnConvLSTM(3, 4, num_layers=2), lambda m: m(torch.randn(2, 5, 3, 8, 8), [(torch.zeros(2, 4, 8, 8),) * 2]),
     r"expected state to hold 2 \(h, c\) pairs, got 1"),
    (lambda: ConvLSTMCell(3, 4, kernel_size=4), None, r"kernel_size must be odd.*got 4"),
    (lambda: OwnConvLSTM(3, 4, kernel_size=2), None, r"kernel_size must be odd.*got 2"),
    (lambda: ConvLSTMCell(3, 4, spatial_dims=3), None, r"spatial_dims must be 1 .* or 2 .*, got 3"),
])
def test_bad_input_gets_a_one_line_error(make, call, message):
    with pytest.raises(ValueError, match=message) as error:
        module = make()
        call(module)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("make", [lambda: OwnLSTM(5, 7, num_layers=2), lambda: OwnGRU(5, 7, num_layers=2),
                                  lambda: OwnConvLSTM(5, 7, num_layers=2)], ids=["lstm", "gru", "conv_lstm"])
def test_runs_under_autocast_and_keeps_float32_gradients(make):
    torch.manual_seed(0)
    model = make()
    x = torch.randn(2, 3, 5, 4, 4) if isinstance(model, OwnConvLSTM) else torch.randn(2, 3, 5)
    reference, _ = model(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = model(x)
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())
    torch.testing.assert_close(out.float(), reference, atol=0.1, rtol=0)  # bfloat16 keeps ~3 digits


# --------------------------------------------------------------------------- torch.compile
# Compiling costs seconds per module: tiny sizes, and the `compile` marker, so that a
# pressed CI can leave them out with `-m "not compile"`.

COMPILE_CASES = {
    "lstm": (lambda: OwnLSTM(5, 7, num_layers=2), lambda: torch.randn(3, 4, 5)),
    "gru": (lambda: OwnGRU(5, 7, num_layers=2), lambda: torch.randn(3, 4, 5)),
    "convlstm": (lambda: OwnConvLSTM(2, 3, num_layers=2), lambda: torch.randn(2, 3, 2, 5, 5)),
}


def unprefixed(grads: dict) -> dict:
    """Gradients of a compiled module's parameters under the plain module's names."""
    return {name.removeprefix("_orig_mod."): grad for name, grad in grads.items()}


@pytest.mark.compile
@pytest.mark.parametrize("kind", list(COMPILE_CASES))
def test_compile_sees_one_graph_without_breaks(kind):
    make, make_input = COMPILE_CASES[kind]
    torch.manual_seed(0)
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(make())(make_input())
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


@pytest.mark.compile
@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_compiled_graph_matches_torch_in_float64(kind):
    """The graph torch.compile captures (run by aot_eager: traced forward and backward, eager kernels)."""
    torch.manual_seed(0)
    torch._dynamo.reset()
    dtype, is_lstm = torch.float64, kind == "lstm"
    ref = (nn.LSTM if is_lstm else nn.GRU)(5, 7, num_layers=2, batch_first=True).to(dtype)
    own = (OwnLSTM if is_lstm else OwnGRU)(5, 7, num_layers=2).to(dtype)
    own.load_state_dict(ref.state_dict())
    compiled = torch.compile(own, backend="aot_eager", fullgraph=True)
    x = torch.randn(3, 4, 5, dtype=dtype, requires_grad=True)
    (own_out, own_grads), (ref_out, ref_grads) = run_pair(compiled, ref, x, None, is_lstm)
    for name, a, b in zip(("out", "h_n", "c_n"), own_out, ref_out):
        assert_close(a, b, dtype, name)
    own_grads = unprefixed(own_grads)
    assert set(own_grads) == set(ref_grads)
    for name in ref_grads:
        assert_close(own_grads[name], ref_grads[name], dtype, f"grad of {name}")


@pytest.mark.compile
@pytest.mark.skipif(os.environ.get("INDUCTOR_TESTS") != "1",
                    reason="inductor compiles C++ for about a minute on 2 cores: set INDUCTOR_TESTS=1 to run it")
def test_inductor_compiled_lstm_matches_torch():
    """The real compiled path (inductor's generated C++), forward and backward, float32."""
    torch.manual_seed(0)
    torch._dynamo.reset()
    ref = nn.LSTM(5, 7, num_layers=2, batch_first=True)
    own = OwnLSTM(5, 7, num_layers=2)
    own.load_state_dict(ref.state_dict())
    compiled = torch.compile(own, fullgraph=True)
    x = torch.randn(3, 4, 5, requires_grad=True)
    (own_out, own_grads), (ref_out, ref_grads) = run_pair(compiled, ref, x, None, True)
    for name, a, b in zip(("out", "h_n", "c_n"), own_out, ref_out):
        assert_close(a, b, torch.float32, name)
    own_grads = unprefixed(own_grads)
    for name in ref_grads:
        assert_close(own_grads[name], ref_grads[name], torch.float32, f"grad of {name}")
