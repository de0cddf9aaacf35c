"""emoser.speed: the fast arithmetic computes the same functions as the literal modules.

Values and gradients are compared in float64 against the modules as the spec writes them
(``nn.AvgPool1d``, ``nn.Conv1d``, ReLU, ``nn.MaxPool1d``; the per-step LSTM through autograd).
Every test runs twice: with the fused C kernels of :mod:`emoser.native` where a C compiler
exists (the default), and with the PyTorch code alone (``EMOSER_NATIVE=0``).
"""

import pytest
import torch
import torch.nn.functional as F

from emoser.nn import AudioNet, FastLstmLayer
from emoser.nn.kernels import (
    fast_frontend,
    frontend,
    frontend_gemm,
    frontend_receptive_field,
    lstm_recurrence,
    lstm_stack_last,
    native,
)

D64 = torch.float64


@pytest.fixture(autouse=True, params=["native", "pytorch"])
def kernels(request, monkeypatch):
    """Run the test with the fused kernels (where they can be built) and without them."""
    if request.param == "pytorch":
        monkeypatch.setenv(native.ENV_NATIVE, "0")
    elif native._setting() in ("0", "false", "no", "off"):
        monkeypatch.setenv(native.ENV_NATIVE, "1")
    return request.param


def test_receptive_field_known_answers():
    plan = frontend_receptive_field(500, 3, 5)
    assert plan.full_conv_outputs == (123, 29, 5)  # 250 -> 123 -> 61 -> 29 -> 14 -> 5 -> 2
    assert plan.conv_outputs == (94, 22, 4)  # what the two output positions can see
    assert plan.conv_inputs == (191, 47, 11)
    assert plan.samples_used == 382 and plan.out_positions == 2
    assert frontend_receptive_field(254, 3, 5).samples_used == 254  # the shortest frame uses all
    with pytest.raises(ValueError, match="too short"):
        frontend_receptive_field(200, 3, 5)


def test_the_literal_model_never_sees_the_samples_past_the_receptive_field():
    torch.manual_seed(0)
    model = AudioNet().double()
    frames = torch.randn(4, 500, dtype=D64)
    changed = frames.clone()
    changed[:, 382:] = torch.randn(4, 118, dtype=D64) * 100
    with torch.no_grad():
        assert torch.equal(model.frontend(frames), model.frontend(changed))
        changed[:, 381] += 1.0  # the last sample that is seen
        assert not torch.equal(model.frontend(frames), model.frontend(changed))


CONFIGS = [
    dict(),
    dict(sharedConv=False),
    dict(convKernelSize=4, inDim=480),
    dict(convKernelSize=3, convOutNum=5, inDim=257),
    dict(convLayerNum=1, inDim=100),
    dict(convLayerNum=4, inDim=1100, convOutNum=8, sharedConv=False),
]


@pytest.mark.parametrize("config", CONFIGS,
                         ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
def test_frontend_gemm_equals_the_modules_values_and_gradients(config):
    _compare_frontend_with_the_modules(config)


@pytest.mark.parametrize("kernels", ["pytorch"], indirect=True)  # chunks: the PyTorch code's
@pytest.mark.parametrize("elements", [1, 10_000])
def test_frontend_gemm_in_small_chunks_equals_the_modules(monkeypatch, elements):
    """Block 1 in chunks of one frame, or of three, changes only the summation order."""
    monkeypatch.setattr(frontend, "CHUNK_ELEMENTS", elements)
    assert len(frontend._frame_chunks(37, 48 * 64)) == (37 if elements == 1 else 13)
    _compare_frontend_with_the_modules(dict())


def _compare_frontend_with_the_modules(config):
    torch.manual_seed(1)
    model = AudioNet(**config).double()
    frames = torch.randn(37, model.inDim, dtype=D64)
    weight = torch.randn(37, model.feature_size, dtype=D64)
    results = []
    for gemm in (True, False):
        model.zero_grad()
        model.gemm_frontend = gemm
        out = fast_frontend(model, frames)  # gemm False: the taught modules, fast pooling
        (out * weight).sum().backward()
        results.append([out.detach()] + [p.grad.clone() for p in model.parameters()
                                          if p.grad is not None])
    fast, literal = results
    assert len(fast) == len(literal) == 1 + 2 * len({id(conv) for conv in model.conv_blocks()})
    for a, b in zip(fast, literal):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)


