"""AudioNet: shapes, parameter count, padding invariance, dtypes, front-end limits."""

import pytest
import torch
import torch.nn.functional as F

from emoser.nn import (
    AudioNet,
    FastLstmLayer,
    LstmCell,
    LstmLayer,
    describe_shapes,
    min_frame_length,
    relu_max_pool2,
)
from emoser.nn.kernels import engine as engine_module


def _batch(n=3, t=6, d=500, lengths=(6, 2, 4), dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, t, d, generator=g, dtype=dtype)
    lengths = torch.tensor(lengths)
    for k, length in enumerate(lengths.tolist()):
        x[k, length:] = 0
    return x, lengths


def test_default_feature_size_and_parameter_count():
    model = AudioNet()
    assert model.feature_size == 128  # 500 -> 250 -> 123 -> 61 -> 29 -> 14 -> 5 -> 2; 64 * 2
    conv1 = 64 * 1 * 5 + 64
    conv_shared = 64 * 64 * 5 + 64  # one module, applied twice
    lstm1 = 4 * ((128 + 64) * 64 + 64)  # four gates, each (F + H) -> H
    lstm2 = 4 * ((64 + 64) * 64 + 64)
    fc = 64 * 2 + 2
    assert (sum(p.numel() for p in model.parameters()) == conv1 + conv_shared + lstm1 + lstm2 + fc
            == 103_490)
    unshared = AudioNet(sharedConv=False)
    assert sum(p.numel() for p in unshared.parameters()) == 103_490 + conv_shared


def test_shared_conv_is_one_module():
    shared = AudioNet().conv_blocks()
    assert shared[1] is shared[2] and shared[0] is not shared[1]
    own = AudioNet(sharedConv=False).conv_blocks()
    assert own[1] is not own[2]


@pytest.mark.parametrize("d", [320, 500, 960])
@pytest.mark.parametrize("k", [3, 5, 7])
def test_output_shapes_or_clear_error(d, k):
    minimum = min_frame_length(3, k)
    if d < minimum:  # 320 with kernel 7 (minimum 338)
        with pytest.raises(ValueError, match=f"minimum frame length is {minimum}"):
            AudioNet(inDim=d, convKernelSize=k)
        return
    model = AudioNet(numClass=3, inDim=d, convKernelSize=k, convOutNum=8, hiddenSize=6)
    assert model.feature_size % 8 == 0 and model.feature_size >= 8
    x, lengths = _batch(d=d)
    assert model(x, lengths).shape == (3, 3)


@pytest.mark.parametrize("layers, k", [(3, 5), (3, 3), (3, 7), (2, 5), (1, 5), (4, 3)])
def test_min_frame_length_is_tight(layers, k):
    minimum = min_frame_length(layers, k)
    AudioNet(inDim=minimum, convLayerNum=layers, convKernelSize=k, convOutNum=4, hiddenSize=4)
    with pytest.raises(ValueError, match=str(minimum)):
        AudioNet(inDim=minimum - 1, convLayerNum=layers, convKernelSize=k, convOutNum=4,
                 hiddenSize=4)


def test_min_frame_length_known_answers():
    assert min_frame_length() == 254
    assert min_frame_length(3, 7) == 338
    assert min_frame_length(1, 5) == 14


@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
def test_padding_invariance(dtype, atol):
    torch.manual_seed(0)
    model = AudioNet().to(dtype)
    x, lengths = _batch(dtype=dtype)
    longer = torch.cat([x, torch.zeros(3, 20, 500, dtype=dtype)], dim=1)
    torch.testing.assert_close(model(x, lengths), model(longer, lengths), rtol=0, atol=atol)
    # padded frames never reach the CNN: garbage there changes nothing
    garbage = longer.clone()
    garbage[1, 2:] = float("nan")
    torch.testing.assert_close(model(x, lengths), model(garbage, lengths), rtol=0, atol=atol)


@pytest.mark.parametrize("engine, gemm", [("taught", False), ("fast", True), ("fast", False)])
def test_only_valid_frames_enter_the_cnn(engine, gemm, monkeypatch):
    model = AudioNet(engine=engine)
    model.gemm_frontend = gemm
    seen = []
    if engine == "taught":
        frontend = model.frontend
        monkeypatch.setattr(model, "frontend", lambda frames: seen.append(frames.shape[0])
                            or frontend(frames))
    else:
        fast = engine_module.fast_frontend
        monkeypatch.setattr(engine_module, "fast_frontend", lambda net, frames:
                            seen.append(frames.shape[0]) or fast(net, frames))
    x, lengths = _batch(t=30)
    model(x, lengths)
    assert seen == [int(lengths.sum())]


