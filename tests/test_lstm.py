"""The hand-built LSTM equals torch's LSTM (values and gradients) and passes gradcheck."""

import copy

import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from emoser.nn import (
    FastLstmLayer,
    LstmCell,
    LstmLayer,
    copy_to_torch_lstm,
    copy_to_torch_lstm_cell,
    from_torch,
    torch_gate_weights,
)

TOL = 1e-10
D64 = torch.float64


def _maxdiff(a, b):
    return float((a - b).detach().abs().max())


def _torch_grads(ref, names):
    return [getattr(ref, n).grad for n in names]


# ---------------------------------------------------------------- cell
def test_cell_structure_and_shapes():
    cell = LstmCell(5, 3)
    for name in ("input_gate", "forget_gate", "output_gate", "candidate"):
        gate = getattr(cell, name)
        assert isinstance(gate, nn.Linear) and gate.in_features == 8 and gate.out_features == 3
    assert sum(p.numel() for p in cell.parameters()) == 4 * (8 * 3 + 3)
    h, c = cell(torch.randn(2, 5))
    assert h.shape == c.shape == (2, 3)
    with pytest.raises(RuntimeError):  # the gate layers expect I + H = 8 inputs
        cell(torch.randn(2, 4))


def test_cell_known_answer_with_zero_weights():
    # all weights/biases zero: i = f = o = 0.5, g = 0 -> c = 0.5 c_prev, h = 0.5 tanh(c)
    cell = LstmCell(2, 2).double()
    for p in cell.parameters():
        nn.init.zeros_(p)
    c0 = torch.tensor([[1.0, -2.0]], dtype=D64)
    h, c = cell(torch.ones(1, 2, dtype=D64), (torch.zeros(1, 2, dtype=D64), c0))
    torch.testing.assert_close(c, 0.5 * c0)
    torch.testing.assert_close(h, 0.5 * torch.tanh(0.5 * c0))


def test_zero_state_follows_input_dtype():
    cell = LstmCell(3, 2).double()
    h, c = cell(torch.randn(4, 3, dtype=D64))
    assert h.dtype == c.dtype == D64
    layer = LstmLayer(3, 2)
    assert layer(torch.randn(2, 5, 3))[0].dtype == torch.float32


def test_cell_equals_torch_lstmcell_values_and_grads():
    torch.manual_seed(0)
    cell = LstmCell(5, 4).double()
    ref = copy_to_torch_lstm_cell(cell)
    x = torch.randn(3, 5, dtype=D64, requires_grad=True)
    h0 = torch.randn(3, 4, dtype=D64, requires_grad=True)
    c0 = torch.randn(3, 4, dtype=D64, requires_grad=True)
    wh, wc = torch.randn(3, 4, dtype=D64), torch.randn(3, 4, dtype=D64)

    h, c = cell(x, (h0, c0))
    (h * wh + c * wc).sum().backward()
    ours = [x.grad.clone(), h0.grad.clone(), c0.grad.clone()]
    for t in (x, h0, c0):
        t.grad = None
    h_ref, c_ref = ref(x, (h0, c0))
    (h_ref * wh + c_ref * wc).sum().backward()
    theirs = [x.grad, h0.grad, c0.grad]

    assert _maxdiff(h, h_ref) <= TOL and _maxdiff(c, c_ref) <= TOL
    for a, b in zip(ours, theirs):
        assert _maxdiff(a, b) <= TOL
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    for a, b in zip(torch_gate_weights(cell, grad=True), _torch_grads(ref, names)):
        assert _maxdiff(a, b) <= TOL


def test_gradcheck_cell():
    torch.manual_seed(1)
    cell = LstmCell(3, 2).double()
    params = dict(cell.named_parameters())
    names = list(params)

    def f(x, h, c, *ps):
        return functional_call(cell, dict(zip(names, ps)), (x, (h, c)))

    inputs = [torch.randn(2, 3, dtype=D64, requires_grad=True),
              torch.randn(2, 2, dtype=D64, requires_grad=True),
              torch.randn(2, 2, dtype=D64, requires_grad=True)]
    inputs += [p.detach().clone().requires_grad_(True) for p in params.values()]
    assert torch.autograd.gradcheck(f, inputs)


# ---------------------------------------------------------------- layer
LENGTHS = [7, 3, 5, 1]


