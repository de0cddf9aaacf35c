"""emoser.nn.kernels.native: the C kernels compute what the PyTorch code of emoser.nn.kernels does.

Every kernel is compared with the PyTorch code it replaces (values and gradients; float64 to
rounding, float32 to a few units in the last place), over shapes that reach every code path
(whole row groups and remainders, channel counts that fill whole vectors or not, odd and even
kernels, 1-3 layers). The build itself: its failures are reported and fall back,
``EMOSER_NATIVE=require`` turns them into errors, and loading the library leaves the process's
floating-point state alone.
"""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from emoser.nn import AudioNet
from emoser.nn import kernels as speed
from emoser.nn.kernels import frontend, frontend_receptive_field, native, recurrence

D64, F32 = torch.float64, torch.float32
TOL = {D64: dict(rtol=1e-12, atol=1e-12), F32: dict(rtol=2e-5, atol=2e-5)}


def _lib(dtype):
    """The kernels; a test of them is skipped only where no C compiler exists at all (CI sets
    EMOSER_NATIVE=require, so there a failed build fails the tests instead)."""
    if native._setting() != "require" and not (shutil.which("cc") or shutil.which("gcc")
                                               or shutil.which("clang")):
        pytest.skip("no C compiler on this machine")
    lib = native.kernels(dtype)
    assert lib is not None, native.status()
    return lib


@pytest.fixture
def use_native(monkeypatch):
    """Switch between the kernels (True) and the PyTorch code (False) inside one test."""
    if native._setting() in ("0", "false", "no", "off"):
        monkeypatch.setenv(native.ENV_NATIVE, "1")

    def switch(on: bool):
        monkeypatch.setenv(native.ENV_NATIVE, "1" if on else "0")
    return switch


# ---------------------------------------------------------------------------------------------
# The LSTM recurrence
# ---------------------------------------------------------------------------------------------
def _recurrence(use_native, on, xg, w, h0, c0, grad_h, grad_c, layers):
    use_native(on)
    steps, n, four = xg.shape
    width = four // 4
    acts = xg.clone()
    h_hist = xg.new_empty(steps + 1, n, width)
    c_hist = torch.empty_like(h_hist)
    h_hist[0], c_hist[0] = h0, c0
    tanh_c = xg.new_empty(steps, n, width)
    recurrence._run_forward(acts, w, h_hist, c_hist, tanh_c, layers)
    grads = recurrence._run_backward(acts, w, h_hist, c_hist, tanh_c, grad_h.clone(), grad_c,
                                     layers)
    return (acts, h_hist, c_hist, tanh_c, *grads)


@pytest.mark.parametrize("dtype", [D64, F32], ids=["float64", "float32"])
@pytest.mark.parametrize("steps,n,hid,layers", [
    (9, 10, 64, 2),    # the course's wavefront: two 5-row groups, whole vectors
    (7, 1, 3, 1),      # one row, a width of 3: only the remainder code
    (12, 7, 20, 1),    # a 5-row group and two single rows
    (5, 11, 16, 3),    # three layers: the zeros before a layer starts
    (4, 12, 64, 1),    # one layer of the course's width, with grad_c
])
def test_lstm_kernels_equal_the_pytorch_recurrence(dtype, steps, n, hid, layers, use_native):
    lib = _lib(dtype)
    assert lib is not None
    torch.manual_seed(steps * n)
    width = hid * layers
    xg = torch.randn(steps + layers - 1, n, 4 * width, dtype=dtype)
    w = torch.randn(width, 4 * width, dtype=dtype) / width ** 0.5
    first = layers == 1  # a wavefront starts from zeros; one layer from any state
    h0 = torch.randn(n, width, dtype=dtype) * first
    c0 = torch.randn(n, width, dtype=dtype) * first
    grad_h = torch.randn(steps + layers - 1, n, width, dtype=dtype)
    grad_c = torch.randn_like(grad_h) if first and n % 2 == 0 else None
    args = (xg, w, h0, c0, grad_h, grad_c, layers)
    fast = _recurrence(use_native, True, *args)
    slow = _recurrence(use_native, False, *args)
    names = ("activations", "h", "c", "tanh(c)", "grad of the gates", "grad of W", "grad of c0")
    for name, a, b in zip(names, fast, slow):
        torch.testing.assert_close(a, b, **TOL[dtype], msg=lambda m: f"{name}: {m}")
    assert fast[1].abs().sum() > 0 and fast[4].abs().sum() > 0  # not all zeros by accident


