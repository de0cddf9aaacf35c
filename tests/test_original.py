"""The faithful re-implementation of the original exercise shows its defects as facts."""
import numpy as np
import pytest
import torch

from emoser.experiments.original import (
    OriginalAudioNet,
    OriginalLSTMLayer,
    last_step_gather,
    last_step_loop,
    original_evaluate,
    original_feature_size,
    original_frames,
    original_prepare,
    original_train,
)
from emoser.nn import AudioNet
from emoser.prep import Normalizer, frame_signal


def _batch(n=3, t=5, d=500, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, t, d, generator=g, dtype=dtype), torch.tensor([t, 2, 4][:n])


def test_original_runs_in_float64():
    x, lengths = _batch()
    out = OriginalAudioNet()(x, lengths)
    assert out.shape == (3, 2) and out.dtype == torch.float64


def test_float32_model_breaks_on_the_float64_zero_state():
    x, lengths = _batch(dtype=torch.float32)
    with pytest.raises(RuntimeError, match="dtype"):
        OriginalAudioNet(dtype=torch.float32)(x, lengths)
    with pytest.raises(RuntimeError):
        OriginalLSTMLayer(4, 3).float()(torch.randn(2, 3, 4))


def _state_on_input_device(model):
    for layer in (model.lstm1, model.lstm2):
        layer.state_on_input_device = True
    return model


def test_state_on_input_device_changes_nothing_on_the_cpu():
    torch.manual_seed(2)
    model = OriginalAudioNet()
    x, lengths = _batch()
    with torch.no_grad():
        before = model(x, lengths)
        after = _state_on_input_device(model)(x, lengths)
    assert torch.equal(before, after)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_original_breaks_on_a_gpu_unless_the_state_follows_the_input():
    torch.manual_seed(2)
    cpu_model = OriginalAudioNet()
    gpu_model = OriginalAudioNet().cuda()
    gpu_model.load_state_dict(cpu_model.state_dict())
    x, lengths = _batch()
    with torch.no_grad():
        with pytest.raises(RuntimeError, match="device"):
            gpu_model(x.cuda(), lengths)  # the original's defect: a CPU zero state
        got = _state_on_input_device(gpu_model)(x.cuda(), lengths)
        expected = cpu_model(x, lengths)
    assert got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), expected, rtol=0, atol=1e-10)


def test_last_step_loop_equals_vectorized_gather():
    h_all = torch.randn(6, 9, 4, dtype=torch.float64)
    lengths = torch.tensor([9, 1, 5, 3, 9, 2])
    expected = torch.stack([h_all[n, lengths[n] - 1] for n in range(6)])
    assert torch.equal(last_step_loop(h_all, lengths), expected)
    assert torch.equal(last_step_gather(h_all, lengths), expected)


def test_same_logits_as_fixed_audionet_with_copied_weights():
    torch.manual_seed(1)
    fixed = AudioNet().double().eval()
    orig = OriginalAudioNet().load_from(fixed)
    x, lengths = _batch(n=3, t=6)
    x[1, 2:] = 7.0  # garbage beyond a sequence's length must not matter for either model
    with torch.no_grad():
        expected = fixed(x, lengths)
        got = orig(x, lengths)
    assert torch.allclose(got, expected, rtol=0, atol=1e-12)
    assert orig.flatSize == fixed.feature_size == 128


def test_load_from_rejects_unshared_conv():
    with pytest.raises(ValueError, match="Conv1d"):
        OriginalAudioNet().load_from(AudioNet(sharedConv=False))


def test_hand_formula_is_right_only_by_luck():
    assert original_feature_size(500) == AudioNet(inDim=500).feature_size
    assert original_feature_size(400) != AudioNet(inDim=400).feature_size
    model = OriginalAudioNet(inDim=400)  # builds fine ...
    with pytest.raises(RuntimeError):  # ... and fails only when data arrive
        model(*_batch(n=2, t=3, d=400))


def test_hard_coded_sizes():
    with pytest.raises(RuntimeError):  # the shared conv is hard-coded 64 -> 64
        OriginalAudioNet(convOutNum=32)(*_batch(n=2, t=3))
    n_default = sum(p.numel() for p in OriginalAudioNet().parameters())
    assert sum(p.numel() for p in OriginalAudioNet(lstmLayerNum=5).parameters()) == n_default


