"""Figures of signals and of what the model computes: waveforms, spectrograms, frames,
per-class histograms, LSTM gate traces.

Every helper sets a title and axis labels and returns the Figure.

Chapter: chapters/01_data.ipynb
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...common import DEFAULT_RATE, as_numpy
from ...prep.framing import frame_signal

__all__ = ["plot_waveform_and_spectrogram", "plot_frames", "plot_class_histograms", "plot_gates"]


def _spectrogram_db(wave: np.ndarray, rate: int, n_fft: int):
    from scipy.signal import spectrogram

    nperseg = min(n_fft, len(wave))
    freqs, times, power = spectrogram(wave, fs=rate, nperseg=nperseg, noverlap=nperseg * 3 // 4,
                                      window="hann", scaling="spectrum")
    db = 10 * np.log10(np.maximum(power, 1e-12) / max(power.max(), 1e-12))
    return freqs, times, np.maximum(db, -80.0)


def plot_waveform_and_spectrogram(waves, rate: int, titles: Sequence[str] | None = None,
                                  n_fft: int = 512):
    """Show each waveform above its spectrogram (power in dB relative to its maximum).

    Args:
        waves (array | list of arrays): one 1-D waveform or a list of them (one column each).
        rate (int): sampling rate in Hz.
        titles (sequence of str | None): one title per waveform (default ``"waveform 1"``, ...).
        n_fft (int): samples per analysis window (default 512 ≈ 21 ms at 24414 Hz).

    Returns:
        matplotlib.figure.Figure: the figure, ``2 × len(waves)`` axes.

    Chapter: chapters/01_data.ipynb
    """
    import matplotlib.pyplot as plt

    if not isinstance(waves, (list, tuple)):
        waves = as_numpy(waves)
        waves = [waves] if waves.ndim == 1 else list(waves)
    waves = [as_numpy(w).astype(np.float64).ravel() for w in waves]
    if not waves or any(w.size == 0 for w in waves):
        raise ValueError("plot_waveform_and_spectrogram needs non-empty waveforms")
    if titles is None:
        titles = ([f"waveform {i + 1}" for i in range(len(waves))] if len(waves) > 1
                  else ["waveform"])
    titles = list(titles)
    if len(titles) != len(waves):
        raise ValueError(f"got {len(titles)} titles for {len(waves)} waveforms")
    n = len(waves)
    fig, axes = plt.subplots(2, n, figsize=(4.5 * n, 5), squeeze=False, constrained_layout=True)
    for k, (wave, title) in enumerate(zip(waves, titles)):
        t = np.arange(wave.size) / rate
        top, bottom = axes[0, k], axes[1, k]
        top.plot(t, wave, lw=0.5)
        top.set_xlim(0, t[-1] if t[-1] > 0 else 1 / rate)
        top.set_title(title)
        top.set_xlabel("time (s)")
        top.set_ylabel("amplitude")
        freqs, times, db = _spectrogram_db(wave, rate, n_fft)
        bottom.pcolormesh(times, freqs / 1000, db, shading="auto", cmap="magma", vmin=-80, vmax=0)
        bottom.set_title(f"{title}: spectrogram (dB re max)")
        bottom.set_xlabel("time (s)")
        bottom.set_ylabel("frequency (kHz)")
        bottom.grid(False)
    return fig


def plot_frames(wave, frame_length: int, hop: int | None = None, rate: int = DEFAULT_RATE,
                title: str | None = None):
    """Show how a waveform is cut into frames, and the zero-padded last frame.

    Top: the waveform with a line at every frame start and the padding that
    completes the last frame shaded. Bottom: the last frame itself, real samples
    and the zeros appended to reach ``frame_length``.

    Args:
        wave (array-like): a 1-D waveform.
        frame_length (int): samples per frame.
        hop (int | None): samples between frame starts (None: ``frame_length``).
        rate (int): sampling rate in Hz, for the time axis (default 24414).
        title (str | None): title of the top panel.

    Returns:
        matplotlib.figure.Figure: the figure (two axes).

    Chapter: chapters/02_framing.ipynb
    """
    import matplotlib.pyplot as plt

    wave = as_numpy(wave).astype(np.float64).ravel()
    frames = frame_signal(wave, frame_length, hop)
    hop = frame_length if hop is None else int(hop)
    n_frames = frames.shape[0]
    last_start = (n_frames - 1) * hop
    real = min(wave.size - last_start, frame_length)  # real samples in the last frame
    pad = frame_length - real
    ms = 1000.0 / rate
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5), constrained_layout=True)
    top.plot(np.arange(wave.size) * ms, wave, lw=0.6, color="C0")
    for k in range(n_frames):
        top.axvline(k * hop * ms, color="C1", lw=0.6, alpha=0.7)
    end = (last_start + frame_length) * ms
    top.axvline(end, color="C1", lw=0.6, alpha=0.7)
    if pad > 0:
        top.axvspan(wave.size * ms, end, color="C3", alpha=0.2,
                    label=f"zero padding ({pad} samples)")
        top.legend(loc="upper right")
    top.set_title(title or f"{wave.size} samples → {n_frames} frames of {frame_length} (hop {hop})")
    top.set_xlabel("time (ms)")
    top.set_ylabel("amplitude")
    idx = np.arange(frame_length)
    bottom.plot(idx[:real], frames[-1, :real], lw=0.8, color="C0", label="samples")
    if pad > 0:
        bottom.plot(idx[real:], frames[-1, real:], lw=1.5, color="C3", label="zero padding")
        bottom.axvspan(real - 0.5, frame_length - 0.5, color="C3", alpha=0.15)
    bottom.legend(loc="upper right")
    bottom.set_title(f"last frame (frame {n_frames}): {real} samples + {pad} zeros")
    bottom.set_xlabel("sample within the frame")
    bottom.set_ylabel("amplitude")
    return fig


def plot_class_histograms(values, labels, classes: Sequence[str], *, xlabel: str, title: str,
                          bins: int = 25, ax=None):
    """Overlaid histograms of one number per example, one colour per class, shared bins.

    Args:
        values (array of float): one number per example.
        labels (array of int): class index of every example.
        classes (sequence of str): class names.
        xlabel (str): what the number is, with its unit.
        title (str): axes title.
        bins (int): number of bins over the common range.
        ax (matplotlib Axes | None): draw into these axes instead of a new figure.

    Returns:
        matplotlib.figure.Figure: the figure.

    Chapter: chapters/01_data.ipynb
    """
    import matplotlib.pyplot as plt

    values = as_numpy(values).astype(np.float64).ravel()
    labels = as_numpy(labels).ravel()
    if values.shape != labels.shape:
        raise ValueError(f"got {values.size} values for {labels.size} labels")
    finite = np.isfinite(values)
    edges = np.histogram_bin_edges(values[finite], bins=bins)
    if ax is None:
        fig, ax = plt.subplots()
    else:
        fig = ax.figure
    for i, cls in enumerate(classes):
        v = values[(labels == i) & finite]
        ax.hist(v, bins=edges, alpha=0.55, label=f"{cls} (n={v.size})", color=f"C{i}")
        if v.size:
            ax.axvline(np.median(v), color=f"C{i}", ls="--", lw=1.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("number of recordings")
    ax.set_title(title)
    ax.legend(title="dashed: median", fontsize="small")
    return fig


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

    arrays = {k: as_numpy(v) for k, v in trace.items()}
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
        inp = as_numpy(inputs).reshape(steps, -1)
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