def _layer_case(seed=0, n_in=5, hid=4, layer_class=LstmLayer):
    torch.manual_seed(seed)
    layer = layer_class(n_in, hid).double()
    # padded beyond the longest too
    x = torch.randn(len(LENGTHS), max(LENGTHS) + 2, n_in, dtype=D64)
    lengths = torch.tensor(LENGTHS)
    return layer, x, lengths


def _run_torch(ref, x, lengths):
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, (h_n, c_n) = ref(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, h_n[0], c_n[0]


@pytest.mark.parametrize("layer_class", [LstmLayer, FastLstmLayer])
def test_layer_equals_torch_lstm_on_mixed_lengths(layer_class):
    layer, x, lengths = _layer_case(layer_class=layer_class)
    ref = copy_to_torch_lstm(layer)
    w_all = torch.randn(*x.shape[:2], layer.hidden_size, dtype=D64)
    w_last = torch.randn(x.shape[0], layer.hidden_size, dtype=D64)

    xa = x.clone().requires_grad_(True)
    h_all, _ = layer(xa, lengths)
    h_last, c_last = layer(xa, lengths, last_only=True)
    ((h_all * w_all).sum() + (h_last * w_last).sum() + c_last.sum()).backward()

    xb = x.clone().requires_grad_(True)
    out, h_n, c_n = _run_torch(ref, xb, lengths)
    ((out * w_all).sum() + (h_n * w_last).sum() + c_n.sum()).backward()

    assert h_all.shape == out.shape
    assert _maxdiff(h_all, out) <= TOL  # includes the zeros after each sequence's end
    assert _maxdiff(h_last, h_n) <= TOL and _maxdiff(c_last, c_n) <= TOL
    assert _maxdiff(xa.grad, xb.grad) <= TOL
    assert xa.grad[1, 3:].abs().max() == 0  # padded steps get no gradient
    names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    for a, b in zip(torch_gate_weights(layer, grad=True), _torch_grads(ref, names)):
        assert _maxdiff(a, b) <= TOL


def test_layer_last_only_is_not_step_T_minus_1():
    layer, x, lengths = _layer_case(seed=3)
    h_last, _ = layer(x, lengths, last_only=True)
    h_all, _ = layer(x)  # no lengths: every padded step is run
    idx = torch.arange(len(LENGTHS))
    torch.testing.assert_close(h_last, h_all[idx, lengths - 1], rtol=0, atol=1e-12)
    assert _maxdiff(h_last[1], h_all[1, -1]) > 1e-3
    h_end, _ = layer(x, last_only=True)
    torch.testing.assert_close(h_end, h_all[:, -1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("fused", [True, False])
def test_fast_layer_equals_the_taught_layer_and_a_loop_written_here(fused):
    """FastLstmLayer (regrouped arithmetic, fused or not) computes the taught LstmLayer's
    function with the same parameters: values and gradients, float64."""
    taught, x, lengths = _layer_case(seed=4)
    fast = FastLstmLayer(taught.input_size, taught.hidden_size).double()
    fast.load_state_dict(taught.state_dict())  # the same keys: checkpoints load either way
    fast.fused = fused
    outs, grads = [], []
    for layer in (fast, taught):
        xx = x.clone().requires_grad_(True)
        h_all, c_all = layer(xx, lengths)
        h_last, c_last = layer(xx, lengths, last_only=True)
        ((h_all ** 2).sum() + c_all.sum() + h_last.sum() + (c_last ** 3).sum()).backward()
        outs.append((h_all, c_all, h_last, c_last))
        grads.append([xx.grad] + [p.grad for p in layer.parameters()])
    # and a literal loop written right here, step by step with the cell
    h = c = torch.zeros(x.shape[0], taught.hidden_size, dtype=D64)
    steps = []
    for t in range(max(LENGTHS)):
        h, c = taught.cell(x[:, t], (h, c))
        steps.append(h)
    manual_last = torch.stack(steps, 1)[torch.arange(x.shape[0]), lengths - 1]
    for a, b in zip(*outs):
        assert _maxdiff(a, b) <= 1e-12
    assert _maxdiff(outs[1][2], manual_last) <= 1e-12
    for a, b in zip(*grads):
        assert _maxdiff(a, b) <= 1e-12


def test_the_taught_layer_runs_any_cell_class_and_the_fast_one_refuses_it():
    class NoForgetGate(LstmCell):  # f = 1: the cell state only adds up
        def forward(self, x, state=None):
            h, c = self.zero_state(x) if state is None else state
            xh = torch.cat([x, h], dim=1)
            c = c + torch.sigmoid(self.input_gate(xh)) * torch.tanh(self.candidate(xh))
            return torch.sigmoid(self.output_gate(xh)) * torch.tanh(c), c

    torch.manual_seed(9)
    layer = LstmLayer(3, 2, cell=NoForgetGate).double()
    assert type(layer.cell) is NoForgetGate
    x = torch.randn(2, 5, 3, dtype=D64)
    standard = LstmLayer(3, 2).double()
    standard.load_state_dict(layer.state_dict())
    assert _maxdiff(layer(x)[1], standard(x)[1]) > 1e-3  # the loop calls the cell it was given
    with pytest.raises(ValueError, match="LstmCell only"):
        FastLstmLayer(3, 2, cell=NoForgetGate)
    layer.__class__ = FastLstmLayer  # switched in place (as AudioNet.set_engine does)
    with pytest.raises(ValueError, match="LstmCell only"):
        layer(x)


def test_gradcheck_layer_small():
    torch.manual_seed(5)
    layer = LstmLayer(2, 2).double()
    params = dict(layer.named_parameters())
    names = list(params)
    lengths = torch.tensor([3, 2])

    def f(x, *ps):
        p = dict(zip(names, ps))
        h_all, _ = functional_call(layer, p, (x, lengths))
        h_last, c_last = functional_call(layer, p, (x, lengths), {"last_only": True})
        return h_all, h_last, c_last

    inputs = [torch.randn(2, 3, 2, dtype=D64, requires_grad=True)]
    inputs += [p.detach().clone().requires_grad_(True) for p in params.values()]
    assert torch.autograd.gradcheck(f, inputs)


def test_layer_initial_state_and_bad_lengths():
    layer, x, lengths = _layer_case(seed=6)
    ref = copy_to_torch_lstm(layer)
    h0 = torch.randn(x.shape[0], layer.hidden_size, dtype=D64)
    c0 = torch.randn(x.shape[0], layer.hidden_size, dtype=D64)
    ours, _ = layer(x, state=(h0, c0))
    theirs, _ = ref(x, (h0[None], c0[None]))
    assert _maxdiff(ours, theirs) <= TOL
    for bad in ([0, 1, 1, 1], [1, 1, 1, x.shape[1] + 1], [1, 2]):
        with pytest.raises(ValueError):
            layer(x, torch.tensor(bad))


def test_from_torch_round_trip():
    torch.manual_seed(7)
    ref = nn.LSTM(3, 2, batch_first=True).double()  # two non-zero biases: summed into one
    layer = from_torch(ref)
    assert isinstance(layer, LstmLayer)
    x = torch.randn(2, 4, 3, dtype=D64)
    assert _maxdiff(layer(x)[0], ref(x)[0]) <= TOL
    ref_cell = nn.LSTMCell(3, 2).double()
    cell = from_torch(ref_cell)
    assert isinstance(cell, LstmCell)
    assert _maxdiff(cell(x[:, 0])[0], ref_cell(x[:, 0])[0]) <= TOL
    with pytest.raises(ValueError):
        from_torch(nn.LSTM(3, 2, num_layers=2))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_layer_on_cuda_matches_torch(dtype):
    torch.manual_seed(8)
    layer = LstmLayer(6, 5).to("cuda", dtype)
    # the reference runs in float64: cuDNN computes float32 LSTMs on TF32 tensor cores by
    # default (on an H100 its float32 result was 8.9e-5 from ours)
    ref = copy_to_torch_lstm(copy.deepcopy(layer).double())
    x = torch.randn(4, 9, 6, device="cuda", dtype=dtype)
    lengths = torch.tensor([9, 2, 5, 1], device="cuda")
    h_last, c_last = layer(x, lengths, last_only=True)
    assert h_last.device.type == "cuda" and h_last.dtype == dtype
    _, h_n, c_n = _run_torch(ref, x.double(), lengths.cpu())
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert _maxdiff(h_last, h_n) <= tol and _maxdiff(c_last, c_n) <= tol
    h, c = layer.cell(x[:, 0])
    assert h.device.type == "cuda" and h.dtype == dtype