@pytest.mark.parametrize("dtype", [D64, F32], ids=["float64", "float32"])
def test_lstm_kernels_saturate_without_nan(dtype, use_native):
    """Gate pre-activations of ±100: σ and tanh saturate to 0 and 1 (float32: exp(100) is
    infinite; a sigmoid written as 1 / (1 + exp(-x)) gave NaN under -ffast-math)."""
    _lib(dtype)
    for value in (-100.0, -30.0, 30.0, 100.0):
        xg = torch.full((3, 10, 256), value, dtype=dtype)
        xg[:, :, 192:] *= -1  # the candidate g the other way
        w_h = torch.randn(256, 64, dtype=dtype)
        state = torch.zeros(10, 64, dtype=dtype)
        outs = []
        for on in (True, False):
            use_native(on)
            outs.append(speed.lstm_recurrence(xg, w_h, state, state))
        for a, b in zip(*outs):
            assert torch.isfinite(a).all(), (value, a)
            torch.testing.assert_close(a, b, **TOL[dtype])


def test_lstm_kernels_match_the_wavefront_through_autograd(use_native):
    """lstm_stack_last with the kernels against the same call without them (float64)."""
    _lib(D64)
    torch.manual_seed(3)
    model = AudioNet().double()
    x = torch.randn(6, 9, model.feature_size, dtype=D64, requires_grad=True)
    lengths = torch.tensor([9, 1, 4, 9, 7, 2])
    results = []
    for on in (True, False):
        use_native(on)
        model.zero_grad()
        x.grad = None
        out = speed.lstm_stack_last(model.lstm, x, lengths)
        (out * torch.linspace(-1, 1, out.numel(), dtype=D64).view_as(out)).sum().backward()
        results.append([out.detach(), x.grad.clone()]
                       + [p.grad.clone() for p in model.lstm.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, **TOL[D64])


# ---------------------------------------------------------------------------------------------
# Block 1 of the front-end
# ---------------------------------------------------------------------------------------------
FRONTENDS = [
    dict(),                                             # the course's model: C = 64, K = 5
    dict(convKernelSize=4, inDim=480),                  # an even kernel
    dict(convKernelSize=3, convOutNum=5, inDim=257),    # 5 channels: no whole vector
    dict(convOutNum=20, inDim=300),                     # 20 channels: vectors and a remainder
    dict(convLayerNum=1, inDim=100),                    # block 1 pools into the output
    dict(convKernelSize=17, convLayerNum=2, inDim=600),  # more taps than the kernel takes: PyTorch
]


@pytest.mark.parametrize("dtype", [D64, F32], ids=["float64", "float32"])
@pytest.mark.parametrize("config", FRONTENDS,
                         ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
def test_block1_kernel_equals_the_pytorch_front_end(dtype, config, use_native):
    _lib(dtype)
    torch.manual_seed(1)
    model = AudioNet(**config).to(dtype)
    frames = torch.randn(37, model.inDim, dtype=dtype)
    plan = frontend_receptive_field(model.inDim, model.convLayerNum, model.convKernelSize)
    weight = torch.randn(37, model.feature_size, dtype=dtype)
    results = []
    for on in (True, False):
        use_native(on)
        model.zero_grad()
        out = speed.frontend_gemm(frames, plan, model.conv_blocks())
        (out * weight).sum().backward()
        results.append([out.detach()]
                       + [p.grad.clone() for p in model.parameters() if p.grad is not None])
    assert len(results[0]) == len(results[1]) > 2
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, **TOL[dtype])


def _pool_and_unpool(use_native, on: bool, z, grad, pooled: int, m: int, c: int):
    """ReLU + max pooling of ``z`` and its backward, with the kernels on or off."""
    use_native(on)
    a, slots = frontend._input_buffer(m, pooled, c, z)
    take_left = z.new_empty(pooled, m, c)
    frontend._pool_into(z, slots, take_left)
    grad_slots = grad.view(-1, m, 2, c).permute(0, 2, 1, 3)
    grad_z = torch.empty_like(z)
    frontend._unpool_from(grad_slots, slots, take_left, grad_z)
    return a, take_left, grad_z


@pytest.mark.parametrize("pooled", [11, 2, 5])
def test_pool_kernels_give_the_same_bits_as_the_pytorch_code(pooled, use_native):
    """ReLU + max pooling of blocks 2, 3: comparisons and one multiplication by 0 or 1, so the
    kernel must match the PyTorch code exactly, ties (a tenth of the pairs) and odd counts
    included."""
    _lib(F32)
    torch.manual_seed(pooled)
    m, c = 13, 64
    z = torch.randn(2 * pooled * m, c)
    pairs, ties = z.view(pooled, 2, m, c), torch.rand(pooled, m, c) < 0.1
    pairs[:, 1][ties] = pairs[:, 0][ties]
    grad = torch.randn((pooled + 1) // 2 * m, 2 * c)
    results = [_pool_and_unpool(use_native, on, z, grad, pooled, m, c) for on in (True, False)]
    for a, b in zip(*results):
        assert torch.equal(a, b)
    assert results[0][1].sum() > 0 and (results[0][0] == 0).any()  # both sides win; ReLU clips


def test_block1_kernel_routes_ties_to_the_even_output_as_max_pooling_does(use_native):
    """Constant frames make every even and odd conv output of block 1 equal: the gradient must
    go to the even one (max_pool1d's first element), in the kernel as in the PyTorch code."""
    _lib(D64)
    torch.manual_seed(2)
    model = AudioNet(convLayerNum=1, inDim=100).double()
    frames = torch.ones(3, 100, dtype=D64) * torch.tensor([[0.5], [-1.0], [2.0]], dtype=D64)
    plan = frontend_receptive_field(100, 1, model.convKernelSize)
    grads = []
    for on in (True, False):
        use_native(on)
        model.zero_grad()
        speed.frontend_gemm(frames, plan, model.conv_blocks()).sum().backward()
        grads.append(model.conv_blocks()[0].weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], **TOL[D64])
    model.zero_grad()
    model.frontend(frames).sum().backward()  # the modules themselves
    torch.testing.assert_close(grads[0], model.conv_blocks()[0].weight.grad, **TOL[D64])


def test_training_with_and_without_the_kernels_agrees_in_float32(use_native):
    """Ten Adam steps of the default model, kernels on and off: the same losses to float32
    rounding (the kernels sum in another order, nothing else)."""
    _lib(F32)
    torch.manual_seed(4)
    x = torch.randn(10, 12, 500)
    lengths = torch.tensor([12, 3, 7, 12, 1, 9, 5, 11, 2, 8])
    y = torch.tensor([0, 1] * 5)
    losses = {}
    for on in (True, False):
        use_native(on)
        torch.manual_seed(5)
        model = AudioNet()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        run = []
        for _ in range(10):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x, lengths), y)
            loss.backward()
            opt.step()
            run.append(loss.item())
        losses[on] = run
    assert np.allclose(losses[True], losses[False], rtol=1e-4, atol=1e-5), losses
    assert losses[True][-1] < losses[True][0]  # it trains


