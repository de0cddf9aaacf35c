"""Tests of emoser.inspect_tools (no TESS needed)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from emoser.course import (  # noqa: E402
    compare_timings,
    format_table,
    frame_features,
    gate_trace,
    max_abs_error,
    parameter_table,
    plot_gates,
    time_call,
)
from emoser.nn import (  # noqa: E402
    AudioNet,  # noqa: E402
    LstmCell,
    LstmLayer,
)


def test_frame_features_known_answers():
    loud = np.tile([1.0, -1.0], 5)            # RMS 1, sign changes at every sample
    quiet = 0.1 * np.ones(10)                  # RMS 0.1 = -20 dB, no sign change
    feats = frame_features(np.concatenate([loud, quiet]), frame_length=10)
    assert feats.shape == (2, 2)
    np.testing.assert_allclose(feats[:, 0], [0.0, -20.0], atol=1e-9)
    np.testing.assert_allclose(feats[:, 1], [1.0, 0.0])


def test_frame_features_silence_is_the_floor():
    feats = frame_features(np.zeros(25), frame_length=10, floor_db=-50)
    assert feats.shape == (3, 2) and np.all(feats[:, 0] == -50.0)


@pytest.mark.parametrize("batched", [False, True])
def test_gate_trace_matches_the_cell_and_the_layer(batched):
    torch.manual_seed(0)
    layer = LstmLayer(3, 4).double()
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    h_all, c_all = layer(x)
    trace = gate_trace(layer.cell, x if batched else x[1])
    h_ref, c_ref = (h_all, c_all) if batched else (h_all[1], c_all[1])
    assert set(trace) == {"i", "f", "o", "g", "c", "h"}
    # (a batch of one may round differently from a batch of two: compare to 1e-12)
    assert torch.allclose(trace["h"], h_ref, rtol=0, atol=1e-12)
    assert torch.allclose(trace["c"], c_ref, rtol=0, atol=1e-12)
    for name in "ifo":
        assert trace[name].min() > 0 and trace[name].max() < 1
    # c_t = f c_{t-1} + i g, recomputed from the recorded gates
    c_prev = torch.cat([torch.zeros_like(trace["c"][..., :1, :]), trace["c"][..., :-1, :]], dim=-2)
    assert torch.allclose(trace["c"], trace["f"] * c_prev + trace["i"] * trace["g"], atol=1e-12)


def test_gate_trace_rejects_bad_shapes():
    with pytest.raises(ValueError, match="T × I"):
        gate_trace(LstmCell(2, 3), torch.zeros(2, 3, 4, 2))


def test_plot_gates_labels_everything():
    torch.manual_seed(0)
    cell = LstmCell(2, 3)
    x = torch.randn(7, 2)
    fig = plot_gates(gate_trace(cell, x), inputs=x, input_labels=["a", "b"], units=[0, 2],
                     title="gates")
    axes = [ax for ax in fig.axes if ax.axison]
    assert len(axes) == 6
    for ax in axes:
        assert ax.get_title() and ax.get_ylabel()
    assert fig.axes[-1].get_xlabel() == "time step t"
    plt.close(fig)


def test_parameter_table_counts_shared_modules_once():
    table = parameter_table(AudioNet())
    rows = dict(table)
    assert [name for name, _ in table] == ["conv1", "conv_rest.0", "lstm.0", "lstm.1", "fc",
                                           "total"]
    assert rows["conv1"] == 64 * 5 + 64
    assert rows["conv_rest.0"] == 64 * 64 * 5 + 64
    assert rows["lstm.0"] == 4 * 64 * (128 + 64 + 1)
    assert rows["lstm.1"] == 4 * 64 * (64 + 64 + 1)
    assert rows["fc"] == 64 * 2 + 2
    assert rows["total"] == sum(v for k, v in rows.items() if k != "total")
    unshared = dict(parameter_table(AudioNet(sharedConv=False)))
    assert unshared["conv_rest.0"] == unshared["conv_rest.1"] == rows["conv_rest.0"]
    assert unshared["total"] == rows["total"] + rows["conv_rest.0"]


def test_parameter_table_counts_direct_parameters():
    class Scale(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(3))
            self.lin = torch.nn.Linear(2, 2)

    assert parameter_table(Scale()) == [("lin", 6), ("(own parameters)", 3), ("total", 9)]


def test_format_table_aligns_numbers_right():
    text = format_table([("a", 5), ("bbb", 123)], ["name", "n"])
    lines = text.splitlines()
    assert lines[0] == "name    n"
    assert lines[2] == "a       5" and lines[3] == "bbb   123"
    with pytest.raises(ValueError, match="row 0"):
        format_table([(1,)], ["x", "y"])


def test_max_abs_error_on_tensors_and_sequences():
    a = torch.tensor([1.0, 2.0])
    assert max_abs_error(a, torch.tensor([1.0, 2.5])) == 0.5
    assert max_abs_error([a, a], [a, a + 3]) == 3.0
    with pytest.raises(ValueError, match="shapes differ"):
        max_abs_error(a, torch.zeros(3))


def test_time_call_runs_warmup_and_repeats():
    calls = []
    seconds = time_call(lambda: calls.append(1), repeat=3, warmup=2)
    assert len(calls) == 5 and seconds >= 0
    with pytest.raises(ValueError):
        time_call(lambda: None, repeat=0)


def test_compare_timings_interleaves_and_keeps_the_best():
    order = []
    result = compare_timings({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                             repeat=2, warmup=1)
    assert order == ["a", "b"] * 3
    assert list(result) == ["a", "b"] and all(v >= 0 for v in result.values())
