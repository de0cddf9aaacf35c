"""Tests of emoser.experiments on tiny synthetic data (no TESS, a few seconds on a CPU)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import emoser
import emoser.experiments as ex
from emoser.experiments import SeedRuns
from emoser.prep import Normalizer

FRAME = 256  # the shortest frame the default CNN accepts is 254 samples
SMALL = {"convOutNum": 4, "hiddenSize": 8}
FAST = emoser.training.Recipe(epochs=2, lr=1e-2, batch_size=8, schedule="constant")


def _toy(n_per_class=(12, 10, 8), seed=0):
    """Class k: a tone of frequency 0.02·(k+1)·rate with a little noise, 2-5 frames long."""
    rng = np.random.default_rng(seed)
    waves, labels, records = [], [], []
    for k, n in enumerate(n_per_class):
        for j in range(n):
            length = int(rng.integers(2 * FRAME, 5 * FRAME))
            t = np.arange(length)
            wave = (np.sin(2 * np.pi * 0.02 * (k + 1) * t + rng.uniform(0, 6))
                    + 0.05 * rng.normal(size=length))
            waves.append((3.0 + wave).astype(np.float32))  # offset: normalization matters
            labels.append(k)
            records.append(SimpleNamespace(word=f"w{k}_{j}", speaker="T", emotion=f"c{k}"))
    classes = tuple(f"c{k}" for k in range(len(n_per_class)))
    return SimpleNamespace(waves=waves, labels=np.array(labels, dtype=np.int64), classes=classes,
                           records=records)


def _run(data, seed=0, **kwargs):
    kwargs.setdefault("recipe", FAST)
    kwargs.setdefault("frame_length", FRAME)
    kwargs.setdefault("model_kwargs", SMALL)
    kwargs.setdefault("device", "cpu")
    return ex.run_protocol(data, seed, **kwargs)


def test_run_protocol_splits_stratified_and_unpacks():
    data = _toy()
    run = _run(data)
    model, history, evaluation = run
    assert model is run.model and len(history) == FAST.epochs
    assert np.intersect1d(run.train_idx, run.test_idx).size == 0
    assert np.union1d(run.train_idx, run.test_idx).size == len(data.labels)
    assert np.bincount(data.labels[run.test_idx]).tolist() == [4, 3, 2]  # 30 %, rounded half up
    assert len(evaluation.predictions) == run.test_idx.size
    assert evaluation.targets.tolist() == data.labels[run.test_idx].tolist()
    assert evaluation.confusion.shape == (3, 3) and run.classes == data.classes
    assert not model.training


def test_same_seed_same_run_other_seed_other_split():
    data = _toy()
    a, b, c = _run(data, 3), _run(data, 3), _run(data, 4)
    assert np.array_equal(a.test_idx, b.test_idx)
    np.testing.assert_allclose(a.evaluation.probabilities, b.evaluation.probabilities, atol=1e-6)
    assert a.history["train_loss"] == pytest.approx(b.history["train_loss"])
    assert not np.array_equal(a.test_idx, c.test_idx)


def test_global_normalizer_uses_training_waves_only():
    data = _toy()
    run = _run(data)
    expected = Normalizer.fit([data.waves[i] for i in run.train_idx])
    assert run.normalizer == expected
    shifted = _toy()
    for i in run.test_idx:  # change the test waveforms only: statistics must not move
        shifted.waves[i] = shifted.waves[i] + 100.0
    assert _run(shifted).normalizer == expected


def test_per_utterance_and_no_normalization():
    wave = np.linspace(-1, 5, 1000).astype(np.float32)
    out = emoser.prep.PerUtteranceNormalizer().apply(wave)
    assert out.dtype == np.float32
    assert abs(float(out.mean())) < 1e-5 and abs(float(out.std()) - 1) < 1e-5
    data = _toy()
    assert isinstance(_run(data, normalization="per_utterance").normalizer,
                      emoser.prep.PerUtteranceNormalizer)
    assert _run(data, normalization="none").normalizer is None
    with pytest.raises(ValueError, match="normalization"):
        _run(data, normalization="batch")


def test_classes_subset_and_given_indices():
    data = _toy()
    run = _run(data, classes=("c2", "c0"))
    assert run.classes == ("c2", "c0") and run.model.numClass == 2
    kept = np.concatenate([run.train_idx, run.test_idx])
    assert set(data.labels[kept].tolist()) == {0, 2}
    # c2 is label 0 now
    assert run.evaluation.targets.tolist() == [0 if data.labels[i] == 2 else 1
                                               for i in run.test_idx]
    train, test = np.arange(0, 30, 2), np.arange(1, 30, 2)
    run = _run(data, train_idx=train, test_idx=test)
    assert run.train_idx.tolist() == train.tolist() and run.test_idx.tolist() == test.tolist()
    with pytest.raises(ValueError, match="both"):
        _run(data, train_idx=train)
    with pytest.raises(ValueError, match="overlap"):
        _run(data, train_idx=train, test_idx=train[:3])
    with pytest.raises(ValueError, match="not in the data"):
        _run(data, classes=("c0", "angry"))


def test_validation_split_is_carved_from_training():
    data = _toy()
    plain = _run(data, seed=1)
    run = _run(data, seed=1, val_size=0.25)
    assert np.array_equal(run.test_idx, plain.test_idx)  # the test set does not change
    assert np.array_equal(np.union1d(run.train_idx, run.val_idx), plain.train_idx)
    assert np.intersect1d(run.train_idx, run.val_idx).size == 0
    assert set(data.labels[run.val_idx].tolist()) == {0, 1, 2}
    assert run.history.has_validation and run.history.params["n_val"] == run.val_idx.size


def test_recipe_schedule_reaches_the_optimizer(monkeypatch):
    recipe = emoser.training.Recipe(epochs=4, lr=1e-2, batch_size=8, schedule="cosine")
    assert recipe.lr_at(1) == pytest.approx(1e-2)
    rates = [recipe.lr_at(e) for e in range(1, 5)]
    assert all(a > b > 0 for a, b in zip(rates, rates[1:]))
    assert emoser.training.Recipe(schedule="constant", lr=3e-3).lr_at(7) == 3e-3
    with pytest.raises(ValueError, match="schedule"):
        emoser.training.Recipe(schedule="step")

    seen = []
    real_fit = emoser.training.fit

    def spy(model, train_set, val_set=None, **kw):
        opt = kw["optimizer"]
        inner = kw["callback"]

        def callback(record, m):
            seen.append(opt.param_groups[0]["lr"])  # rate used during this epoch
            return inner(record, m)

        kw["callback"] = callback
        return real_fit(model, train_set, val_set, **kw)

    monkeypatch.setattr(emoser.training.recipe, "fit", spy)
    _run(_toy(), recipe=recipe)
    assert seen == pytest.approx(rates)


def test_run_seeds_table_and_misclassified():
    data = _toy()
    lines = []
    spread = ex.run_seeds(data, seeds=[0, 1], log=lines.append, recipe=FAST, frame_length=FRAME,
                          model_kwargs=SMALL, device="cpu")
    assert isinstance(spread, SeedRuns) and spread.seeds == [0, 1] and len(lines) == 2
    accs = [r.accuracy for r in spread.results]
    assert spread.mean == pytest.approx(np.mean(accs))
    assert spread.std == pytest.approx(np.std(accs, ddof=1))
    table = ex.seed_table(spread)
    assert table.splitlines()[0].split()[:3] == ["seed", "test", "acc"]
    assert len(table.splitlines()) == 2 + 2 + 2  # header, rule, two seeds, mean, std
    run = spread.results[0]
    wrong = ex.misclassified(run, data.records)
    errors = int((run.evaluation.predictions != run.evaluation.targets).sum())
    assert len(wrong) == errors
    for item in wrong:
        assert item["word"] == data.records[item["index"]].word
        assert item["true"] == data.classes[data.labels[item["index"]]] != item["predicted"]


def test_the_toy_task_is_learned():
    """A tone-pitch task must be learned well: catches a broken pipeline, not only a crash."""
    data = _toy((16, 16))
    run = _run(data, recipe=emoser.training.Recipe(epochs=12, lr=1e-2, batch_size=8,
                                                   schedule="cosine"))
    assert run.accuracy >= 0.8, run.history.as_table()
    assert run.history["train_loss"][-1] < run.history["train_loss"][0]


def test_checkpoint_meta_round_trip(tmp_path):
    from emoser.training import load_checkpoint, save_checkpoint

    run = _run(_toy())
    path = save_checkpoint(tmp_path / "run.pt", run.model, **run.checkpoint_meta())
    model, meta = load_checkpoint(path)
    assert meta["classes"] == list(run.classes) and meta["normalizer"]["mode"] == "global"
    assert meta["recipe"]["epochs"] == FAST.epochs
    x = torch.randn(2, 3, FRAME)
    lengths = torch.tensor([3, 2])
    with torch.no_grad():
        assert torch.allclose(model(x, lengths), run.model.cpu()(x, lengths), atol=1e-6)


def test_forget_bias_initialization():
    from emoser.nn import AudioNet

    model = AudioNet(inDim=FRAME, **SMALL)
    assert emoser.training.init_forget_bias(model, 1.0) == 2  # one cell per LSTM layer
    for layer in model.lstm:
        assert torch.all(layer.cell.forget_gate.bias == 1.0)
        assert not torch.all(layer.cell.input_gate.bias == 1.0)
    with pytest.raises(ValueError, match="forget gate"):
        emoser.training.init_forget_bias(torch.nn.Linear(2, 2), 1.0)
    # run_protocol applies the recipe's value before training: same seed, same start
    recipe = FAST.replace(epochs=0, forget_bias=0.75)
    run = _run(_toy(), recipe=recipe)
    assert all(torch.all(layer.cell.forget_gate.bias == 0.75) for layer in run.model.lstm)
    assert len(run.history) == 0


def test_original_recipe_matches_the_exercise():
    r = emoser.training.ORIGINAL_RECIPE
    assert (r.epochs, r.lr, r.batch_size, r.clip_grad_norm, r.schedule, r.forget_bias,
            r.amsgrad) == (20, 1e-4, 10, None, "constant", None, False)
    assert (emoser.training.RECIPE.replace(epochs=3).epochs == 3
            and emoser.training.RECIPE.epochs != 3)  # frozen, copied
    assert emoser.training.RECIPE.scheduler(
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)) is not None
    assert r.scheduler(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)) is None


def test_recipe_reaches_fit_and_the_optimizer(monkeypatch):
    seen = {}
    real_fit = emoser.training.fit

    def spy(model, train_set, val_set=None, **kw):
        seen["bucket"] = kw["bucket"]
        seen["amsgrad"] = kw["optimizer"].param_groups[0]["amsgrad"]
        seen["clip"] = kw["clip_grad_norm"]
        return real_fit(model, train_set, val_set, **kw)

    monkeypatch.setattr(emoser.training.recipe, "fit", spy)
    _run(_toy(), recipe=FAST.replace(epochs=1))
    # no length-sorted batches by default; AMSGrad by default (issue 19)
    assert seen == {"bucket": False, "amsgrad": True, "clip": 1.0}
    _run(_toy(), recipe=FAST.replace(epochs=1, bucket=4, amsgrad=False, clip_grad_norm=None))
    assert seen == {"bucket": 4, "amsgrad": False, "clip": None}


def test_training_runs_on_the_fixed_thread_count_whatever_the_process_uses(monkeypatch):
    """A run is a function of seed, data, recipe and engine: not of the machine's core count."""
    monkeypatch.delenv("EMOSER_TRAINING_THREADS", raising=False)
    data = _toy()
    before = torch.get_num_threads()
    seen, weights = {}, {}
    try:
        for process_threads in (2, 3):
            torch.set_num_threads(process_threads)
            log = []
            run = _run(data, callback=lambda record: log.append(torch.get_num_threads()))
            assert torch.get_num_threads() == process_threads  # restored afterwards
            seen[process_threads] = log
            weights[process_threads] = [p.detach().clone() for p in run.model.parameters()]
            assert run.history.params["threads"] == emoser.training.TRAINING_THREADS
    finally:
        torch.set_num_threads(before)
    assert seen[2] == seen[3] == [emoser.training.TRAINING_THREADS] * FAST.epochs
    assert all(torch.equal(a, b) for a, b in zip(weights[2], weights[3]))


