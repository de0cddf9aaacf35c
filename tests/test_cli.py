"""Command line end to end on CPU: train on a tiny generated corpus, then predict files."""
import io
import subprocess
import sys
from contextlib import redirect_stdout

import numpy as np
import pytest
import soundfile as sf
import torch

from emoser import cli
from emoser.training import load_checkpoint

RATE = 24414
WORDS = ["back", "bar", "base", "bath", "bean", "beg", "bite", "boat", "bone", "book", "bought",
         "burn"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models: one thread is faster than two on a busy shared machine (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def burst(f0, rng, rate=RATE, seconds=0.5):
    """Tone bursts around f0 with two harmonics, some noise, random length 0.35-0.5 s."""
    n = int(rate * seconds * rng.uniform(0.7, 1.0))
    t = np.arange(n) / rate
    f = f0 * rng.uniform(0.95, 1.05)
    wave = sum(np.sin(2 * np.pi * k * f * t) / k for k in (1, 2, 3))
    envelope = np.clip(np.sin(np.pi * 4 * t / t[-1]), 0, None)  # two bursts
    return (0.3 * wave * envelope + 0.01 * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    for emotion, f0 in (("happy", 900.0), ("sad", 180.0)):
        folder = root / f"YAF_{emotion}"
        folder.mkdir()
        for word in WORDS:
            sf.write(folder / f"YAF_{word}_{emotion}.wav", burst(f0, rng), RATE, subtype="PCM_16")
    return root


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """Train once through main() (10 epochs, a few seconds); the output and the checkpoint path."""
    ckpt = tmp_path_factory.mktemp("ckpt") / "model.pt"
    cache = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("EMOSER_CACHE_DIR", str(cache))
    mp.delenv("EMOSER_TESS_DIR", raising=False)
    capture = {}
    out = io.StringIO()
    try:
        with redirect_stdout(out):
            capture["rc"] = cli.main(["train", "--data", str(corpus), "--epochs", "10",
                                      "--out", str(ckpt), "--batch-size", "4", "--no-progress"])
    finally:
        mp.undo()
    capture["out"] = out.getvalue()
    capture["ckpt"] = ckpt
    return capture


def test_train_prints_log_accuracy_and_saves_settings(trained, corpus):
    assert trained["rc"] == 0, trained["out"]
    out = trained["out"]
    assert "TESS (real recordings" in out and f"from {corpus}" in out and "STAND-IN" not in out
    assert "24 recordings (happy 12, sad 12); 16 for training, 8 for testing" in out
    assert sum(line.startswith("epoch ") for line in out.splitlines()) == 10
    assert "test accuracy: " in out and f"saved checkpoint: {trained['ckpt']}" in out
    model, meta = load_checkpoint(trained["ckpt"])
    assert meta["classes"] == ["happy", "sad"] and meta["rate"] == RATE
    assert meta["frame_length"] == 500 and meta["hop"] == 500
    assert meta["normalizer"]["mode"] == "global" and meta["normalizer"]["std"] > 0
    assert meta["model_kwargs"] == {"numClass": 2, "inDim": 500}
    assert len(meta["history"]["epochs"]) == 10
    # shuffled, no pools sorted by length (chapter 6)
    assert meta["history"]["params"]["bucket"] == 0
    assert meta["test_accuracy"] >= 0.75, out  # high vs low tones: easy once trained


def parse_prediction(text):
    lines = text.strip().splitlines()
    assert lines[0].startswith("predicted: ")
    probs = {}
    for line in lines[1:]:
        assert line.startswith("  ")
        name, value = line.strip().split(": ")
        probs[name] = float(value)
    return lines[0].removeprefix("predicted: "), probs


def test_predict_prints_class_and_probabilities(trained, corpus, capsys):
    rc = cli.main(["predict", str(corpus / "YAF_happy" / "YAF_back_happy.wav"),
                   "--checkpoint", str(trained["ckpt"])])
    assert rc == 0
    predicted, probs = parse_prediction(capsys.readouterr().out)
    assert list(probs) == ["happy", "sad"]
    assert sum(probs.values()) == pytest.approx(1, abs=2e-4)
    assert predicted == max(probs, key=probs.get)


def test_predict_resamples_48k_stereo(trained, tmp_path, capsys):
    rng = np.random.default_rng(5)
    mono = burst(180.0, rng, rate=48000)
    path = tmp_path / "my voice.wav"
    sf.write(path, np.stack([mono, 0.5 * mono], axis=1), 48000)
    assert cli.main(["predict", str(path), "--checkpoint", str(trained["ckpt"])]) == 0
    _, probs = parse_prediction(capsys.readouterr().out)
    assert sum(probs.values()) == pytest.approx(1, abs=2e-4)


def test_predict_garbage_file_is_a_clean_error(trained, tmp_path, capsys):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 20)
    assert cli.main(["predict", str(junk), "--checkpoint", str(trained["ckpt"])]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "junk.wav" in err[0] and "Traceback" not in captured.err


def test_predict_missing_checkpoint_says_how_to_train(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EMOSER_CACHE_DIR", str(tmp_path))
    assert cli.main(["predict", str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "audionet.pt") in err and "python -m emoser train" in err


def test_train_missing_data_folder_is_a_clean_error(tmp_path, capsys):
    assert cli.main(["train", "--data", str(tmp_path / "nowhere"), "--epochs", "1"]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_verify_reports_unknown_files(corpus, capsys):
    assert cli.main(["verify", str(corpus)]) == 1  # generated files are not the published ones
    assert capsys.readouterr().out.strip()


def test_train_bucket_is_an_opt_in():
    parser = cli.build_parser()
    assert parser.parse_args(["train"]).bucket is False
    assert parser.parse_args(["train", "--bucket"]).bucket is True


def test_parser_requires_a_command():
    with pytest.raises(SystemExit) as exc:
        cli.main([])
    assert exc.value.code == 2


def test_python_dash_m_help():
    result = subprocess.run([sys.executable, "-m", "emoser", "predict", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--checkpoint" in result.stdout