# ---------------------------------------------------------------------------------------------
# NaN and infinities: the kernels propagate them exactly as the PyTorch code does
# ---------------------------------------------------------------------------------------------
def _assert_same_specials(a, b, dtype, what=""):
    """NaN, +inf and -inf in the same places; the finite numbers equal to rounding."""
    for name, test in (("NaN", torch.isnan), ("+inf", torch.isposinf), ("-inf", torch.isneginf)):
        assert torch.equal(test(a), test(b)), (
            f"{what}: {name} at {test(a).sum().item()} places with the kernels, "
            f"{test(b).sum().item()} without; differ at "
            f"{(test(a) != test(b)).nonzero()[:5].tolist()}")
    finite = torch.isfinite(a)
    torch.testing.assert_close(a[finite], b[finite], **TOL[dtype], msg=lambda m: f"{what}: {m}")


def _model_run(use_native, on, model, x, lengths):
    """Outputs and the gradients of all parameters, backward from the finite outputs only."""
    use_native(on)
    model.zero_grad()
    out = model(x, lengths)
    finite = torch.isfinite(out).all(1)
    weight = torch.linspace(-1, 1, 2 * int(finite.sum()), dtype=out.dtype).view(-1, 2)
    (out[finite] * weight).sum().backward()
    return [out.detach()] + [p.grad.clone() for p in model.parameters()]