def test_matches_a_plain_reference_computation():
    """Per-sequence, unpadded, written out by hand: CNN on each frame, LSTM loop, last step."""
    torch.manual_seed(1)
    model = AudioNet(sharedConv=False).double()
    x, lengths = _batch(dtype=torch.float64)
    logits = model(x, lengths)
    for k, length in enumerate(lengths.tolist()):
        y = F.avg_pool1d(x[k, :length].unsqueeze(1), 2)
        for conv in [model.conv1, *model.conv_rest]:
            y = F.max_pool1d(F.relu(conv(y)), 2)
        seq = y.flatten(1)
        for layer in model.lstm:
            h = c = torch.zeros(model.hiddenSize, dtype=torch.float64)
            outs = []
            for t in range(length):
                h, c = layer.cell(seq[t:t + 1], (h[None], c[None]))
                h, c = h[0], c[0]
                outs.append(h)
            seq = torch.stack(outs)
        expected = model.fc(torch.relu(seq[-1]))
        torch.testing.assert_close(logits[k], expected, rtol=0, atol=1e-12)


def _literal_relu_max_pool(y):
    return F.max_pool1d(F.relu(y), 2, 2)


@pytest.mark.parametrize("length", [2, 7, 122, 123])
@pytest.mark.parametrize("ties", [False, True])
def test_relu_max_pool2_is_relu_then_max_pooling(length, ties):
    """Same values and exactly the same gradients as the literal ops, odd lengths and ties
    included."""
    gen = torch.Generator().manual_seed(length)
    y = torch.randn(5, 4, length, generator=gen)
    if ties:  # small integers: many equal pairs, many zeros and negative pairs
        y = torch.randint(-2, 3, (5, 4, length), generator=gen).float()
    weight = torch.randn(5, 4, length // 2, generator=gen)
    results = []
    for pool in (relu_max_pool2, _literal_relu_max_pool):
        x = y.clone().requires_grad_(True)
        out = pool(x)
        (out * weight).sum().backward()
        results.append((out.detach(), x.grad))
    (out_fast, grad_fast), (out_ref, grad_ref) = results
    assert torch.equal(out_fast, out_ref)
    assert torch.equal(grad_fast, grad_ref)


def test_relu_max_pool2_gradcheck_and_errors():
    y = torch.randn(2, 3, 9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(relu_max_pool2, (y,))
    with pytest.raises(ValueError, match="at least 2 samples"):
        relu_max_pool2(torch.zeros(2, 3, 1))


def test_training_is_bitwise_the_same_as_with_the_literal_ops():
    """fast_pool changes no number: two training steps give identical weights."""
    def train(fast_pool):
        torch.manual_seed(0)
        model = AudioNet(hiddenSize=16, convOutNum=8)
        model.gemm_frontend = False  # fast_pool belongs to the module front-end
        model.fast_pool = fast_pool
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        x, lengths = _batch()
        for _ in range(2):
            optimizer.zero_grad()
            F.cross_entropy(model(x, lengths), torch.tensor([0, 1, 1])).backward()
            optimizer.step()
        return model.state_dict()

    fast, literal = train(True), train(False)
    assert all(torch.equal(fast[name], literal[name]) for name in fast)


@pytest.mark.parametrize("config", [dict(), dict(lstmLayerNum=1, sharedConv=False)])
def test_engines_compute_the_same_function_with_the_same_parameters(config):
    """engine="fast" against engine="taught": same state_dict keys, and in float64 the same
    logits and gradients; set_engine switches in place, parameters untouched."""
    torch.manual_seed(4)
    fast = AudioNet(**config).double()
    torch.manual_seed(4)
    taught = AudioNet(engine="taught", **config).double()
    assert (fast.engine, taught.engine) == ("fast", "taught")
    assert all(type(layer) is LstmLayer for layer in taught.lstm)
    assert all(type(layer) is FastLstmLayer for layer in fast.lstm)
    assert list(fast.state_dict()) == list(taught.state_dict())  # the same seed, the same init
    assert all(torch.equal(a, b) for a, b in zip(fast.state_dict().values(),
                                                 taught.state_dict().values()))
    x, lengths = _batch(dtype=torch.float64)
    y = torch.tensor([0, 1, 1])
    results = []
    for model in (fast, taught):
        logits = model(x, lengths)
        F.cross_entropy(logits, y).backward()
        results.append([logits.detach()] + [p.grad for p in model.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    params = [id(p) for p in fast.parameters()]
    fast.set_engine("taught")
    assert fast.engine == "taught" and all(type(m) is LstmLayer for m in fast.lstm)
    assert [id(p) for p in fast.parameters()] == params
    torch.testing.assert_close(fast(x, lengths), results[0][0], rtol=0, atol=1e-12)
    fast.set_engine("fast")
    torch.testing.assert_close(fast(x, lengths), results[0][0], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="engine"):
        fast.set_engine("turbo")


def test_the_fast_engine_refuses_another_cell():
    class Other(LstmCell):
        pass

    model = AudioNet(engine="taught", cell=Other, hiddenSize=8, convOutNum=4)
    assert all(type(layer.cell) is Other for layer in model.lstm)
    x, lengths = _batch()
    assert model(x, lengths).shape == (3, 2)
    with pytest.raises(ValueError, match="LstmCell only"):
        model.set_engine("fast")
    with pytest.raises(ValueError, match="LstmCell only"):
        AudioNet(cell=Other)


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_lstm_layer_num_is_used(layers):
    model = AudioNet(lstmLayerNum=layers, hiddenSize=16, convOutNum=8)
    assert len(model.lstm) == layers
    assert all(isinstance(m, LstmLayer) for m in model.lstm)
    assert model.lstm[0].input_size == model.feature_size == 16
    assert all(m.input_size == 16 and m.hidden_size == 16 for m in model.lstm[1:])
    x, lengths = _batch()
    model(x, lengths).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.lstm.parameters())


def test_dtype_mismatch_and_bad_input_are_clear_errors():
    model = AudioNet()
    x, lengths = _batch()
    with pytest.raises(ValueError, match="dtype"):
        model(x.double(), lengths)
    with pytest.raises(ValueError, match="500"):
        model(x[..., :400], lengths)
    with pytest.raises(ValueError, match="lengths"):
        model(x, torch.tensor([7, 1, 1]))


def test_float64_model_and_training_step():
    torch.manual_seed(2)
    model = AudioNet().double()
    x, lengths = _batch(dtype=torch.float64)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    y = torch.tensor([0, 1, 1])
    before = F.cross_entropy(model(x, lengths), y)
    for _ in range(3):
        opt.zero_grad()
        loss = F.cross_entropy(model(x, lengths), y)
        loss.backward()
        opt.step()
    assert loss.dtype == torch.float64
    assert F.cross_entropy(model(x, lengths), y) < before


@pytest.mark.parametrize("engine", ["fast", "taught"])
def test_describe_shapes_default(engine):
    x, lengths = _batch()
    model = AudioNet(engine=engine)
    stages = describe_shapes(model, x, lengths)
    assert model.engine == engine
    shapes = [s for _, s in stages]
    m = int(lengths.sum())
    assert shapes == [
        (3, 6, 500), (m, 1, 500), (m, 1, 250), (m, 64, 123), (m, 64, 61), (m, 64, 29), (m, 64, 14),
        (m, 64, 5), (m, 64, 2), (m, 128), (3, 6, 128), (3, 6, 64), (3, 64), (3, 2),
    ]
    assert all(isinstance(name, str) and name for name, _ in stages)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_audionet_on_cuda(dtype):
    torch.manual_seed(3)
    cpu_model = AudioNet().to(dtype)
    gpu_model = AudioNet().to("cuda", dtype)
    gpu_model.load_state_dict(cpu_model.state_dict())
    x, lengths = _batch(dtype=dtype)
    out = gpu_model(x.cuda(), lengths.cuda())
    assert out.device.type == "cuda" and out.dtype == dtype
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    cpu_out = cpu_model(x, lengths)
    torch.testing.assert_close(out.cpu(), cpu_out, rtol=0, atol=tol)
    y = torch.tensor([0, 1, 1])
    F.cross_entropy(out, y.cuda()).backward()  # the default path's backward passes, on CUDA
    F.cross_entropy(cpu_out, y).backward()
    for p, q in zip(cpu_model.parameters(), gpu_model.parameters()):
        torch.testing.assert_close(q.grad.cpu(), p.grad, rtol=tol, atol=tol)
    longer = torch.cat([x, torch.zeros(3, 20, 500, dtype=dtype)], dim=1).cuda()
    torch.testing.assert_close(gpu_model(longer, lengths.cuda()), out, rtol=0, atol=tol)
