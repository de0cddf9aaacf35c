"""emoser.voice: the command line run in-process, the synthetic test voice, uploads, the figure."""
import datetime
import sys
import types
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import soundfile as sf

import emoser
from emoser.course import voice

RATE = 24414


# --------------------------------------------------------------------------- run_cli
def test_parse_prediction_reads_class_and_probabilities():
    text = "predicted: sad\n  happy: 0.1250\n  sad: 0.8750\n"
    assert voice.parse_prediction(text) == ("sad", {"happy": 0.125, "sad": 0.875})
    assert voice.parse_prediction("saved checkpoint: x.pt\n") is None


def test_run_cli_missing_checkpoint_is_exit_2_with_short_paths(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EMOSER_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    run = voice.run_cli(["predict", "me.wav", "--checkpoint", tmp_path / "cache" / "nope.pt"],
                        cwd=tmp_path)
    printed = capsys.readouterr().out
    assert run.returncode == 2 and run.prediction is None and run.probabilities == {}
    assert run.command == "python -m emoser predict me.wav --checkpoint <cache>/nope.pt"
    assert "no checkpoint at <cache>/nope.pt" in run.stderr
    assert str(tmp_path) not in printed and str(tmp_path) not in run.stderr
    # error messages are printed to standard output (the book drops stderr), with the exit code
    assert printed.splitlines()[0] == f"$ {run.command}"
    assert "no checkpoint at <cache>/nope.pt" in printed and "(exit code 2)" in printed


def test_run_cli_returns_to_the_original_folder_and_handles_help(tmp_path, capsys):
    before = Path.cwd()
    run = voice.run_cli(["--help"], cwd=tmp_path, echo=False)
    assert Path.cwd() == before
    assert run.returncode == 0 and "usage: python -m emoser" in run.stdout
    assert capsys.readouterr().out == ""  # echo=False prints nothing
    bad = voice.run_cli(["no-such-command"], echo=False)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_run_cli_aliases_replace_given_folders(tmp_path, capsys):
    data = tmp_path / "my data"
    data.mkdir()
    run = voice.run_cli(["verify", data], aliases={data: "$TESS"})
    assert run.command == "python -m emoser verify '$TESS'"
    assert str(data) not in run.stdout + run.stderr
    capsys.readouterr()


# --------------------------------------------------------------------------- speak
def test_speak_gives_float32_mono_at_the_requested_rate():
    happy = voice.speak("Say the word bath.", "happy", pause=0.2)
    assert happy.dtype == np.float32 and happy.ndim == 1
    seconds = len(happy) / RATE
    assert 0.9 < seconds < 3.5, seconds
    assert np.all(happy[: int(0.2 * RATE) - 5] == 0)  # the leading silence
    assert 0.02 < np.abs(happy).max() <= 1.0
    fast = voice.speak("Say the word bath.", "happy", rate=48000, pause=0.2)
    assert len(fast) / 48000 == pytest.approx(seconds, abs=0.05)


def test_speak_sad_is_slower_and_quieter_than_happy():
    happy = voice.speak("Say the word bath.", "happy", pause=0)
    sad = voice.speak("Say the word bath.", "sad", pause=0)
    assert len(sad) > len(happy)  # 148 vs 180 words per minute
    rms = lambda w: float(np.sqrt(np.mean(w.astype(np.float64) ** 2)))  # noqa: E731
    assert rms(sad) < rms(happy)


def test_speak_formant_fallback_and_errors():
    wave = voice.speak("Say the word bath.", "sad", engine="formant")
    assert wave.dtype == np.float32 and len(wave) > RATE // 2
    with pytest.raises(ValueError, match="unknown emotion"):
        voice.speak("Say the word bath.", "bored")
    with pytest.raises(ValueError, match="text"):
        voice.speak("   ", "happy")
    with pytest.raises(ValueError, match="rate"):
        voice.speak("hello", "happy", rate=0)


# --------------------------------------------------------------------------- uploads
def test_uploaded_files_reads_ipywidgets_7_and_8_values():
    v8 = ({"name": "a.wav", "type": "audio/wav", "size": 3, "content": memoryview(b"abc")},)
    v7 = {"b.wav": {"metadata": {"name": "b.wav"}, "content": b"xyz"}}
    assert voice._uploaded_files(v8) == [("a.wav", b"abc")]
    assert voice._uploaded_files(v7) == [("b.wav", b"xyz")]
    assert voice._uploaded_files(()) == []


def test_safe_name_drops_folders_and_odd_characters():
    assert voice._safe_name("../../etc/my take (1).wav") == "my_take_1_.wav"
    assert voice._safe_name("...") == "recording"


def _wav_bytes(tmp_path):
    path = tmp_path / "tone.wav"
    t = np.arange(RATE) / RATE
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), RATE)
    return path.read_bytes()


def test_record_or_upload_widget_saves_and_calls_back(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    seen = []
    uploads = voice.record_or_upload(tmp_path / "up", on_file=seen.append)
    assert uploads.widget is not None and uploads.paths == []
    assert uploads.summary() == "no recording uploaded yet"
    button = uploads.widget.children[0]
    content = _wav_bytes(tmp_path)
    button.value = ({"name": "my voice.wav", "type": "audio/wav", "size": len(content),
                     "content": memoryview(content),
                     "last_modified": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)},)
    assert seen == [tmp_path / "up" / "my_voice.wav"] == uploads.paths
    assert seen[0].read_bytes() == content
    assert uploads.summary() == "uploaded: my_voice.wav"


def test_record_or_upload_uses_the_colab_dialog_in_colab(tmp_path, monkeypatch):
    content = _wav_bytes(tmp_path)
    files = types.SimpleNamespace(upload=lambda: {"take 1.wav": content})
    colab = types.ModuleType("google.colab")
    colab.files = files
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    seen = []
    uploads = voice.record_or_upload(tmp_path / "up", on_file=seen.append)
    assert uploads.widget is None
    assert seen == uploads.paths == [tmp_path / "up" / "take_1.wav"]
    assert sf.info(seen[0]).samplerate == RATE


def test_to_wav_keeps_readable_files_and_leaves_unconvertible_ones(tmp_path, monkeypatch):
    good = tmp_path / "good.wav"
    good.write_bytes(_wav_bytes(tmp_path))
    assert voice.to_wav(good) == good
    junk = tmp_path / "memo.m4a"
    junk.write_bytes(b"not audio at all" * 10)
    monkeypatch.setattr(voice.shutil, "which", lambda name: None)  # no ffmpeg
    assert voice.to_wav(junk) == junk


# --------------------------------------------------------------------------- figure
def test_plot_probabilities_one_panel_per_file_with_labels():
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = {"a.wav": {"happy": 0.9, "sad": 0.1}, "b.wav": {"happy": 0.3, "sad": 0.7}}
    fig = emoser.course.plot_probabilities(results, title="Test", truth={"a.wav": "happy"})
    axes = fig.axes
    assert len(axes) == 2 and fig._suptitle.get_text() == "Test"
    assert axes[0].get_title() == "a.wav\n(true: happy)" and axes[1].get_title() == "b.wav"
    assert axes[0].get_ylabel() == "probability" and all(ax.get_xlabel() == "class" for ax in axes)
    heights = [p.get_height() for p in axes[1].patches]
    assert heights == pytest.approx([0.3, 0.7])
    plt.close(fig)
    with pytest.raises(ValueError, match="classes"):
        emoser.course.plot_probabilities({"a": {"happy": 1.0, "sad": 0.0},
                                          "b": {"sad": 1.0, "happy": 0.0}})
    with pytest.raises(ValueError):
        emoser.course.plot_probabilities({})
