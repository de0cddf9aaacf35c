"""The course's diagrams: drawn (Agg), titled, opaque, and labelled with what the code computes."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from emoser.course.figures import diagrams  # noqa: E402
from emoser.nn import AudioNet, describe_shapes  # noqa: E402
from emoser.prep import frame_signal  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def _assert_titled_and_opaque(fig):
    assert fig.axes and fig.axes[0].get_title().strip(), "diagram without a title"
    assert fig.get_facecolor()[3] == 1.0 and fig.get_facecolor()[:3] == (1.0, 1.0, 1.0), (
        "diagrams need an opaque white background (legible in dark mode)")
    fig.canvas.draw()  # renders: mathtext and patches are valid


def test_framing_diagram_counts_what_frame_signal_cuts():
    import numpy as np

    fig = diagrams.draw_framing(n=1150, frame_length=500, overlap_hop=250, lengths=(3, 5, 2))
    _assert_titled_and_opaque(fig)
    for hop, count in fig.frame_counts.items():
        assert count == len(frame_signal(np.zeros(1150), 500, hop))
        assert any(t.endswith(f"= {count} frames") and f"hop {hop}:" in t for t in _texts(fig))
    assert fig.frame_counts == {500: 3, 250: 4}
    assert fig.batch_shape == (3, 5, 500)
    texts = _texts(fig)
    assert texts.count("pad") == 3 * 5 - (3 + 5 + 2)  # one hatched box per padded frame
    assert sum(t.startswith("frame ") for t in texts) == 3 + 4
    with pytest.raises(ValueError):
        diagrams.draw_framing(lengths=())


def test_lstm_cell_diagram_has_the_four_gates_and_equations():
    fig = diagrams.draw_lstm_cell()
    _assert_titled_and_opaque(fig)
    assert fig.gates == ["f (σ)", "i (σ)", "g (tanh)", "o (σ)"]
    texts = " ".join(_texts(fig))
    assert r"$c_t = f_t \odot c_{t-1} + i_t \odot g_t$" in texts
    assert r"$h_t = o_t \odot \tanh(c_t)$" in texts


def test_lstm_layer_diagram_reads_each_last_valid_step():
    fig = diagrams.draw_lstm_layer(lengths=(4, 6, 3))
    _assert_titled_and_opaque(fig)
    assert fig.read_steps == [3, 5, 2]
    texts = _texts(fig)
    assert {"h[0, 3]", "h[1, 5]", "h[2, 2]"} <= set(texts)
    assert texts.count("✗ step T−1") == 2  # the two padded sequences
    with pytest.raises(ValueError):
        diagrams.draw_lstm_layer(lengths=(0, 2))


def test_audionet_diagram_labels_the_models_own_shapes():
    torch.manual_seed(0)
    model = AudioNet(inDim=600, convOutNum=32, hiddenSize=16)
    x, lengths = torch.zeros(3, 9, 600), torch.tensor([9, 4, 6])
    fig = diagrams.draw_audionet(model, x, lengths)
    _assert_titled_and_opaque(fig)
    stages = describe_shapes(model, x, lengths)
    assert fig.stages == [(name, tuple(shape)) for name, shape in stages]
    texts = _texts(fig)
    for name, shape in stages:
        assert name in texts and " × ".join(map(str, shape)) in texts, (name, shape)
    assert "19 × 32 × 300" not in texts and "19 × 1 × 300" in texts  # M = 9 + 4 + 6
    assert "3 × 16" in texts and "3 × 2" in texts
