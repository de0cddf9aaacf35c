"""Plot helpers: every axes has a title and axis labels; the figures show what they claim."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from emoser.course import figures as plots  # noqa: E402
from emoser.course.figures import signals  # noqa: E402
from emoser.training import History  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def assert_labelled(fig):
    assert fig.axes, "figure has no axes"
    for ax in fig.axes:
        assert ax.get_title().strip(), f"axes without title in {fig}"
        assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), (
            f"axes {ax.get_title()!r} lacks a label")


def history(accs, val=True):
    return History(epochs=[{"epoch": k + 1, "train_loss": 1 - a, "train_acc": a,
                            "val_loss": (1.1 - a) if val else None,
                            "val_acc": (a - 0.05) if val else None,
                            "seconds": 0.1} for k, a in enumerate(accs)])


def test_plot_history_single_and_several():
    fig = plots.plot_history(history([0.5, 0.7, 0.9]))
    assert_labelled(fig)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2  # training and validation
    np.testing.assert_allclose(lines[0].get_ydata(), [50, 70, 90])  # percent
    fig = plots.plot_history([history([0.5, 0.6]), history([0.4, 0.8], val=False).to_dict()],
                             metric="loss", labels=["shuffled", "ordered"])
    assert_labelled(fig)
    assert "loss" in fig.axes[0].get_ylabel()
    assert [line.get_label() for line in fig.axes[0].get_lines()] == [
        "shuffled training", "shuffled validation", "ordered training"]


def test_plot_history_rejects_unknown_metric():
    with pytest.raises(ValueError, match="metric"):
        plots.plot_history(history([0.5]), metric="f1")


def test_plot_confusion():
    fig = plots.plot_confusion(np.array([[50, 10], [5, 55]]), ["happy", "sad"], title="Test set")
    assert_labelled(fig)
    ax = fig.axes[0]
    assert ax.get_title() == "Test set"
    assert sorted(t.get_text() for t in ax.texts) == ["10", "5", "50", "55"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["happy", "sad"]
    fig = plots.plot_confusion(torch.tensor([[3, 1], [0, 4]]), ["a", "b"], normalize=True)
    assert "75%" in [t.get_text() for t in fig.axes[0].texts]
    with pytest.raises(ValueError, match="2 × 2"):
        plots.plot_confusion(np.zeros((3, 3)), ["a", "b"])


def test_plot_waveform_and_spectrogram():
    rate = 8000
    t = np.arange(rate // 2) / rate
    low, high = np.sin(2 * np.pi * 300 * t), np.sin(2 * np.pi * 2000 * t)
    fig = plots.plot_waveform_and_spectrogram([low, torch.tensor(high)], rate,
                                              titles=["low", "high"])
    assert_labelled(fig)
    assert len(fig.axes) == 4
    assert fig.axes[0].get_title() == "low"
    # the spectrogram's loudest band sits at the tone's frequency
    freqs, _, db = signals._spectrogram_db(high, rate, 512)
    assert abs(freqs[db.mean(axis=1).argmax()] - 2000) < rate / 512 * 1.5
    assert_labelled(plots.plot_waveform_and_spectrogram(low, rate))


def test_plot_frames_shows_padding():
    wave = np.sin(np.arange(1234) / 10)
    fig = plots.plot_frames(wave, 500, rate=24414)
    assert_labelled(fig)
    top, bottom = fig.axes
    assert "3 frames" in top.get_title()
    assert "234 samples + 266 zeros" in bottom.get_title()
    exact = plots.plot_frames(np.ones(1000), 500, hop=250)
    assert "+ 0 zeros" in exact.axes[1].get_title()
    assert_labelled(exact)
