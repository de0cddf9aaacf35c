"""The command line's training and prediction: the course recipe, one checkpoint format, and a
clear one-line answer to every bad option, checkpoint or input (issue: faults lose nothing)."""
from __future__ import annotations

import io
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from emoser import cli
from emoser.nn import AudioNet
from emoser.training import RECIPE, CheckpointError, fit, load_checkpoint, save_checkpoint
from emoser.training.loop import TrainingDiverged

RATE = 24414
WORDS = ["back", "bar", "base", "bath", "bean", "beg", "bite", "boat"]


def tone(f0, rng, seconds=0.4):
    t = np.arange(int(RATE * seconds)) / RATE
    wave = 0.3 * np.sin(2 * np.pi * f0 * t) + 0.01 * rng.standard_normal(t.size)
    return wave.astype(np.float32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(1)
    for emotion, f0 in (("happy", 900.0), ("sad", 180.0)):
        (root / f"YAF_{emotion}").mkdir()
        for word in WORDS:
            sf.write(root / f"YAF_{emotion}" / f"YAF_{word}_{emotion}.wav", tone(f0, rng), RATE)
    return root


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOSER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("EMOSER_TESS_DIR", raising=False)
    monkeypatch.setenv("TQDM_DISABLE", "1")


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def train(corpus, out, *extra):
    return run(["train", "--data", corpus, "--out", out, "--no-progress", *extra])


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """One model trained with the course recipe's defaults (no option changes a setting)."""
    out = tmp_path_factory.mktemp("ckpt") / "model.pt"
    mp = pytest.MonkeyPatch()
    mp.setenv("EMOSER_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    try:
        code, stdout, stderr = train(corpus, out, "--batch-size", "4")
    finally:
        mp.undo()
    assert code == 0, stdout + stderr
    return out, stdout


# --------------------------------------------------------------------------- the course recipe
def test_train_uses_the_course_recipe_and_predict_reads_its_checkpoint(trained, corpus):
    out, stdout = trained
    model, meta = load_checkpoint(out)
    assert meta["recipe"] == RECIPE.replace(batch_size=4).as_dict()
    assert len(meta["history"]["epochs"]) == RECIPE.epochs
    assert sum(line.startswith("epoch ") for line in stdout.splitlines()) == RECIPE.epochs
    assert meta["normalizer"]["mode"] == "global" and meta["rate"] == RATE
    code, text, err = run(["predict", corpus / "YAF_sad" / "YAF_bar_sad.wav", "--checkpoint", out])
    assert code == 0, err
    assert text.startswith("predicted: ") and "  happy: " in text and "  sad: " in text


def test_train_defaults_come_from_the_recipe():
    args = cli.build_parser().parse_args(["train"])
    assert (args.epochs, args.lr, args.batch_size, args.clip_grad_norm) == (None,) * 4
    text = cli.build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert f"the course recipe's {RECIPE.epochs}" in " ".join(text.split())


def test_a_checkpoint_of_the_first_format_still_predicts(trained, corpus, tmp_path):
    """Files written before the restructuring named the class by module path and had no mode."""
    out, _ = trained
    payload = torch.load(out, weights_only=True)
    payload["model_class"] = "emoser.model.AudioNet"
    payload["meta"]["normalizer"] = {k: payload["meta"]["normalizer"][k] for k in ("mean", "std")}
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    code, text, err = run(["predict", corpus / "YAF_happy" / "YAF_bar_happy.wav",
                           "--checkpoint", old])
    assert code == 0, err and text.startswith("predicted: ")


# --------------------------------------------------------------------------- options
@pytest.mark.parametrize("option, value, words", [
    ("--epochs", "0", "--epochs must be between 1 and 10000"),
    ("--lr", "inf", "--lr must be a number in (0, 1]"),
    ("--lr", "nan", "--lr must be a number in (0, 1]"),
    ("--clip-grad-norm", "-1", "--clip-grad-norm must be a finite number >= 0"),
    ("--clip-grad-norm", "nan", "--clip-grad-norm must be a finite number >= 0"),
    ("--batch-size", "0", "--batch-size must be between 1 and 10000"),
    ("--frame-length", "10000000", "--frame-length must be between"),
    ("--hop", "0", "--hop must be between 1 and the frame length"),
    ("--test-size", "1.5", "--test-size must be a fraction"),
    ("--rate", "1", "--rate must be between 1000 and 192000 Hz"),
])
def test_bad_options_are_refused_before_any_work(corpus, tmp_path, option, value, words):
    out = tmp_path / "model.pt"
    out.write_bytes(b"an earlier checkpoint")
    code, stdout, stderr = train(corpus, out, option, value)
    assert code == 2 and words in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert "data:" not in stdout  # nothing was loaded, nothing trained
    assert out.read_bytes() == b"an earlier checkpoint"  # and nothing overwritten


def test_framing_that_would_not_fit_in_memory_is_refused_with_the_estimate(corpus, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("EMOSER_MEMORY_LIMIT_MB", "100")
    code, stdout, stderr = train(corpus, tmp_path / "m.pt", "--hop", "1")
    assert code == 2 and "would take about" in stderr and "GB" in stderr, stderr
    assert "epoch " not in stdout
    assert cli.frames_bytes([1000], 500, 1) == 501 * 500 * 4
    assert cli.frames_bytes([100], 500, 500) == 500 * 4  # a short wave is one padded frame


def test_destination_is_checked_before_training(corpus, tmp_path):
    folder = tmp_path / "adir"
    folder.mkdir()
    code, stdout, stderr = train(corpus, folder)
    assert code == 2 and "is a folder" in stderr and "epoch " not in stdout
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    code, stdout, stderr = train(corpus, blocker / "model.pt")
    assert code == 2 and "is a file, not a folder" in stderr and "epoch " not in stdout


def test_a_failed_save_keeps_the_trained_model_and_says_where(corpus, tmp_path, monkeypatch):
    from emoser.experiments.pipeline import Run

    real_save = Run.save
    target = tmp_path / "model.pt"

    def flaky(self, path, **extra):
        if Path(path) == target:
            raise OSError(28, "No space left on device", str(path))
        return real_save(self, path, **extra)

    monkeypatch.setattr(Run, "save", flaky)
    code, stdout, stderr = train(corpus, target, "--epochs", "1")
    assert code == 2 and "No space left on device" in stderr, stderr
    rescued = Path(stderr.split("saved to ")[1].split(" instead")[0])
    assert rescued.is_file() and load_checkpoint(rescued)[1]["classes"] == ["happy", "sad"]


# --------------------------------------------------------------------------- training faults
def test_non_finite_training_stops_with_the_epoch_and_the_setting():
    from emoser.prep import FrameDataset

    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(2000).astype(np.float32) for _ in range(8)]
    data = FrameDataset(waves, np.arange(8) % 2, 500)
    model = AudioNet(numClass=2, inDim=500)
    with torch.no_grad():
        model.fc.weight.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match=r"epoch 1: the training loss is nan \(lr=0.001"):
        fit(model, data, epochs=3, batch_size=4, progress=False, log=None, device="cpu")


def test_nothing_non_finite_is_saved(tmp_path):
    model = AudioNet(numClass=2, inDim=500)
    with torch.no_grad():
        model.fc.bias[0] = float("inf")
    with pytest.raises(ValueError, match="hold NaN or inf"):
        save_checkpoint(tmp_path / "m.pt", model)
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- checkpoint faults
def _tampered(trained, tmp_path, change):
    out, _ = trained
    payload = torch.load(out, weights_only=True)
    change(payload)
    path = tmp_path / "tampered.pt"
    torch.save(payload, path)
    return path


def test_predict_refuses_nan_probabilities(trained, corpus, tmp_path):
    def poison(p):
        p["state_dict"]["fc.weight"][0, 0] = float("nan")
    path = _tampered(trained, tmp_path, poison)
    code, text, err = run(["predict", corpus / "YAF_happy" / "YAF_bar_happy.wav",
                           "--checkpoint", path])
    assert code == 2 and "NaN probabilities" in err and "predicted" not in text


def test_predict_refuses_what_overflows_after_normalization(trained, corpus, tmp_path):
    def tiny_std(p):
        p["meta"]["normalizer"]["std"] = 1e-300
    path = _tampered(trained, tmp_path, tiny_std)
    code, text, err = run(["predict", corpus / "YAF_happy" / "YAF_bar_happy.wav",
                           "--checkpoint", path])
    assert code == 2 and "NaN or inf" in err and "predicted" not in text


@pytest.mark.parametrize("change, words", [
    (lambda p: p["meta"].update(classes=["happy", "sad", "angry"]), "names 3 classes but"),
    (lambda p: p.update(model_class="os.system"), "unknown model class 'os.system'"),
    (lambda p: p["state_dict"].pop("fc.bias"), "the weights do not fit a AudioNet"),
    (lambda p: p["model_kwargs"].update(hiddenSize=32), "the weights do not fit"),
    (lambda p: p["meta"].pop("rate"), "lacks rate"),
])
def test_unusable_checkpoints_are_one_line_errors(trained, corpus, tmp_path, change, words):
    path = _tampered(trained, tmp_path, change)
    code, text, err = run(["predict", corpus / "YAF_happy" / "YAF_bar_happy.wav",
                           "--checkpoint", path])
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err


def test_a_checkpoint_never_imports_a_module_named_inside_it(trained, tmp_path):
    path = _tampered(trained, tmp_path, lambda p: p.update(model_class="antigravity.Fly"))
    with pytest.raises(CheckpointError, match="unknown model class"):
        load_checkpoint(path)
    assert "antigravity" not in sys.modules


def test_stale_temporary_files_of_a_killed_save_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f".m.pt.tmp-{dead}"
    stale.write_bytes(b"half a checkpoint")
    save_checkpoint(tmp_path / "m.pt", AudioNet(numClass=2, inDim=500))
    assert not stale.exists() and (tmp_path / "m.pt").is_file()