@pytest.mark.parametrize("kernels", ["pytorch"], indirect=True)
def test_frontend_gemm_in_chunks_and_float32(kernels):
    torch.manual_seed(2)
    model = AudioNet()
    frames = torch.randn(600, 500)  # more than one chunk of block 1
    with torch.no_grad():
        torch.testing.assert_close(frontend_gemm(frames, model.frontend_plan, model.conv_blocks()),
                                   model.frontend(frames), rtol=1e-5, atol=1e-5)


def test_frontend_gemm_ties_go_to_the_first_element_as_in_max_pooling():
    model = AudioNet(convOutNum=4).double()
    with torch.no_grad():
        model.conv1.weight.fill_(0.25)  # constant frames: every pair of conv outputs ties
        model.conv1.bias.zero_()
    frames = torch.ones(3, 500, dtype=D64)
    grads = []
    for gemm in (True, False):
        model.zero_grad()
        model.gemm_frontend = gemm
        fast_frontend(model, frames).sum().backward()
        grads.append(model.conv1.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-12)


def test_frontend_gemm_refuses_what_it_cannot_do():
    model = AudioNet()
    with pytest.raises(ValueError, match="M × 500"):
        frontend_gemm(torch.zeros(2, 400), model.frontend_plan, model.conv_blocks())
    with pytest.raises(ValueError, match="no gradient for the frames"):
        frontend_gemm(torch.zeros(2, 500, requires_grad=True), model.frontend_plan,
                      model.conv_blocks())
    # the fast engine falls back to the modules when the frames need a gradient
    frames = torch.randn(2, 500, requires_grad=True)
    fast_frontend(model, frames).sum().backward()
    assert frames.grad is not None and frames.grad[:, :382].abs().sum() > 0
    assert torch.all(frames.grad[:, 382:] == 0)


def test_lstm_recurrence_gradcheck():
    torch.manual_seed(3)
    xg = torch.randn(5, 3, 8, dtype=D64, requires_grad=True)
    w_h = torch.randn(8, 2, dtype=D64, requires_grad=True)
    h0 = torch.randn(3, 2, dtype=D64, requires_grad=True)
    c0 = torch.randn(3, 2, dtype=D64, requires_grad=True)
    assert torch.autograd.gradcheck(lstm_recurrence, (xg, w_h, h0, c0))
    with pytest.raises(ValueError, match="4H"):
        lstm_recurrence(xg[:, :, :7], w_h, h0, c0)


