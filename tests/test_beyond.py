"""Tests of emoser.beyond on tiny synthetic data (no TESS, a few seconds on a CPU)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import emoser
import emoser.experiments as bd
from emoser.experiments import SeedRuns

FRAME = 256
SMALL = {"convOutNum": 4, "hiddenSize": 8}
FAST = emoser.training.Recipe(epochs=3, lr=1e-2, batch_size=8, schedule="constant")


def _toy(speakers=("A", "B"), n_words=10, seed=0):
    """Every speaker says every word in two 'emotions' (tones); speaker B is louder and higher."""
    rng = np.random.default_rng(seed)
    waves, labels, records = [], [], []
    for s, spk in enumerate(speakers):
        for w in range(n_words):
            for k in range(2):
                length = int(rng.integers(2 * FRAME, 4 * FRAME))
                t = np.arange(length)
                f = 0.02 * (k + 1) * (1 + 0.3 * s)
                wave = (1 + s) * np.sin(2 * np.pi * f * t) + 0.05 * rng.normal(size=length)
                waves.append(wave.astype(np.float32))
                labels.append(k)
                records.append(SimpleNamespace(word=f"w{w}", speaker=spk, emotion=f"c{k}"))
    return SimpleNamespace(waves=waves, labels=np.array(labels, dtype=np.int64),
                           classes=("c0", "c1"), records=records)


def test_speaker_indices_validate_on_held_out_words_of_the_training_speaker():
    data = _toy()
    speakers = np.array([r.speaker for r in data.records])
    words = np.array([r.word for r in data.records])
    train, val, test = emoser.prep.speaker_indices(data, "A", "B", val_size=0.2, seed=1)
    assert (set(speakers[train]) == {"A"} and set(speakers[val]) == {"A"}
            and set(speakers[test]) == {"B"})
    assert not set(words[train]) & set(words[val])              # whole words held out
    assert np.intersect1d(train, val).size == 0
    assert train.size + val.size == 20 and test.size == 20
    assert set(data.labels[val]) == {0, 1}
    again = emoser.prep.speaker_indices(data, "A", "B", val_size=0.2, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip((train, val, test), again))
    with pytest.raises(ValueError):
        emoser.prep.speaker_indices(data, "A", "A")


def test_random_indices_are_disjoint_and_word_disjoint_inside_training():
    data = _toy()
    words = np.array([r.word for r in data.records])
    train, val, test = emoser.prep.random_indices(data, test_size=0.3, val_size=0.25, seed=0)
    assert np.intersect1d(train, test).size == 0 and np.intersect1d(val, test).size == 0
    assert train.size + val.size + test.size == len(data.labels)
    assert np.bincount(data.labels[test]).tolist() == [6, 6]
    assert not set(words[train]) & set(words[val])


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))


def test_keep_best_restores_the_best_validation_epoch():
    model = _Tiny()
    keeper = emoser.training.KeepBest(epochs=4)
    # best: epoch 2 (tie on acc -> lower loss)
    history = [(0.6, 0.9), (0.8, 0.5), (0.8, 0.7), (0.7, 0.4)]
    for epoch, (acc, loss) in enumerate(history, start=1):
        with torch.no_grad():
            model.w.fill_(float(epoch))
        out = keeper({"epoch": epoch, "val_acc": acc, "val_loss": loss}, model)
        assert out is None
    assert keeper.best_epoch == 2 and keeper.best_val_acc == 0.8
    assert model.w.item() == 2.0                                  # restored after the last epoch
    with pytest.raises(ValueError):
        emoser.training.KeepBest(epochs=2)({"epoch": 1, "val_acc": None, "val_loss": None}, model)


def test_keep_best_stops_early_after_patience():
    model = _Tiny()
    keeper = emoser.training.KeepBest(epochs=10, patience=2)
    outs = []
    for epoch, acc in enumerate([0.9, 0.5, 0.5], start=1):
        with torch.no_grad():
            model.w.fill_(float(epoch))
        outs.append(keeper({"epoch": epoch, "val_acc": acc, "val_loss": 1.0}, model))
    assert outs == [None, None, True] and keeper.stopped_epoch == 3
    assert model.w.item() == 1.0


def test_run_split_seeds_trains_selects_and_tests_on_the_other_speaker():
    data = _toy()
    lines = []
    spread = bd.run_split_seeds(data, [0, 1],
                                lambda s: emoser.prep.speaker_indices(data, "A", "B", seed=s),
                                recipe=FAST, frame_length=FRAME, model_kwargs=SMALL, device="cpu",
                                normalization="per_utterance", log=lines.append, label="A->B")
    assert isinstance(spread, SeedRuns) and spread.seeds == [0, 1] and len(lines) == 2
    assert lines[0].startswith("A->B: seed 0")
    speakers = np.array([r.speaker for r in data.records])
    for run in spread.results:
        assert set(speakers[run.test_idx]) == {"B"} and set(speakers[run.val_idx]) == {"A"}
        assert 1 <= run.history.params["selected_epoch"] <= FAST.epochs
        assert run.history.params["selected_epoch"] == run.history.best_epoch
    accs = [r.accuracy for r in spread.results]
    assert spread.mean == pytest.approx(np.mean(accs))
    assert bd.pooled_confusion(spread).sum() == 2 * 20
    with pytest.raises(ValueError):
        bd.run_split_seeds(data, [0], lambda s: emoser.prep.speaker_indices(data, "A", "B"),
                           callback=print)


def test_selected_weights_are_the_ones_tested():
    data = _toy()
    spread = bd.run_split_seeds(data, [0], lambda s: emoser.prep.random_indices(data, seed=s),
                                recipe=FAST, frame_length=FRAME, model_kwargs=SMALL, device="cpu",
                                log=None)
    run = spread.results[0]
    from emoser.prep import FrameDataset
    from emoser.training import evaluate
    val_set = FrameDataset([data.waves[i] for i in run.val_idx], data.labels[run.val_idx], FRAME,
                           normalizer=run.normalizer)
    best = run.history.epochs[run.history.params["selected_epoch"] - 1]
    assert evaluate(run.model, val_set).accuracy == pytest.approx(best["val_acc"])


def test_spectral_centroid_of_a_tone_is_its_frequency():
    rate = 8000
    t = np.arange(rate) / rate
    c = emoser.course.spectral_centroid([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 1000 * t),
                                         np.zeros(10)], rate)
    assert (c[0] == pytest.approx(440, abs=2) and c[1] == pytest.approx(1000, abs=2)
            and np.isnan(c[2]))
    with pytest.raises(ValueError):
        emoser.course.spectral_centroid([np.zeros(0)], rate)


def test_group_means():
    stats = {"x": [1.0, 3.0, 10.0, np.nan], "y": [0.0, 0.0, 1.0, 1.0]}
    groups = [("A", "h"), ("A", "h"), ("B", "h"), ("B", "h")]
    out = emoser.course.group_means(stats, groups)
    assert list(out) == [("A", "h"), ("B", "h")]
    assert out[("A", "h")]["x"] == (2.0, 1.0, 2)
    assert out[("B", "h")]["x"] == (10.0, 0.0, 1)
    with pytest.raises(ValueError):
        emoser.course.group_means({"x": [1.0]}, groups)


def test_recall_and_spread_tables():
    def run(conf):
        ev = SimpleNamespace(confusion=np.array(conf), accuracy=np.trace(conf) / np.sum(conf))
        ev.per_class_recall = lambda c=np.array(conf): np.diag(c) / c.sum(axis=1)
        ev.macro_f1 = lambda: 0.5
        return SimpleNamespace(evaluation=ev, accuracy=float(ev.accuracy))
    runs = [run([[4, 0], [2, 2]]), run([[2, 2], [0, 4]])]
    spread = SeedRuns(seeds=[0, 1], results=runs, mean=0.75, std=0.0)
    mean, std = bd.recall_table(spread, ["a", "b"])
    assert mean.tolist() == [0.75, 0.75] and std[0] == pytest.approx(np.std([1.0, 0.5], ddof=1))
    text = bd.spread_table({"toy": spread})
    assert "toy" in text and "75.0 ± 0.0" in text and "0.500" in text
    assert bd.pooled_confusion(spread).tolist() == [[6, 2], [2, 6]]
    with pytest.raises(ValueError):
        bd.recall_table(spread, ["a"])


def test_confused_pairs():
    conf = np.array([[8, 2, 0], [0, 5, 5], [1, 0, 9]])
    pairs = bd.confused_pairs(conf, ["a", "b", "c"], k=2)
    assert pairs == [("b", "c", 5, 0.5), ("a", "b", 2, 0.2)]
    assert len(bd.confused_pairs(conf, ["a", "b", "c"], k=10)) == 3
    with pytest.raises(ValueError):
        bd.confused_pairs(conf, ["a", "b"])


def test_speaker_normalized_equalizes_levels_but_keeps_differences_within_a_voice():
    data = _toy()
    out = emoser.prep.speaker_normalized(data)
    assert out is not data and out.waves is not data.waves and data.waves[0] is not out.waves[0]
    speakers = np.array([r.speaker for r in data.records])
    for s in ("A", "B"):
        idx = np.flatnonzero(speakers == s)
        joined = np.concatenate([out.waves[i] for i in idx]).astype(np.float64)
        assert abs(joined.mean()) < 1e-3 and joined.std() == pytest.approx(1.0, rel=1e-3)
        assert out.waves[idx[0]].dtype == np.float32
    # within a speaker the ratio of two utterances' RMS is unchanged
    i, j = np.flatnonzero(speakers == "B")[:2]

    def rms(w):
        return np.sqrt(np.mean(np.square(np.asarray(w, dtype=np.float64))))
    assert rms(out.waves[i]) / rms(out.waves[j]) == pytest.approx(
        rms(data.waves[i]) / rms(data.waves[j]), rel=1e-2)
    assert set(out.speaker_stats) == {"A", "B"}
    only_a = emoser.prep.speaker_normalized(data, ["A"])
    assert (only_a.waves[np.flatnonzero(speakers == "B")[0]]
            is data.waves[np.flatnonzero(speakers == "B")[0]])
    with pytest.raises(ValueError):
        emoser.prep.speaker_normalized(data, ["C"])


def test_retest_per_speaker_uses_the_test_speakers_own_statistics():
    data = _toy()
    spread = bd.run_split_seeds(data, [0],
                                lambda s: emoser.prep.speaker_indices(data, "A", "B", seed=s),
                                recipe=FAST, frame_length=FRAME, model_kwargs=SMALL, device="cpu",
                                log=None)
    again = bd.retest_per_speaker(spread, data)
    run, new = spread.results[0], again.results[0]
    assert new.model is run.model and np.array_equal(new.test_idx, run.test_idx)
    assert set(new.normalizer) == {"B"}
    test_waves = [data.waves[i] for i in run.test_idx]
    from emoser.prep import FrameDataset, Normalizer
    from emoser.training import evaluate
    norm = Normalizer.fit(test_waves)
    assert new.normalizer["B"].std == pytest.approx(norm.std)
    expected = evaluate(run.model, FrameDataset(test_waves, data.labels[run.test_idx], FRAME,
                                                normalizer=norm))
    assert new.evaluation.accuracy == pytest.approx(expected.accuracy)
    assert np.allclose(new.evaluation.probabilities, expected.probabilities, atol=1e-5)
    assert again.mean == pytest.approx(new.accuracy) and again.seeds == [0]