def test_training_threads_setting(monkeypatch):
    monkeypatch.setenv("EMOSER_TRAINING_THREADS", "2")
    assert emoser.training.training_threads() == 2
    monkeypatch.setenv("EMOSER_TRAINING_THREADS", "two")
    with pytest.raises(ValueError, match="EMOSER_TRAINING_THREADS"):
        emoser.training.training_threads()


@pytest.mark.parametrize("kernels", [True, False], ids=["fused-kernels", "pytorch"])
def test_weights_and_the_thread_count(kernels):
    """Issue 19's check: the same run with 1, 2 and 4 training threads.

    The fused kernels (the course's engine) give each thread whole sequences and whole output
    rows, so no sum is split across threads: the weights are bitwise the same. PyTorch's own CPU
    code (kernels off) lets its matrix products split sums across threads, so the order of
    additions and the last bits change: measured here, 2 epochs of a toy run differ by about
    3e-8 (float32 rounding), which is why training fixes the thread count (chapter 8).
    """
    from emoser.nn.kernels import native

    data = _toy()
    weights = {}
    with native.override(kernels):
        for threads in (1, 2, 4):
            run = _run(data, threads=threads)
            assert run.history.params["threads"] == threads
            weights[threads] = [p.detach().clone() for p in run.model.parameters()]
    for threads in (2, 4):
        diff = max(float((a - b).abs().max()) for a, b in zip(weights[1], weights[threads]))
        if kernels:
            assert diff == 0.0, f"{threads} threads: weights differ from 1 thread by {diff:.3g}"
        else:  # the order of a sum: rounding-sized, never more
            assert diff <= 1e-5, f"{threads} threads: weights differ from 1 thread by {diff:.3g}"