SPECIALS = [
    ("input sample NaN", "x", float("nan")),
    ("input sample +inf", "x", float("inf")),
    ("input sample -inf", "x", float("-inf")),
    ("conv 1 weight NaN", "conv1", float("nan")),
    ("conv 3 weight NaN", "conv3", float("nan")),
    ("conv 3 weight +inf", "conv3", float("inf")),
    ("LSTM weight NaN", "lstm", float("nan")),
]


@pytest.mark.parametrize("dtype", [D64, F32], ids=["float64", "float32"])
@pytest.mark.parametrize("what,where,value", SPECIALS, ids=[s[0] for s in SPECIALS])
def test_nan_and_inf_propagate_through_the_model_as_in_the_pytorch_code(dtype, what, where, value,
                                                                       use_native):
    """One NaN or infinite number in a clip or in a weight: the same outputs and gradients are
    NaN (or ±inf) with the kernels as without them. With -ffast-math and comparisons that drop
    a NaN (`e >= o ? e : o`, `x > 0 ? x : 0`) the kernels turned a NaN clip into a finite answer."""
    _lib(dtype)
    torch.manual_seed(6)
    model = AudioNet(convLayerNum=3, sharedConv=False).to(dtype)
    x = torch.randn(4, 7, 500, dtype=dtype)
    lengths = torch.tensor([7, 3, 5, 6])
    with torch.no_grad():
        if where == "x":
            x[1, 2, 137] = value  # one sample of clip 1
        elif where == "lstm":
            next(model.lstm.parameters()).view(-1)[5] = value
        else:
            conv = model.conv_blocks()[0 if where == "conv1" else -1]
            conv.weight.view(-1)[3] = value
    fast = _model_run(use_native, True, model, x, lengths)
    slow = _model_run(use_native, False, model, x, lengths)
    names = ["output"] + [n for n, _ in model.named_parameters()]
    for name, a, b in zip(names, fast, slow):
        _assert_same_specials(a, b, dtype, f"{what}, {name}")
    if where in ("x", "conv1") and math.isnan(value):  # a NaN reaches the output
        assert torch.isnan(fast[0]).any(), fast[0]
    if where == "x":  # the other clips are not touched
        assert torch.isfinite(fast[0][[0, 2, 3]]).all()


@pytest.mark.parametrize("dtype", [D64, F32], ids=["float64", "float32"])
def test_pool_kernels_keep_nan_and_inf_bit_for_bit(dtype, use_native):
    """ReLU + max pooling of blocks 2-3 on pairs with NaN, ±inf and ties of them: the kernel's
    outputs, masks and gradients equal the PyTorch code's, NaN for NaN."""
    _lib(dtype)
    torch.manual_seed(7)
    pooled, m, c = 5, 3, 20
    specials = torch.tensor([math.nan, math.inf, -math.inf, 0.0, -1.0, 1.0], dtype=dtype)
    z = specials[torch.randint(0, 6, (2 * pooled * m, c))]
    grad = torch.randn((pooled + 1) // 2 * m, 2 * c, dtype=dtype)
    grad.view(-1)[::7] = float("inf")
    grad.view(-1)[3::11] = float("nan")
    results = [_pool_and_unpool(use_native, on, z, grad, pooled, m, c) for on in (True, False)]
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)
    out = results[0][0]
    assert torch.isnan(out).any() and torch.isposinf(out).any()


