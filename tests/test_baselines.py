"""Baselines (emoser.experiments.baselines): known answers on synthetic recordings."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from emoser.experiments import baselines
from emoser.nn import AudioNet
from emoser.prep import stratified_split
from emoser.training import RECIPE

RATE = 8000


def _tone(freq: float, seconds: float = 0.5, phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return 0.5 * np.sin(2 * np.pi * freq * t + phase)


def _tones(low: float, high: float, n: int, rng) -> SimpleNamespace:
    """``n`` tones per class: class 0 near ``low`` Hz, class 1 near ``high`` Hz."""
    waves, labels = [], []
    for k in range(n):
        for label, f in ((0, low), (1, high)):
            waves.append(_tone(f * (1 + 0.02 * rng.standard_normal()), phase=rng.uniform(0, 6)))
            labels.append(label)
    return SimpleNamespace(waves=waves, labels=np.array(labels), rate=RATE, classes=("lo", "hi"))


def test_median_pitch_of_two_tones_is_their_frequency():
    f0 = baselines.median_pitch([_tone(150.0), _tone(300.0)], RATE, frame_length=1024)
    assert f0 == pytest.approx([150.0, 300.0], rel=0.02)


def test_pitch_threshold_separates_low_from_high_tones_on_every_split():
    data = _tones(150.0, 300.0, 10, np.random.default_rng(0))
    spreads = baselines.run_baselines(data, seeds=range(3), which=("pitch",), log=None)
    runs = spreads["pitch"].results
    assert [r.accuracy for r in runs] == [1.0, 1.0, 1.0]
    # the threshold lies between the two classes' pitches
    tree = runs[0].model[-1]
    assert 150.0 * 1.1 < tree.tree_.threshold[0] < 300.0 * 0.9


def test_pitch_threshold_is_at_chance_when_the_classes_share_a_pitch():
    rng = np.random.default_rng(1)
    data = _tones(200.0, 200.0, 20, rng)
    spreads = baselines.run_baselines(data, seeds=range(4), which=("pitch",), log=None)
    assert spreads["pitch"].mean < 0.8


def test_splits_are_the_networks_splits():
    data = _tones(150.0, 300.0, 10, np.random.default_rng(0))
    spreads = baselines.run_baselines(data, seeds=[3], which=("pitch",), log=None)
    _, test = stratified_split(data.labels, test_size=0.3, seed=3)
    assert np.array_equal(spreads["pitch"].results[0].test_idx, test)


def test_given_indices_train_on_one_group_and_test_on_the_other():
    data = _tones(150.0, 300.0, 10, np.random.default_rng(0))
    first, second = np.arange(0, 10), np.arange(10, 20)
    spreads = baselines.run_baselines(data, seeds=[0], which=("pitch",), log=None,
                                      indices=lambda s: (first, np.array([0, 1]), second))
    run = spreads["pitch"].results[0]
    assert np.array_equal(run.test_idx, second) and run.accuracy == 1.0


def test_mfcc_features_and_logistic_regression_tell_bright_from_dark_noise():
    rng = np.random.default_rng(0)
    waves, labels = [], []
    for _ in range(12):
        noise = rng.standard_normal(RATE // 2)
        waves.append(np.convolve(noise, np.ones(8) / 8, mode="same"))  # dark: low-passed
        waves.append(np.diff(noise, prepend=0.0))                       # bright: high-passed
        labels += [0, 1]
    feats = baselines.mfcc_stats(waves, RATE, n_mfcc=13)
    assert feats.shape == (24, 26)
    train, test = stratified_split(np.array(labels), test_size=0.3, seed=0)
    classifier = baselines.mfcc_classifier()
    acc, predicted = baselines.fit_and_score(classifier, feats, labels, train, test)
    assert acc == 1.0 and predicted.shape == test.shape


def test_mfcc_baseline_is_at_chance_on_labels_unrelated_to_the_sound():
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((200, 80))
    labels = rng.integers(0, 2, 200)
    train, test = stratified_split(labels, test_size=0.3, seed=0)
    acc, _ = baselines.fit_and_score(baselines.mfcc_classifier(), feats, labels, train, test)
    assert 0.3 < acc < 0.7


def test_mean_pooled_cnn_averages_the_frontend_over_valid_frames_only():
    torch.manual_seed(0)
    model = baselines.MeanPooledCnn(numClass=3, inDim=300, engine="taught").eval()
    x = torch.randn(2, 5, 300)
    lengths = torch.tensor([5, 2])
    with torch.no_grad():
        logits = model(x, lengths)
        feats = model.frontend(x[1, :2])
        expected = model.fc(feats.mean(dim=0))
        padded = x.clone()
        padded[1, 2:] = 7.0  # whatever lies in the padding does not matter
        again = model(padded, lengths)
    assert logits.shape == (2, 3)
    assert torch.allclose(logits[1], expected, atol=1e-6)
    assert torch.allclose(again, logits)
    assert sum(p.numel() for p in model.lstm.parameters()) == 0
    model.set_engine("fast")  # the fused front-end: the same function
    with torch.no_grad():
        assert torch.allclose(model(x, lengths), logits, atol=1e-5)
    # the same front-end as AudioNet: same shapes of the convolutions
    net = AudioNet(numClass=3, inDim=300)
    assert [tuple(p.shape) for p in model.conv_blocks()[0].parameters()] == \
        [tuple(p.shape) for p in net.conv_blocks()[0].parameters()]


def test_pooled_baseline_trains_with_the_recipe_without_a_forget_gate():
    rng = np.random.default_rng(0)
    waves, labels = [], []
    for _ in range(8):
        waves += [_tone(150.0, 0.25, rng.uniform(0, 6)), 0.2 * rng.standard_normal(2000)]
        labels += [0, 1]
    data = SimpleNamespace(waves=waves, labels=np.array(labels), rate=RATE, classes=("a", "b"))
    spreads = baselines.run_baselines(data, seeds=[0], which=("pooled",), log=None,
                                      recipe=RECIPE.replace(epochs=2), device="cpu")
    run = spreads["pooled"].results[0]
    assert isinstance(run.model, baselines.MeanPooledCnn) and 0.0 <= run.accuracy <= 1.0
    assert len(run.predictions) == len(run.test_idx)


def test_unknown_baseline_and_table():
    data = _tones(150.0, 300.0, 4, np.random.default_rng(0))
    with pytest.raises(ValueError, match="baselines among"):
        baselines.run_baselines(data, which=("nope",), log=None)
    spreads = baselines.run_baselines(data, seeds=[0, 1], which=("pitch",), log=None)
    table = baselines.baseline_table({"pitch": spreads["pitch"]})
    assert "100.00 ± 0.00" in table and "min (%)" in table
