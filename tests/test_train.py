"""Training loop, evaluation, seeds, devices and checkpoints (CPU, small synthetic data)."""
import time

import numpy as np
import pytest
import torch
from torch import nn

import emoser
from emoser import training as train
from emoser.nn import AudioNet
from emoser.prep import FrameDataset, Normalizer, collate_frames

RATE = 8000
FRAME = 160
SMALL = dict(numClass=2, inDim=FRAME, convLayerNum=2, convOutNum=16, hiddenSize=16)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one thread is faster than two on a busy shared machine (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tones(n_per_class=40, seed=0):
    """Sine bursts around 300 Hz (class 0) and 1200 Hz (class 1), noisy, 0.15-0.5 s long."""
    rng = np.random.default_rng(seed)
    waves, labels = [], []
    for label, f0 in ((0, 300.0), (1, 1200.0)):
        for _ in range(n_per_class):
            n = int(rng.integers(RATE * 0.15, RATE * 0.5))
            t = np.arange(n) / RATE
            phase = rng.uniform(0, 2 * np.pi)
            w = rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * f0 * rng.uniform(0.9, 1.1) * t + phase)
            waves.append((w + 0.3 * rng.standard_normal(n)).astype(np.float32))
            labels.append(label)
    return waves, np.array(labels)


@pytest.fixture(scope="module")
def toy_sets():
    waves, labels = tones()
    tr, te = emoser.prep.stratified_split(labels, 0.3, seed=0)
    norm = Normalizer.fit([waves[i] for i in tr])
    return tuple(FrameDataset([waves[i] for i in idx], labels[idx], FRAME, normalizer=norm)
                 for idx in (tr, te))


class Recorder(nn.Module):
    """Stand-in model: logits from the mean valid frame; records the example ids it sees in
    training."""

    def __init__(self, in_dim=4, n_classes=2):
        super().__init__()
        self.fc = nn.Linear(in_dim, n_classes)
        self.seen = []

    def forward(self, x, lengths):
        if self.training:
            self.seen.append(tuple(int(v) for v in x[:, 0, 0]))
            self.seen_lengths = getattr(self, "seen_lengths", []) + [lengths.tolist()]
        mask = (torch.arange(x.shape[1]).view(1, -1) < lengths.view(-1, 1)).unsqueeze(-1)
        return self.fc((x * mask).sum(1) / lengths.view(-1, 1))


def id_set(n=40, seed=0):
    """Examples whose first sample is their id; lengths 1..8 frames of 4 samples."""
    rng = np.random.default_rng(seed)
    waves = [np.full(4 * int(rng.integers(1, 9)), float(i), dtype=np.float32) for i in range(n)]
    return FrameDataset(waves, np.arange(n) % 2, 4)


# ----------------------------------------------------------------------------- seeds, devices
def test_set_seed_reproduces_all_generators():
    import random
    train.set_seed(123)
    a = (random.random(), np.random.rand(), torch.rand(3))
    train.set_seed(123)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    train.set_seed(0, deterministic=False)
    assert torch.backends.cudnn.benchmark
    train.set_seed(0)


def test_device_env_and_name_override(monkeypatch):
    monkeypatch.setenv("EMOSER_DEVICE", "cpu")
    assert train.device() == torch.device("cpu")
    monkeypatch.setenv("EMOSER_DEVICE", "meta")
    assert train.device() == torch.device("meta")
    assert train.device("cpu") == torch.device("cpu")  # the argument wins over the variable
    monkeypatch.delenv("EMOSER_DEVICE")
    assert train.device().type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")