@pytest.mark.parametrize("dtype", [D64, F32], ids=["float64", "float32"])
def test_block1_kernel_keeps_nan_and_inf(dtype, use_native):
    """Block 1 on frames with a NaN, a +inf and a -inf sample, and a kernel weight that is NaN."""
    _lib(dtype)
    torch.manual_seed(8)
    model = AudioNet(convLayerNum=1, inDim=100).to(dtype)
    frames = torch.randn(6, 100, dtype=dtype)
    frames[1, 10], frames[3, 40], frames[4, 60] = float("nan"), float("inf"), float("-inf")
    plan = frontend_receptive_field(100, 1, model.convKernelSize)
    weight = torch.randn(6, model.feature_size, dtype=dtype)
    for nan_weight in (False, True):
        if nan_weight:
            with torch.no_grad():
                model.conv_blocks()[0].weight[5, 0, 2] = float("nan")
        results = []
        for on in (True, False):
            use_native(on)
            model.zero_grad()
            out = speed.frontend_gemm(frames, plan, model.conv_blocks())
            (out * weight).sum().backward()
            conv = model.conv_blocks()[0]
            results.append([out.detach(), conv.weight.grad.clone(), conv.bias.grad.clone()])
        for name, a, b in zip(("features", "grad of the kernel", "grad of the bias"), *results):
            _assert_same_specials(a, b, dtype, f"NaN weight {nan_weight}, {name}")
        features = results[0][0]
        assert torch.isnan(features[1]).any() and torch.isposinf(features[3]).any()
        assert bool(torch.isnan(features[0]).any()) == nan_weight  # frame 0: only the NaN weight


@pytest.mark.parametrize("dtype", [D64, F32], ids=["float64", "float32"])
def test_lstm_kernels_keep_nan_and_inf(dtype, use_native):
    """The recurrence with ±inf and NaN gate inputs and one NaN recurrent weight."""
    _lib(dtype)
    torch.manual_seed(9)
    steps, n, width = 6, 7, 16
    xg = torch.randn(steps, n, 4 * width, dtype=dtype)
    xg[1, 0, 3], xg[2, 1, 20], xg[0, 2, 50] = float("inf"), float("-inf"), float("nan")
    xg[3, 3, 60] = float("inf")  # the candidate g of a unit
    w = torch.randn(width, 4 * width, dtype=dtype) / 4
    h0, c0 = torch.zeros(n, width, dtype=dtype), torch.zeros(n, width, dtype=dtype)
    grad_h = torch.randn(steps, n, width, dtype=dtype)
    for nan_weight in (False, True):
        if nan_weight:
            w[4, 9] = float("nan")
        fast = _recurrence(use_native, True, xg, w, h0, c0, grad_h, None, 1)
        slow = _recurrence(use_native, False, xg, w, h0, c0, grad_h, None, 1)
        names = ("activations", "h", "c", "tanh(c)", "grad of the gates", "grad of W", "grad of c0")
        for name, a, b in zip(names, fast, slow):
            _assert_same_specials(a, b, dtype, f"NaN weight {nan_weight}, {name}")
        assert torch.isnan(fast[1]).any()
        assert nan_weight or torch.isfinite(fast[1][:, 4:]).all()  # rows without a special number


# ---------------------------------------------------------------------------------------------
# The build
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def fresh_state(monkeypatch):
    """A module without loaded kernels, restored afterwards."""
    monkeypatch.setattr(native, "_loaded", {})
    monkeypatch.setattr(native, "_failure", None)