@pytest.mark.parametrize("last_only", [False, True])
def test_fused_layer_equals_autograd_through_every_step(last_only):
    torch.manual_seed(4)
    layer = FastLstmLayer(6, 5).double()
    x = torch.randn(4, 9, 6, dtype=D64)
    lengths = torch.tensor([9, 3, 7, 1])
    state = (torch.randn(4, 5, dtype=D64), torch.randn(4, 5, dtype=D64))
    results = []
    for fused in (True, False):
        layer.zero_grad()
        xx = x.clone().requires_grad_(True)
        s = tuple(t.clone().requires_grad_(True) for t in state)
        h, c = layer(xx, lengths, last_only=last_only, state=s, fused=fused)
        weight = torch.linspace(-1, 1, h.numel(), dtype=D64).view_as(h)
        ((h * weight).sum() + (c * weight.flip(-1)).sum()).backward()
        results.append([h.detach(), c.detach(), xx.grad, s[0].grad, s[1].grad]
                       + [p.grad.clone() for p in layer.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("layers", [2, 3])
def test_wavefront_equals_the_layers_one_after_the_other(layers):
    torch.manual_seed(5)
    stack = [FastLstmLayer(7, 5).double()]
    stack += [FastLstmLayer(5, 5).double() for _ in range(layers - 1)]
    x = torch.randn(4, 9, 7, dtype=D64)
    lengths = torch.tensor([9, 3, 7, 1])
    weight = torch.randn(4, 5, dtype=D64)
    results = []
    for wave in (True, False):
        for layer in stack:
            layer.zero_grad()
        xx = x.clone().requires_grad_(True)
        if wave:
            h = lstm_stack_last(stack, xx, lengths)
        else:
            h = xx
            for layer in stack[:-1]:
                h, _ = layer(h, lengths, fused=False)
            h, _ = stack[-1](h, lengths, last_only=True, fused=False)
        (h * weight).sum().backward()
        results.append([h.detach(), xx.grad] + [p.grad.clone() for layer in stack
                                                for p in layer.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_wavefront_refuses_what_it_cannot_do():
    x, lengths = torch.randn(2, 3, 4), torch.tensor([3, 1])
    with pytest.raises(ValueError, match="at least two"):
        lstm_stack_last([FastLstmLayer(4, 5)], x, lengths)
    with pytest.raises(ValueError, match="H -> H"):
        lstm_stack_last([FastLstmLayer(4, 5), FastLstmLayer(5, 6)], x, lengths)


def _literal(model):
    model.set_engine("taught")  # the modules and the cell, step by step, as chapters 3-5 teach
    return model


@pytest.mark.parametrize("config", [dict(), dict(lstmLayerNum=1),
                                    dict(lstmLayerNum=3, sharedConv=False)],
                         ids=["default", "one-layer", "three-layers"])
def test_default_path_equals_the_literal_model_logits_and_gradients(config):
    torch.manual_seed(6)
    fast = AudioNet(**config).double()
    literal = _literal(AudioNet(**config).double())
    literal.load_state_dict(fast.state_dict())
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 6, 500, generator=g, dtype=D64)
    lengths = torch.tensor([6, 2, 4])
    y = torch.tensor([0, 1, 1])
    grads = []
    for model in (fast, literal):
        logits = model(x, lengths)
        F.cross_entropy(logits, y).backward()
        grads.append([logits.detach()] + [p.grad for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.gpu
@CUDA
@pytest.mark.parametrize("config", [dict(), dict(lstmLayerNum=1),
                                    dict(lstmLayerNum=3, sharedConv=False)],
                         ids=["default", "one-layer", "three-layers"])
def test_default_path_on_cuda_equals_the_literal_model_on_the_cpu(config):
    """The fast path's every piece (GEMM front-end, fused layer, wavefront) on a GPU, float64."""
    torch.manual_seed(8)
    literal = _literal(AudioNet(**config).double())
    fast = AudioNet(**config).to("cuda", D64)
    fast.load_state_dict(literal.state_dict())
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, 7, 500, generator=g, dtype=D64)
    lengths = torch.tensor([7, 2, 5, 1, 6])
    y = torch.tensor([0, 1, 1, 0, 1])
    grads = []
    for model, dev in ((fast, "cuda"), (literal, "cpu")):
        logits = model(x.to(dev), lengths.to(dev))
        F.cross_entropy(logits, y.to(dev)).backward()
        grads.append([logits.detach().cpu()] + [p.grad.cpu() for p in model.parameters()])
    assert next(fast.parameters()).is_cuda
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


@pytest.mark.gpu
@CUDA
def test_speed_functions_on_cuda_in_float32():
    """Chunked front-end (> 256 frames), recurrence and wavefront on a GPU against the CPU."""
    torch.manual_seed(9)
    model = AudioNet()
    frames = torch.randn(600, 500)
    stack = [FastLstmLayer(7, 5), FastLstmLayer(5, 5)]
    x, lengths = torch.randn(4, 9, 7), torch.tensor([9, 3, 7, 1])
    xg, w_h = torch.randn(6, 3, 8), torch.randn(8, 2)
    h0, c0 = torch.randn(3, 2), torch.randn(3, 2)
    with torch.no_grad():
        cpu = [frontend_gemm(frames, model.frontend_plan, model.conv_blocks()),
               lstm_stack_last(stack, x, lengths), lstm_recurrence(xg, w_h, h0, c0)[0]]
        model.cuda()
        for layer in stack:
            layer.cuda()
        gpu = [frontend_gemm(frames.cuda(), model.frontend_plan, model.conv_blocks()),
               lstm_stack_last(stack, x.cuda(), lengths.cuda()),
               lstm_recurrence(xg.cuda(), w_h.cuda(), h0.cuda(), c0.cuda())[0]]
    for a, b in zip(gpu, cpu):
        assert a.is_cuda
        torch.testing.assert_close(a.cpu(), b, rtol=1e-4, atol=1e-5)


def test_training_steps_agree_in_float32():
    """Five Adam steps on the default path and on the literal one end within float32 rounding."""
    states = []
    for make in (lambda m: m, _literal):
        torch.manual_seed(7)
        model = make(AudioNet())
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(1)
        x = torch.randn(4, 8, 500, generator=g)
        lengths, y = torch.tensor([8, 3, 5, 1]), torch.tensor([0, 1, 0, 1])
        for _ in range(5):
            opt.zero_grad()
            F.cross_entropy(model(x, lengths), y).backward()
            opt.step()
        states.append(model.state_dict())
    for name in states[0]:
        torch.testing.assert_close(states[0][name], states[1][name], rtol=1e-4, atol=1e-5)
