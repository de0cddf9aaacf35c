"""Looking inside the model: gate activations, simple frame features, parameters, errors, timings.

Small helpers used by the chapters that take the LSTM and AudioNet apart. Nothing here is
needed to train a model; everything here helps to *see* what a model does.

Chapter: chapters/03_lstm_cell.ipynb, chapters/04_lstm_layer.ipynb, chapters/05_audionet.ipynb
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ..common import DEFAULT_FRAME_LENGTH, as_numpy
from ..prep.framing import frame_signal

__all__ = ["GATE_NAMES", "frame_features", "gate_trace", "parameter_table", "max_abs_error",
           "time_call", "compare_timings", "autograd_saved_bytes"]

GATE_NAMES = ("i", "f", "o", "g", "c", "h")


def frame_features(wave, frame_length: int = DEFAULT_FRAME_LENGTH, hop: int | None = None,
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
    frames = frame_signal(wave, frame_length, hop).astype(np.float64)
    rms = np.sqrt(np.mean(frames ** 2, axis=1))
    peak = rms.max()
    if peak > 0:
        level = 20 * np.log10(np.maximum(rms / peak, 10 ** (floor_db / 20)))
    else:
        level = np.full(rms.shape, float(floor_db))
    signs = np.signbit(frames)
    zcr = ((signs[:, 1:] != signs[:, :-1]).mean(axis=1) if frame_length > 1
           else np.zeros(len(frames)))
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
    x, y = as_numpy(a).astype(np.float64), as_numpy(b).astype(np.float64)
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


def autograd_saved_bytes(fn: Callable[[], Any]) -> int:
    """Bytes of the tensors autograd keeps for the backward pass while ``fn()`` runs.

    Under ``torch.no_grad()`` nothing is kept; without it, every operation on tensors that
    require gradients saves its inputs or outputs until the result is freed. Storages shared
    by several saved tensors are counted once.

    Args:
        fn (callable): runs a forward pass, e.g. ``lambda: model(x, lengths)``.

    Returns:
        int: bytes of distinct storages saved for backward.

    Chapter: chapters/09_what_went_wrong.ipynb
    """
    seen: dict[int, int] = {}

    def pack(t):
        try:
            storage = t.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
        except (RuntimeError, NotImplementedError):  # e.g. tensors without storage
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        result = fn()
    del result
    return int(sum(seen.values()))