def test_a_failing_compiler_is_reported_and_the_pytorch_code_runs(tmp_path, monkeypatch,
                                                                   fresh_state):
    monkeypatch.setenv("CC", "false")  # a "compiler" that always fails
    monkeypatch.setenv("EMOSER_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv(native.ENV_NATIVE, "1")
    with pytest.raises(native.NativeBuildError, match="compiling native_kernels.c failed"):
        native.build(tmp_path / "native")
    with pytest.warns(RuntimeWarning, match="not available, using the PyTorch code"):
        assert native.kernels(F32) is None
    assert "not available" in native.status()
    # no half-made library is left behind
    assert (not list((tmp_path / "native").rglob("*.so"))
            and not list((tmp_path / "native").rglob("*.tmp")))
    # and the front-end still computes (by the PyTorch code)
    model = AudioNet()
    plan = frontend_receptive_field(500, 3, 5)
    out = speed.frontend_gemm(torch.randn(4, 500), plan, model.conv_blocks())
    assert out.shape == (4, model.feature_size)


def test_require_turns_a_failed_build_into_an_error(tmp_path, monkeypatch, fresh_state):
    monkeypatch.setenv("CC", "false")
    monkeypatch.setenv("EMOSER_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv(native.ENV_NATIVE, "require")
    with pytest.raises(native.NativeBuildError):
        native.kernels(F32)


def test_off_means_off(monkeypatch):
    monkeypatch.setenv(native.ENV_NATIVE, "0")
    assert not native.enabled()
    assert native.kernels(F32) is None
    assert native.status().startswith("fused CPU kernels: off")
    monkeypatch.setenv(native.ENV_NATIVE, "1")
    assert native.kernels(torch.float16) is None  # other dtypes never reach the kernels


def test_override_wins_over_the_environment_and_is_undone(monkeypatch):
    monkeypatch.setenv(native.ENV_NATIVE, "1")
    with native.override(False):
        assert not native.enabled() and native.kernels(F32) is None
        assert "override(False)" in native.status()
        with native.override(True):
            assert native.enabled()
        assert not native.enabled()
    assert native.enabled()
    monkeypatch.setenv(native.ENV_NATIVE, "0")
    with native.override(True):
        assert native.enabled()
    assert not native.enabled()


def test_build_is_cached_and_reused(tmp_path, fresh_state):
    _lib(F32)
    first = native.build(tmp_path)
    libs = sorted(tmp_path.rglob("*.so"))
    assert [p.name for p in libs] == ["kernels_double.so", "kernels_float.so"]
    stamps = [p.stat().st_mtime_ns for p in libs]
    second = native.build(tmp_path)  # found in the cache: not compiled again
    assert [p.stat().st_mtime_ns for p in sorted(tmp_path.rglob("*.so"))] == stamps
    assert set(first) == set(second) == {F32, D64}


def test_loading_the_kernels_keeps_denormal_numbers():
    """-ffast-math at link time would make the whole process flush denormals to zero."""
    _lib(F32)
    tiny = np.array([1e-40], dtype=np.float32)  # a float32 denormal
    assert (tiny * np.float32(1.0))[0] > 0
    assert (torch.tensor([1e-40]) * 1.0).item() > 0


def test_default_flags_are_ieee():
    flags = native.CFLAGS + native.LDFLAGS + sum(native._ARCH_FLAGS, ())
    assert "-ffast-math" not in flags and "-ffp-contract=off" in native.CFLAGS
    assert not any(f.startswith(("-ffinite-math", "-funsafe-math", "-Ofast")) for f in flags)
    assert native._ARCH_FLAGS[-1] == ()  # the portable build is the last resort


def test_the_native_build_gives_the_same_bits_as_the_portable_build(tmp_path, monkeypatch,
                                                                     fresh_state, use_native):
    """-march=native only widens the vectors: with -ffp-contract=off and without -ffast-math the
    model's outputs and gradients are bit for bit those of the baseline build."""
    _lib(F32)
    results = []
    for arch in (native._ARCH_FLAGS, ((),)):
        monkeypatch.setattr(native, "_ARCH_FLAGS", arch)
        monkeypatch.setattr(native, "_loaded", {})
        monkeypatch.setenv("EMOSER_CACHE_DIR", str(tmp_path))
        use_native(True)
        run = []
        for dtype in (F32, D64):
            torch.manual_seed(10)
            model = AudioNet().to(dtype)
            x = torch.randn(10, 30, 500, dtype=dtype)
            run += _model_run(use_native, True, model, x, torch.randint(1, 31, (10,)))
        results.append(run)
    assert len(list(tmp_path.rglob("kernels_float.so"))) == 2  # two builds
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_the_cache_key_changes_with_the_flags(tmp_path, monkeypatch, fresh_state):
    """A library built with other flags (the old -ffast-math build) is never reused."""
    _lib(F32)
    native.build(tmp_path)
    monkeypatch.setattr(native, "CFLAGS", ("-O3", "-ffast-math", "-fPIC"))
    native.build(tmp_path)
    folders = sorted(p.parent for p in tmp_path.rglob("kernels_float.so"))
    assert len(folders) == 2 and folders[0] != folders[1]


def test_each_library_has_its_size_and_sha256_recorded(tmp_path, fresh_state):
    _lib(F32)
    native.build(tmp_path)
    for lib in tmp_path.rglob("*.so"):
        stamp = json.loads(lib.with_name(lib.name + ".json").read_text())
        assert stamp == {"bytes": lib.stat().st_size, "sha256": native._file_stamp(lib)["sha256"]}
        assert native._intact(lib)


_STATUS = "import torch; from emoser.nn.kernels import native; print(native.status())"


def _status_in_subprocess(cache: Path, **env):
    """What a new process says about the kernels, with the cache in ``cache``."""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "EMOSER_CACHE_DIR": str(cache), native.ENV_NATIVE: "1",
           "PYTHONPATH": str(root), **env}
    return subprocess.run([sys.executable, "-c", _STATUS], env=env, capture_output=True,
                          text=True, timeout=600, cwd=root, check=False)


def _truncate_cached_library(cache: Path) -> Path:
    (lib,) = cache.glob("native/*/kernels_float.so")
    with open(lib, "r+b") as fh:
        fh.truncate(lib.stat().st_size // 2)
    return lib


def test_a_truncated_library_in_the_cache_is_rebuilt_not_loaded(tmp_path):
    """Loading a truncated .so crashed every later process with SIGBUS (exit status -7)."""
    _lib(F32)
    first = _status_in_subprocess(tmp_path)
    assert first.returncode == 0 and "compiled and in use" in first.stdout, first.stderr
    lib = _truncate_cached_library(tmp_path)
    again = _status_in_subprocess(tmp_path)
    assert again.returncode == 0, (again.returncode, again.stderr)
    assert "compiled and in use" in again.stdout
    assert native._intact(lib)  # rebuilt whole


def test_a_truncated_library_that_cannot_be_rebuilt_falls_back_or_fails_in_one_line(tmp_path):
    _lib(F32)
    assert _status_in_subprocess(tmp_path).returncode == 0
    lib = _truncate_cached_library(tmp_path)
    # the same compiler (the same cache key), now failing on every file
    broken = tmp_path / "broken-cc"
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    broken.write_text(f'#!/bin/sh\n[ "$1" = --version ] && exec {cc} --version\nexit 1\n')
    broken.chmod(0o755)
    fallback = _status_in_subprocess(tmp_path, CC=str(broken))
    assert fallback.returncode == 0, (fallback.returncode, fallback.stderr)
    assert "fused CPU kernels: not available" in fallback.stdout
    warning = [line for line in fallback.stderr.splitlines() if "RuntimeWarning" in line]
    assert len(warning) == 1 and f"{lib} is damaged" in warning[0], fallback.stderr
    required = _status_in_subprocess(tmp_path, CC=str(broken), **{native.ENV_NATIVE: "require"})
    assert required.returncode == 1, (required.returncode, required.stderr)
    errors = [line for line in required.stderr.splitlines()
              if line.startswith("emoser.nn.kernels.native.NativeBuildError")]
    assert len(errors) == 1 and f"{lib} is damaged" in errors[0], required.stderr
