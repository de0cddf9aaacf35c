"""Tests of emoser.ablation on tiny synthetic data (no TESS, a few seconds on a CPU)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import emoser
import emoser.experiments as ab
import emoser.experiments as ex
from emoser.prep import FrameDataset, Normalizer

FRAME = 256  # the shortest frame the default CNN accepts is 254 samples
SMALL = {"convOutNum": 4, "hiddenSize": 8}
FAST = emoser.training.Recipe(epochs=2, lr=1e-2, batch_size=4, schedule="cosine")


def _toy(n_per_class=(10, 10), seed=0):
    """Class k: a tone of frequency 0.02·(k+1)·rate, 2-6 frames long, loaded class by class."""
    rng = np.random.default_rng(seed)
    waves, labels = [], []
    for k, n in enumerate(n_per_class):
        for _ in range(n):
            length = int(rng.integers(2 * FRAME, 6 * FRAME))
            t = np.arange(length)
            wave = (np.sin(2 * np.pi * 0.02 * (k + 1) * t + rng.uniform(0, 6))
                    + 0.05 * rng.normal(size=length))
            # class-dependent offset: stats differ
            waves.append((1.0 + k + wave).astype(np.float32))
            labels.append(k)
    return SimpleNamespace(waves=waves, labels=np.array(labels, dtype=np.int64), classes=("a", "b"))


def _run(data, defect=None, **kwargs):
    kwargs.setdefault("recipe", FAST)
    return ab.run_with_defect(data, defect, 0, frame_length=FRAME, model_kwargs=SMALL, device="cpu",
                              **kwargs)


def test_misaligned_lengths_reads_the_unsplit_positions():
    all_lengths = np.array([5, 6, 7, 8, 9, 10])
    idx = np.array([1, 3, 5])
    assert ab.misaligned_lengths(all_lengths, idx).tolist() == [5, 6, 7]  # not [6, 8, 10]
    with pytest.raises(ValueError, match="indices"):
        ab.misaligned_lengths(all_lengths[:2], idx)


def test_told_lengths_cuts_and_extends_with_zero_frames():
    waves = [np.ones(3 * FRAME, np.float32), 2 * np.ones(2 * FRAME, np.float32)]
    base = FrameDataset(waves, np.array([0, 1]), FRAME)
    told = ab.ToldLengths(base, [1, 4])
    short, _ = told[0]
    long, label = told[1]
    assert short.shape == (1, FRAME) and torch.equal(short, base[0][0][:1])
    assert long.shape == (4, FRAME) and label == 1
    assert torch.equal(long[:2], base[1][0]) and not long[2:].any()
    assert (told.n_wrong == 2 and told.lengths.tolist() == [1, 4]
            and told.true_lengths.tolist() == [3, 2])
    with pytest.raises(ValueError):
        ab.ToldLengths(base, [0, 2])


def test_fixed_pipeline_equals_run_protocol():
    data = _toy()
    mine = _run(data)
    theirs = ex.run_protocol(data, 0, recipe=FAST, frame_length=FRAME, model_kwargs=SMALL,
                             device="cpu")
    assert mine.history["train_loss"] == theirs.history["train_loss"]
    for recipe in (FAST.replace(forget_bias=None), FAST.replace(forget_bias=2.0)):
        other = _run(data, recipe=recipe)
        assert other.history["train_loss"] == ex.run_protocol(
            data, 0, recipe=recipe, frame_length=FRAME, model_kwargs=SMALL,
            device="cpu").history["train_loss"]
        # the forget bias is applied
        assert other.history["train_loss"] != mine.history["train_loss"]
    assert np.array_equal(mine.train_idx, theirs.train_idx)
    assert mine.accuracy == pytest.approx(theirs.accuracy)
    # the last epoch's test = final evaluation
    assert mine.test_acc[-1] == pytest.approx(mine.accuracy)
    assert mine.wrong_lengths == {"train": 0, "test": 0} and mine.title == "fixed pipeline"


def test_each_defect_changes_only_its_part():
    data = _toy()
    fixed = _run(data)
    leaky = _run(data, "leaky_stats")
    full = Normalizer.fit(data.waves)
    assert leaky.normalizer.mean == pytest.approx(full.mean)
    # the toy classes differ in offset
    assert abs(leaky.normalizer.mean - fixed.normalizer.mean) > 1e-3
    ordered = _run(data, "class_ordered")
    fed = data.labels[ordered.train_idx]
    assert fed.tolist() == sorted(fed.tolist()) and ordered.history.params["shuffle"] is False
    assert sorted(ordered.train_idx.tolist()) == fixed.train_idx.tolist()
    misaligned = _run(data, "misaligned_lengths")
    assert misaligned.wrong_lengths["train"] > 0 and misaligned.wrong_lengths["test"] > 0
    assert misaligned.normalizer == fixed.normalizer
    with pytest.raises(ValueError, match="unknown defect"):
        _run(data, "no_seed")


def test_plateau_and_first_epoch_and_table():
    acc = [0.5, 0.52, 0.47, 0.8, 0.95, 0.5]
    assert ab.plateau_epochs(acc) == 3 and ab.plateau_epochs([0.9, 0.5]) == 0
    assert ab.first_epoch_at(acc, 0.9) == 5 and ab.first_epoch_at(acc, 0.99) is None
    data = _toy()
    runs = [_run(data), _run(data, "class_ordered")]
    table = ab.defect_table(runs)
    assert table.splitlines()[2].startswith("fixed pipeline") and "class-ordered" in table
    fig = emoser.course.plot_defect_curves(runs, title="t")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 2 and all(ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
                                  for ax in axes)
    assert axes[0].get_ylim() == axes[1].get_ylim()


def test_autograd_saved_bytes_is_zero_under_no_grad():
    lin = torch.nn.Linear(100, 50)
    x = torch.randn(8, 100)
    kept = emoser.course.autograd_saved_bytes(lambda: torch.tanh(lin(x)))
    with torch.no_grad():
        assert emoser.course.autograd_saved_bytes(lambda: torch.tanh(lin(x))) == 0
    assert kept >= 8 * 50 * 4  # at least tanh's output is saved