def _toy_corpus():
    rng = np.random.default_rng(0)
    waves = [rng.normal(3.0 * (k % 2), 1.0, 520 + 130 * k).astype(np.float32) for k in range(20)]
    labels = np.array([0] * 10 + [1] * 10)
    return waves, labels, np.arange(0, 20, 3), np.setdiff1d(np.arange(20), np.arange(0, 20, 3))


def test_leakage_flag_uses_test_data_in_the_statistics():
    waves, labels, test_idx, train_idx = _toy_corpus()
    leaky = original_prepare(waves, labels, 100, train_idx=train_idx, test_idx=test_idx)
    clean = original_prepare(waves, labels, 100, train_idx=train_idx, test_idx=test_idx,
                             leak_stats=False)
    assert leaky.mean == pytest.approx(np.concatenate(waves).mean())
    assert clean.mean == pytest.approx(Normalizer.fit([waves[i] for i in train_idx]).mean, rel=1e-6)
    assert abs(leaky.mean - clean.mean) > 1e-3


def test_misaligned_lengths_do_not_belong_to_their_samples():
    waves, labels, test_idx, train_idx = _toy_corpus()
    bad = original_prepare(waves, labels, 100, train_idx=train_idx, test_idx=test_idx)
    good = original_prepare(waves, labels, 100, train_idx=train_idx, test_idx=test_idx,
                            misaligned_lengths=False)
    assert torch.equal(good.lengths_train, good.true_lengths_train)
    assert not torch.equal(bad.lengths_train, bad.true_lengths_train)
    all_lengths = [len(original_frames(w, 100)) for w in waves]
    assert bad.lengths_train.tolist() == all_lengths[:len(train_idx)]  # by position, unsplit set
    assert bad.x_train.shape[1] == max(all_lengths)  # padded to the whole set's longest
    assert bad.x_train.dtype == torch.float64


def test_class_ordered_training_data():
    waves, labels, test_idx, train_idx = _toy_corpus()
    rng = np.random.default_rng(1)
    data = original_prepare(waves, labels, 100, train_idx=rng.permutation(train_idx),
                            test_idx=test_idx)
    y = data.y_train.numpy()
    assert (np.diff(y) >= 0).all() and y[0] != y[-1]  # all of one class, then the other


def test_wrong_last_frame_offset():
    wave = np.arange(1, 251, dtype=np.float64)  # 2 full frames of 100 and 50 samples left
    fixed = frame_signal(wave, 100)
    assert np.array_equal(original_frames(wave, 100, wrong_last_frame=False), fixed)
    wrong = original_frames(wave, 100)
    assert np.array_equal(wrong[:2], fixed[:2])
    assert wrong[2, 0] == 101 and fixed[2, 0] == 201  # tail sliced one frame too early
    assert not np.isin(np.arange(201, 251), wrong).any()  # the true tail is lost


class _Spy(torch.nn.Module):
    """Tiny model(x, lengths) that records training mode and grad mode of each call."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(100, 2, dtype=torch.float64)
        self.calls = []

    def forward(self, x, lengths):
        self.calls.append((self.training, torch.is_grad_enabled()))
        return self.fc(x.mean(1))


def test_training_loop_defects():
    waves, labels, test_idx, train_idx = _toy_corpus()
    data = original_prepare(waves, labels, 100, train_idx=train_idx, test_idx=test_idx)
    spy = _Spy()
    original_train(spy, data, epochs=1, batch_size=5, log=None)
    assert [mode for mode, _ in spy.calls] == [True, False, False]  # eval() inside the loop
    spy.calls.clear()
    original_train(spy, data, epochs=1, batch_size=5, eval_in_loop=False, log=None)
    assert all(mode for mode, _ in spy.calls)
    spy.calls.clear()
    original_evaluate(spy, data.x_test, data.y_test, data.lengths_test)
    assert spy.calls and all(grad for _, grad in spy.calls)  # evaluation records gradients
    spy.calls.clear()
    original_evaluate(spy, data.x_test, data.y_test, data.lengths_test, no_grad=True)
    assert not any(grad for _, grad in spy.calls)
