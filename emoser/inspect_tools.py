"""Looking inside the model: gate activations, simple frame features, tables, errors, timings.

Small helpers used by the chapters that take the LSTM and AudioNet apart. Nothing here is
needed to train a model; everything here helps to *see* what a model does.

Chapter: chapters/03_lstm_cell.ipynb, chapters/04_lstm_layer.ipynb, chapters/05_audionet.ipynb
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

__all__ = [
    "frame_features",
    "gate_trace",
    "plot_gates",
    "parameter_table",
    "format_table",
    "max_abs_error",
    "time_call",
    "compare_timings",
]

GATE_NAMES = ("i", "f", "o", "g", "c", "h")


def frame_features(wave, frame_length: int = 500, hop: int | None = None,
                   floor_db: float = -60.0) -> np.ndarray:
    """Two hand-made features per frame: level (dB) and zero-crossing rate.

    A tiny, CNN-free input for the LSTM chapters: column 0 is the frame's RMS level in dB
    relative to the loudest frame of the waveform (0 dB = loudest, clipped at ``floor_db``),
    column 1 the fraction of neighbouring sample pairs in the frame whose signs differ
    (high for hissy sounds such as "s", low for vowels).

    Chapter: chapters/03_lstm_cell.ipynb

    Args:
        wave: 1-D waveform (array or tensor) with at least one sample.
        frame_length (int): samples per frame (default 500).
        hop (int | None): samples between frame starts (None: ``frame_length``).
        floor_db (float): lowest level reported, in dB (default -60).

    Returns:
        np.ndarray: ``(n_frames, 2)`` float64, columns level (dB) and zero-crossing rate.
    """
    from .frames import frame_signal

    frames = frame_signal(wave, frame_length, hop).astype(np.float64)
    rms = np.sqrt(np.mean(frames ** 2, axis=1))
    peak = rms.max()
    if peak > 0:
        level = 20 * np.log10(np.maximum(rms / peak, 10 ** (floor_db / 20)))
    else:
        level = np.full(rms.shape, float(floor_db))
    signs = np.signbit(frames)
    zcr = (signs[:, 1:] != signs[:, :-1]).mean(axis=1) if frame_length > 1 else np.zeros(len(frames))
    return np.stack([level, zcr], axis=1)


def gate_trace(cell: nn.Module, x: torch.Tensor, state=None) -> dict:
    """Run an :class:`~emoser.lstm.LstmCell` over a sequence and keep every gate.

    Recomputes the cell's equations from its four gate layers so that the gates,
    which :meth:`LstmCell.forward` does not return, can be plotted. The ``h`` and ``c``
    it returns are those of the cell itself.

    Chapter: chapters/03_lstm_cell.ipynb

    Args:
        cell (LstmCell): the cell (any module with ``input_gate``, ``forget_gate``,
            ``output_gate``, ``candidate`` linear layers over ``[x_t, h_{t-1}]``).
        x (torch.Tensor): ``T × I`` (one sequence) or ``N × T × I``.
        state (tuple | None): initial ``(h, c)``, each ``N × H``; None means zeros.

    Returns:
        dict: ``"i"``, ``"f"``, ``"o"``, ``"g"``, ``"c"``, ``"h"`` → detached tensors of shape
        ``T × H`` (for a 2-D ``x``) or ``N × T × H``.
    """
    single = x.ndim == 2
    if single:
        x = x.unsqueeze(0)
        if state is not None:
            state = tuple(s.reshape(1, -1) for s in state)
    if x.ndim != 3:
        raise ValueError(f"gate_trace expects x of shape T × I or N × T × I, got {tuple(x.shape)}")
    n, steps, _ = x.shape
    hid = cell.input_gate.out_features
    if state is None:
        h = x.new_zeros(n, hid)
        c = x.new_zeros(n, hid)
    else:
        h, c = state
    out = {k: [] for k in GATE_NAMES}
    with torch.no_grad():
        for t in range(steps):
            xh = torch.cat([x[:, t], h], dim=1)
            i = torch.sigmoid(cell.input_gate(xh))
            f = torch.sigmoid(cell.forget_gate(xh))
            o = torch.sigmoid(cell.output_gate(xh))
            g = torch.tanh(cell.candidate(xh))
            h, c = cell(x[:, t], (h, c))
            for k, v in zip(GATE_NAMES, (i, f, o, g, c, h)):
                out[k].append(v)
    result = {k: torch.stack(v, dim=1) for k, v in out.items()}
    if single:
        result = {k: v[0] for k, v in result.items()}
    return result


def plot_gates(trace: dict, inputs=None, input_labels: Sequence[str] | None = None,
               units: Sequence[int] | None = None, step_seconds: float | None = None,
               title: str | None = None):
    """Plot the gates and the state of an LSTM cell over time (one sequence).

    Top row: the inputs (optional). Then one row per hidden unit: on the left the three
    gates ``i``, ``f``, ``o`` (between 0 and 1), on the right the candidate ``g``, the
    cell state ``c`` and the output ``h``.

    Chapter: chapters/03_lstm_cell.ipynb

    Args:
        trace (dict): from :func:`gate_trace` for one sequence (tensors ``T × H``).
        inputs (array-like | None): ``T × I`` inputs to draw in the top row.
        input_labels (sequence of str | None): one legend label per input column.
        units (sequence of int | None): hidden units to draw (default all, at most 4).
        step_seconds (float | None): duration of one step; the x axis is then in seconds.
        title (str | None): title of the figure.

    Returns:
        matplotlib.figure.Figure: the figure.
    """
    import matplotlib.pyplot as plt

    arrays = {k: _numpy(v) for k, v in trace.items()}
    if arrays["h"].ndim != 2:
        raise ValueError("plot_gates draws one sequence: pass a trace with T × H tensors")
    steps, hid = arrays["h"].shape
    units = list(range(min(hid, 4))) if units is None else list(units)
    t = np.arange(steps) * (step_seconds if step_seconds else 1.0)
    xlabel = "time (s)" if step_seconds else "time step t"
    rows = len(units) + (inputs is not None)
    fig, axes = plt.subplots(rows, 2, figsize=(10, 2.4 * rows), squeeze=False,
                             constrained_layout=True, sharex=True)
    r = 0
    if inputs is not None:
        inp = _numpy(inputs).reshape(steps, -1)
        labels = list(input_labels) if input_labels else [f"input {k}" for k in range(inp.shape[1])]
        if inp.shape[1] <= 2:  # one panel per input
            for k, ax in enumerate(axes[0]):
                if k < inp.shape[1]:
                    ax.plot(t, inp[:, k], color=f"C{7 + k}")
                    ax.set_title(f"input: {labels[k]}")
                    ax.set_ylabel(labels[k])
                else:
                    ax.axis("off")
        else:  # all inputs in one panel
            for k in range(inp.shape[1]):
                axes[0, 0].plot(t, inp[:, k], label=labels[k])
            axes[0, 0].set_title("inputs")
            axes[0, 0].set_ylabel("value")
            axes[0, 0].legend(loc="upper right", fontsize="small")
            axes[0, 1].axis("off")
        r = 1
    for u in units:
        left, right = axes[r]
        for name, color in (("i", "C0"), ("f", "C1"), ("o", "C2")):
            left.plot(t, arrays[name][:, u], color=color, label=f"{name} (gate)")
        left.set_ylim(-0.05, 1.05)
        left.set_title(f"unit {u}: gates")
        left.set_ylabel("gate value")
        left.legend(loc="center right", fontsize="small")
        for name, color, style in (("g", "C4", ":"), ("c", "C3", "-"), ("h", "C5", "--")):
            right.plot(t, arrays[name][:, u], style, color=color, label=name)
        right.set_title(f"unit {u}: candidate g, cell state c, output h")
        right.set_ylabel("value")
        right.legend(loc="center right", fontsize="small")
        r += 1
    for ax in axes[-1]:
        ax.set_xlabel(xlabel)
    if title:
        fig.suptitle(title)
    return fig


def parameter_table(model: nn.Module) -> list[tuple[str, int]]:
    """Trainable parameters of each top-level submodule, and the total.

    A container (``nn.ModuleList``, ``nn.ModuleDict``, ``nn.Sequential``) is opened one level,
    so its members get their own rows (``lstm.0``, ``lstm.1``). A module used several times
    (a shared convolution) is one entry and is counted once, exactly as ``model.parameters()``
    counts it.

    Chapter: chapters/05_audionet.ipynb

    Args:
        model (nn.Module): the model.

    Returns:
        list[tuple[str, int]]: ``(submodule name, parameter count)`` for every submodule that
        has parameters, then ``("total", count)``.
    """
    containers = (nn.ModuleList, nn.ModuleDict, nn.Sequential)
    rows = []
    for name, child in model.named_children():
        members = child.named_children() if isinstance(child, containers) else [(None, child)]
        for sub, module in members:
            count = sum(p.numel() for p in module.parameters())
            if count:
                rows.append((name if sub is None else f"{name}.{sub}", count))
    own = sum(p.numel() for p in model.parameters(recurse=False))
    if own:
        rows.append(("(own parameters)", own))
    rows.append(("total", sum(p.numel() for p in model.parameters())))
    return rows


def format_table(rows: Sequence[Sequence], headers: Sequence[str]) -> str:
    """Rows as an aligned plain-text table (for printing in a chapter).

    Chapter: chapters/05_audionet.ipynb

    Args:
        rows: the rows, each a sequence of values (converted with ``str``).
        headers: one header per column.

    Returns:
        str: the table, a header line, a rule, and one line per row; numbers right-aligned.
    """
    headers = [str(h) for h in headers]
    cells = [[str(v) for v in row] for row in rows]
    for k, row in enumerate(cells):
        if len(row) != len(headers):
            raise ValueError(f"row {k} has {len(row)} values for {len(headers)} headers")
    numeric = [all(_is_number(row[j]) for row in rows) if rows else False for j in range(len(headers))]
    widths = [max([len(headers[j])] + [len(row[j]) for row in cells]) for j in range(len(headers))]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths)] + [line(r) for r in cells])


def max_abs_error(a, b) -> float:
    """Largest absolute difference between two tensors (or two equally long sequences of them).

    Chapter: chapters/03_lstm_cell.ipynb

    Args:
        a, b: tensors/arrays of equal shapes, or sequences of such pairs in the same order.

    Returns:
        float: ``max |a - b|`` over all elements (0.0 for empty inputs).
    """
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        if len(a) != len(b):
            raise ValueError(f"max_abs_error: {len(a)} tensors against {len(b)}")
        return max([max_abs_error(x, y) for x, y in zip(a, b)], default=0.0)
    x, y = _numpy(a).astype(np.float64), _numpy(b).astype(np.float64)
    if x.shape != y.shape:
        raise ValueError(f"max_abs_error: shapes differ, {x.shape} vs {y.shape}")
    return float(np.abs(x - y).max()) if x.size else 0.0


def time_call(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds (CUDA work is waited for).

    Chapter: chapters/04_lstm_layer.ipynb

    Args:
        fn (callable): called without arguments.
        repeat (int): timed calls (>= 1).
        warmup (int): untimed calls first.

    Returns:
        float: the median of the timed calls, in seconds.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare_timings(functions: dict, repeat: int = 5, warmup: int = 1) -> dict:
    """Time several functions fairly on a busy machine: interleaved calls, best of ``repeat``.

    The functions are called in turn (A, B, A, B, ...), so that a burst of load from other
    processes hits all of them alike, and the *fastest* call of each is reported: the one least
    disturbed by anything else.

    Chapter: chapters/04_lstm_layer.ipynb

    Args:
        functions (dict): name → function called without arguments.
        repeat (int): timed calls of each function (>= 1).
        warmup (int): untimed calls of each function first.

    Returns:
        dict: name → seconds of its fastest call, in the order of ``functions``.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(warmup):
        for fn in functions.values():
            fn()
    sync()
    best = {name: float("inf") for name in functions}
    for _ in range(repeat):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            sync()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
