"""Known-answer tests for emoser.explore (no TESS needed)."""
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from emoser import course as explore  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------- redact_paths
def test_redact_paths_replaces_tess_dir_cache_tmp_and_home(monkeypatch, tmp_path):
    tess = tmp_path / "somewhere" / "tess"
    tess.mkdir(parents=True)
    cache = tmp_path / "cachefolder"
    monkeypatch.setenv("EMOSER_TESS_DIR", str(tess))
    monkeypatch.setenv("EMOSER_CACHE_DIR", str(cache))
    text = (f"TESS at {tess}; cache {cache}/tess; tmp {tempfile.gettempdir()}/x; "
            f"home {Path.home()}/notes")
    out = explore.redact_paths(text)
    assert out == "TESS at $EMOSER_TESS_DIR; cache <cache>/tess; tmp <tmp>/x; home ~/notes"
    assert explore.redact_paths("/opt/data/x", extra={"/opt/data": "<data>"}) == "<data>/x"


def test_redact_paths_without_tess_dir_leaves_other_text(monkeypatch):
    monkeypatch.delenv("EMOSER_TESS_DIR", raising=False)
    assert explore.redact_paths("relative/path and words") == "relative/path and words"


# ---------------------------------------------------------------- utterance_stats
def test_utterance_stats_known_answers_for_a_sine():
    rate = 8000
    t = np.arange(rate) / rate  # 1 s
    wave = 0.5 * np.sin(2 * np.pi * 200 * t)
    silence_then_tone = np.concatenate([np.zeros(rate // 2), wave])
    s = explore.utterance_stats([wave, silence_then_tone], rate, frame_length=1024)
    np.testing.assert_allclose(s["duration_s"], [1.0, 1.5])
    np.testing.assert_allclose(s["rms"][0], 0.5 / np.sqrt(2), rtol=1e-3)
    np.testing.assert_allclose(s["rms_db"][0], 20 * np.log10(0.5 / np.sqrt(2)), rtol=1e-3)
    # the silent half is ignored for pitch: both estimates are 200 Hz
    np.testing.assert_allclose(s["f0_hz"], [200, 200], rtol=0.02)


def test_utterance_stats_without_pitch_and_errors():
    s = explore.utterance_stats([np.ones(10)], 10, pitch=False)
    assert set(s) == {"duration_s", "rms", "rms_db"}
    with pytest.raises(ValueError, match="empty"):
        explore.utterance_stats([np.zeros(0)], 10)
    with pytest.raises(ValueError):
        explore.utterance_stats([], 10)


# ---------------------------------------------------------------- describe_by_class
def test_describe_by_class_lists_each_statistic_and_class():
    text = explore.describe_by_class({"x": np.array([1.0, 3.0, 10.0])}, np.array([0, 0, 1]),
                                     ("a", "b"), formats={"x": ".1f"})
    lines = text.splitlines()
    assert len(lines) == 3
    assert "2.0 ± 1.0" in lines[1] and lines[1].split()[1] == "a"
    assert "10.0 ± 0.0" in lines[2]
    with pytest.raises(ValueError):
        explore.describe_by_class({"x": np.ones(2)}, np.zeros(3, int), ("a",))


# ---------------------------------------------------------------- threshold_accuracy
def test_threshold_accuracy_separable_and_direction():
    t, acc, above = explore.threshold_accuracy([1, 2, 3, 10, 11], [0, 0, 0, 1, 1])
    assert acc == 1.0 and above == 1 and 3 < t < 10
    t, acc, above = explore.threshold_accuracy([1, 2, 3, 10, 11], [1, 1, 1, 0, 0])
    assert acc == 1.0 and above == 0 and 3 < t < 10


def test_threshold_accuracy_overlap_and_ties():
    # one 1 sits among the 0s: best is 4/5
    _, acc, _ = explore.threshold_accuracy([1, 2, 3, 4, 5], [0, 1, 0, 1, 1])
    assert acc == pytest.approx(0.8)
    # equal values cannot be split: all at one value -> majority
    _, acc, _ = explore.threshold_accuracy([2, 2, 2], [0, 1, 1])
    assert acc == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        explore.threshold_accuracy([1, 2], [0, 2])


# ---------------------------------------------------------------- plot_class_histograms
def test_plot_class_histograms_is_labelled_with_one_legend_entry_per_class():
    fig = explore.plot_class_histograms(np.r_[np.zeros(5), np.ones(3)], np.r_[[0] * 5, [1] * 3],
                                        ("happy", "sad"), xlabel="x (s)", title="t")
    ax = fig.axes[0]
    assert ax.get_title() == "t" and ax.get_xlabel() == "x (s)" and ax.get_ylabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["happy (n=5)", "sad (n=3)"]


# ---------------------------------------------------------------- padding_fraction
def test_padding_fraction_known_answers():
    assert explore.padding_fraction([2, 4]) == pytest.approx(0.25)
    assert explore.padding_fraction([2, 4], [[0], [1]]) == 0.0
    assert explore.padding_fraction([1, 3, 3, 3]) == pytest.approx(2 / 12)
    # grouping similar lengths pads less than grouping dissimilar ones
    lengths = [1, 1, 9, 9]
    assert explore.padding_fraction(lengths, [[0, 1], [2, 3]]) == 0.0
    assert explore.padding_fraction(lengths, [[0, 2], [1, 3]]) == pytest.approx(16 / 36)
    with pytest.raises(ValueError):
        explore.padding_fraction([2, 0])
    with pytest.raises(ValueError):
        explore.padding_fraction([2, 3], [[]])