def test_device_cuda_without_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("EMOSER_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        train.device()


def test_describe_device_cpu():
    assert train.describe_device("cpu") == "cpu (1 thread)"  # the fixture's one thread
    torch.set_num_threads(2)
    assert train.describe_device("cpu") == "cpu (2 threads)"


# ----------------------------------------------------------------------------- fit mechanics
def test_fit_shuffles_every_epoch_and_sees_each_example_once():
    ds = id_set()
    model = Recorder()
    hist = train.fit(model, ds, epochs=3, batch_size=5, log=None, progress=False, device="cpu")
    assert len(hist) == 3 and len(model.seen) == 3 * 8
    epochs = [model.seen[k * 8:(k + 1) * 8] for k in range(3)]
    for batches in epochs:
        assert sorted(i for b in batches for i in b) == list(range(40))
    compositions = [set(frozenset(b) for b in batches) for batches in epochs]
    assert compositions[0] != compositions[1] and compositions[1] != compositions[2]


def test_bucketing_reduces_padding_without_fixing_batches():
    ds = id_set(n=80)

    def padding(bucket):
        model = Recorder()
        train.fit(model, ds, epochs=2, batch_size=8, bucket=bucket, log=None, progress=False,
                  device="cpu")
        pad = sum(len(ls) * max(ls) - sum(ls) for ls in model.seen_lengths)
        return pad, model.seen

    pad_bucket, seen = padding(True)
    pad_plain, _ = padding(False)
    assert pad_bucket < pad_plain / 2
    assert set(map(frozenset, seen[:10])) != set(map(frozenset, seen[10:]))  # still reshuffled


def test_fit_without_shuffle_keeps_data_order():
    ds = id_set(n=12)
    model = Recorder()
    train.fit(model, ds, epochs=2, batch_size=4, shuffle=False, bucket=False, log=None,
              progress=False, device="cpu")
    assert model.seen == [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11)] * 2


def test_history_records_and_table():
    ds = id_set(n=20)
    lines = []
    hist = train.fit(Recorder(), ds, val_set=ds, epochs=4, batch_size=5, log=lines.append,
                     progress=False, device="cpu")
    assert len(hist) == 4 and len(lines) == 4 and lines[0].startswith("epoch 1/4")
    assert [r["epoch"] for r in hist.epochs] == [1, 2, 3, 4]
    for r in hist.epochs:
        assert set(r) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"}
        assert 0 <= r["train_acc"] <= 1 and 0 <= r["val_acc"] <= 1 and r["seconds"] > 0
    table = hist.as_table().splitlines()
    assert len(table) == 6 and "val acc" in table[0] and table[0].endswith("seconds")
    assert "seconds" not in hist.as_table(seconds=False)
    assert hist.best_epoch in (1, 2, 3, 4)
    best = max(hist.epochs, key=lambda r: r["val_acc"])["val_acc"]
    assert hist.epochs[hist.best_epoch - 1]["val_acc"] == best
    again = train.History.from_dict(hist.to_dict())
    assert again.epochs == hist.epochs and hist["val_acc"] == [r["val_acc"] for r in hist.epochs]


def test_history_without_validation():
    hist = train.fit(Recorder(), id_set(n=10), epochs=2, batch_size=5, log=None, progress=False,
                     device="cpu")
    assert hist["val_acc"] == [None, None] and "val" not in hist.as_table()


def test_fit_callback_can_stop_early():
    hist = train.fit(Recorder(), id_set(n=10), epochs=10, batch_size=5, log=None, progress=False,
                     device="cpu", callback=lambda record: record["epoch"] == 3)
    assert len(hist) == 3


def test_fit_clips_gradients_and_takes_an_optimizer_factory():
    ds = id_set(n=8)
    model = Recorder()
    before = [p.detach().clone() for p in model.parameters()]
    train.fit(model, ds, epochs=1, batch_size=8, log=None, progress=False, device="cpu",
              optimizer=lambda params: torch.optim.SGD(params, lr=1.0), clip_grad_norm=0.01)
    step = torch.sqrt(sum(((p.detach() - b) ** 2).sum()
                          for p, b in zip(model.parameters(), before)))
    assert 0 < step <= 0.01 + 1e-6  # one SGD step of lr 1 moves by the clipped gradient


def test_fit_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        train.fit(Recorder(), id_set(n=4), epochs=1, batch_size=0, log=None, progress=False)


# ----------------------------------------------------------------------------- real model
def test_fit_audionet_learns_tones(toy_sets):
    """Known answer: 300 Hz vs 1200 Hz bursts are separable; AudioNet must get them right
    quickly."""
    train_set, test_set = toy_sets
    train.set_seed(0)
    model = AudioNet(**SMALL)
    start = time.process_time()  # CPU time of one thread: a fair measure on a busy shared machine
    hist = train.fit(model, train_set, test_set, epochs=10, lr=3e-3, batch_size=8, log=None,
                     progress=False, device="cpu")
    seconds = time.process_time() - start
    result = train.evaluate(model, test_set)
    assert not model.training  # fit leaves the model in evaluation mode
    assert result.accuracy >= 0.95, hist.as_table()
    assert hist.epochs[-1]["train_acc"] >= 0.95
    assert seconds < 15, f"10 epochs took {seconds:.1f} s of CPU time"