def test_warm_up_ramps_each_step_then_follows_the_schedule(monkeypatch):
    """Recipe.warmup_steps: the rate of every optimizer step, read where Adam uses it."""
    recipe = FAST.replace(epochs=3, lr=3e-3, schedule="cosine", warmup_steps=2)
    data = _toy()
    rates = []
    real_adam = emoser.training.recipe.adam

    def spy(params, **kw):
        opt = real_adam(params, **kw)
        opt.register_step_post_hook(lambda o, a, k: rates.append(o.param_groups[0]["lr"]))
        return opt

    monkeypatch.setattr(emoser.training.recipe, "adam", spy)
    run = _run(data, recipe=recipe)
    per_epoch = len(rates) // recipe.epochs
    assert len(rates) == per_epoch * recipe.epochs and per_epoch > recipe.warmup_steps
    assert rates[:2] == pytest.approx([3e-3 / 2, 3e-3])
    assert rates[2:per_epoch] == pytest.approx([3e-3] * (per_epoch - 2))
    for epoch in (2, 3):  # then the cosine schedule, one rate per epoch
        block = rates[(epoch - 1) * per_epoch:epoch * per_epoch]
        assert block == pytest.approx([recipe.lr_at(epoch)] * per_epoch)
    assert recipe.lr_at(3) < recipe.lr_at(2) < recipe.lr
    assert np.isfinite(run.history["train_loss"]).all()
    with pytest.raises(ValueError, match="warmup_steps"):
        FAST.replace(warmup_steps=-1)