def test_fit_same_seed_same_history(toy_sets):
    train_set, _ = toy_sets
    runs = []
    for _ in range(2):
        train.set_seed(7)
        model = AudioNet(**SMALL)
        hist = train.fit(model, train_set, epochs=2, lr=3e-3, batch_size=8, seed=7, log=None,
                         progress=False, device="cpu")
        runs.append([(r["train_loss"], r["train_acc"]) for r in hist.epochs])
    assert runs[0] == runs[1]
    train.set_seed(7)
    other = train.fit(AudioNet(**SMALL), train_set, epochs=2, lr=3e-3, batch_size=8, seed=8,
                      log=None, progress=False, device="cpu")
    assert [(r["train_loss"], r["train_acc"]) for r in other.epochs] != runs[0]


def test_evaluate_matches_one_by_one_predictions(toy_sets):
    _, test_set = toy_sets
    train.set_seed(0)
    model = AudioNet(**SMALL).train()
    result = train.evaluate(model, test_set, batch_size=5)
    assert model.training  # evaluate restores the mode it found
    n = len(test_set)
    assert result.confusion.sum() == n and result.confusion.shape == (2, 2)
    assert result.probabilities.shape == (n, 2)
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1, atol=1e-6)
    assert np.array_equal(result.targets, test_set.labels)
    assert result.accuracy == pytest.approx(np.mean(result.predictions == result.targets))
    model.eval()
    with torch.no_grad():
        single = [int(model(f.unsqueeze(0), torch.tensor([len(f)])).argmax()) for f, _ in
                  (test_set[i] for i in range(n))]
    assert result.predictions.tolist() == single  # data set order, despite length-sorted batches
    assert np.array_equal(np.diag(result.confusion).sum(),
                          (result.predictions == result.targets).sum())


def test_evaluation_metrics_known_answer():
    conf = np.array([[8, 2], [4, 6]])
    ev = train.Evaluation(0.5, 0.7, np.zeros(20), np.zeros(20), np.zeros((20, 2)), conf)
    np.testing.assert_allclose(ev.per_class_recall(), [0.8, 0.6])
    # F1: class 0: 16 / (16 + 4 + 2) = 0.7273; class 1: 12 / (12 + 2 + 4) = 0.6667
    assert ev.macro_f1() == pytest.approx((16 / 22 + 12 / 18) / 2)
    assert "recall" in ev.report(["happy", "sad"])


def test_checkpoint_round_trip(tmp_path, toy_sets):
    train_set, test_set = toy_sets
    train.set_seed(1)
    model = AudioNet(**SMALL, sharedConv=False)
    hist = train.fit(model, train_set, epochs=1, batch_size=8, log=None, progress=False,
                     device="cpu")
    path = tmp_path / "sub" / "model.pt"
    norm = Normalizer(mean=0.25, std=2.0)
    train.save_checkpoint(path, model, classes=["happy", "sad"], rate=RATE, frame_length=FRAME,
                          hop=FRAME, normalizer=norm, history=hist, confusion=np.eye(2, dtype=int))
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary file left
    loaded, meta = train.load_checkpoint(path)
    assert type(loaded) is AudioNet and not loaded.training
    assert meta["model_kwargs"] == {**SMALL, "convKernelSize": 5, "lstmLayerNum": 2,
                                    "sharedConv": False, "engine": "fast"}
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert meta["classes"] == ["happy", "sad"] and meta["normalizer"] == {"mean": 0.25, "std": 2.0}
    assert train.History.from_dict(meta["history"]).epochs == hist.epochs
    assert meta["confusion"] == [[1, 0], [0, 1]]
    model.eval()
    x, lengths, _ = collate_frames([test_set[i] for i in range(6)])
    with torch.no_grad():
        assert torch.equal(model(x, lengths), loaded(x, lengths))


def test_checkpoint_keeps_the_engine_and_older_ones_load_fast(tmp_path):
    torch.manual_seed(3)
    model = AudioNet(**SMALL, engine="taught")
    path = train.save_checkpoint(tmp_path / "taught.pt", model)
    loaded, meta = train.load_checkpoint(path)
    assert meta["model_kwargs"]["engine"] == loaded.engine == "taught"
    payload = torch.load(path, weights_only=True)
    del payload["model_kwargs"]["engine"]  # as checkpoints written before the engine existed
    torch.save(payload, tmp_path / "old.pt")
    old, _ = train.load_checkpoint(tmp_path / "old.pt")
    assert old.engine == "fast"
    a, b = loaded.state_dict(), old.state_dict()  # the same weights under either engine
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_needs_constructor_arguments(tmp_path):
    class Opaque(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.fc = nn.Linear(width, 2)

    with pytest.raises(ValueError, match="model_kwargs"):
        train.save_checkpoint(tmp_path / "x.pt", Opaque(3))
    assert not (tmp_path / "x.pt").exists()


def test_load_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.pt"):
        train.load_checkpoint(tmp_path / "nothere.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        train.load_checkpoint(junk)
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an emoser checkpoint"):
        train.load_checkpoint(tmp_path / "other.pt")


def test_multi_seed():
    runs = emoser.experiments.multi_seed(lambda s: {"acc": s / 10, "loss": 1.0}, [1, 2, 3])
    assert runs.seeds == [1, 2, 3] and len(runs.results) == 3
    assert runs.mean["acc"] == pytest.approx(0.2) and runs.std["acc"] == pytest.approx(0.1)
    assert runs.std["loss"] == 0
    single = emoser.experiments.multi_seed(lambda s: 0.9, [0])
    assert single.mean == 0.9 and single.std == 0.0 and "1 seeds" in str(single)


def test_seed_runs_of_runs_summarises_accuracies():
    from types import SimpleNamespace
    runs = [SimpleNamespace(accuracy=a) for a in (1.0, 0.9, 0.95)]
    spread = emoser.experiments.SeedRuns.of_runs((4, 5, 6), runs)
    assert spread.seeds == [4, 5, 6] and spread.results == runs
    assert spread.mean == pytest.approx(0.95) and spread.std == pytest.approx(0.05)
    one = emoser.experiments.SeedRuns.of_runs([0], runs[:1])
    assert (one.mean, one.std) == (1.0, 0.0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fit_and_evaluate_on_gpu(toy_sets, tmp_path):
    train_set, test_set = toy_sets
    train.set_seed(0)
    model = AudioNet(**SMALL)
    hist = train.fit(model, train_set, test_set, epochs=10, lr=3e-3, batch_size=8, log=None,
                     progress=False, device="cuda")
    assert next(model.parameters()).is_cuda
    result = train.evaluate(model, test_set)
    assert result.accuracy >= 0.95, hist.as_table()
    train.save_checkpoint(tmp_path / "gpu.pt", model)
    loaded, _ = train.load_checkpoint(tmp_path / "gpu.pt")  # back on the CPU
    assert not next(loaded.parameters()).is_cuda
    assert train.evaluate(loaded, test_set).accuracy == pytest.approx(result.accuracy)


def test_adam_is_fused_where_torch_can_and_steps_like_plain_adam():
    torch.manual_seed(0)
    mine = [nn.Parameter(torch.randn(5, 3)), nn.Parameter(torch.randn(4))]
    plain = [nn.Parameter(p.detach().clone()) for p in mine]
    settings = dict(lr=1e-2, weight_decay=1e-3, amsgrad=True)
    opt, ref = train.adam(mine, **settings), torch.optim.Adam(plain, **settings)
    major, minor = (int(v) for v in torch.__version__.split(".")[:2])
    assert opt.defaults["fused"] is ((major, minor) >= (2, 4))  # CPU fusion arrived in torch 2.4
    for _ in range(5):
        for p, q in zip(mine, plain):
            p.grad = torch.randn_like(p)
            q.grad = p.grad.clone()
        opt.step()
        ref.step()
    for p, q in zip(mine, plain):
        assert not torch.equal(p, torch.zeros_like(p))
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6)
