"""Checkers for the coding exercises: each says right or wrong, and when wrong, where and why.

A checker takes the reader's function (or value), runs it on small cases whose answers the
package knows, and returns a :class:`Verdict` that prints as one line or a few:
``right: ...`` or ``wrong: ...`` with the first case that differs and, where a typical slip
explains the difference, the slip. Checkers never raise for a wrong answer (a chapter keeps
running); :meth:`Verdict.require` turns a wrong verdict into an ``AssertionError`` (what the
stored chapters do, so that nbval fails if the solution in place stops being right).

One section per chapter, in book order.

Chapter: chapters/01_data.ipynb
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..common import as_numpy
from ..nn import AudioNet, describe_shapes
from ..prep import count_frames, frame_signal

__all__ = ["Verdict", "check_rms_db", "check_frame_count", "check_frame_signal", "check_lstm_step",
           "check_last_valid_step", "check_cnn_lengths", "CNN_STAGES", "sharing_results"]


@dataclass(frozen=True)
class Verdict:
    """The answer of a checker: ``ok`` and a message for the reader.

    Chapter: chapters/01_data.ipynb
    """

    ok: bool
    message: str

    def __str__(self) -> str:
        return ("right: " if self.ok else "wrong: ") + self.message

    def __repr__(self) -> str:
        return str(self)

    def __bool__(self) -> bool:
        return self.ok

    def require(self) -> Verdict:
        """Return ``self`` if right, else raise ``AssertionError`` with the message.

        Chapter: chapters/01_data.ipynb
        """
        if not self.ok:
            raise AssertionError(str(self))
        return self


def _call(fn, *args):
    """``fn(*args)``, or a wrong verdict naming the exception (a reader's ``...`` included)."""
    try:
        return fn(*args), None
    except Exception as exc:  # the reader's code may fail in any way
        hint = " (is a `...` of the scaffold still to fill?)" if "ellipsis" in str(exc) else ""
        return None, Verdict(False, f"calling your function raised {type(exc).__name__}: "
                                    f"{exc}{hint}")


def _unfilled(value) -> bool:
    return value is Ellipsis or (isinstance(value, (tuple, list))
                                 and any(v is Ellipsis for v in value))


_UNFILLED = Verdict(False, "your function returns `...`: fill in the `...` of the scaffold first")


# --- chapter 1: loudness ------------------------------------------------------------------------

def _rms_db_cases() -> list[tuple[str, np.ndarray]]:
    t = np.arange(24414) / 24414
    rng = np.random.default_rng(0)
    return [
        ("a sine of amplitude 0.5", (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)),
        ("a square wave of amplitude 0.1", np.where(np.sin(2 * np.pi * 100 * t) >= 0, 0.1, -0.1)
         .astype(np.float32)),
        ("noise with a DC offset", (0.05 * rng.standard_normal(5000) + 0.02).astype(np.float32)),
    ]


def check_rms_db(fn) -> Verdict:
    """Check ``fn(wave) -> RMS level in dB re full scale``, i.e. ``20·log10(sqrt(mean(x²)))``.

    The reference is :func:`emoser.course.utterance_stats`'s ``rms_db``. Typical slips named:
    ``10·log10`` of the RMS, no square root, the peak instead of the RMS, removing the mean.

    Chapter: chapters/01_data.ipynb
    """
    for name, wave in _rms_db_cases():
        x = wave.astype(np.float64)
        rms = math.sqrt(float(np.mean(x ** 2)))
        expected = 20 * math.log10(rms)
        got, failed = _call(fn, wave.copy())
        if failed is not None:
            return failed
        if _unfilled(got):
            return _UNFILLED
        try:
            got = float(got)
        except (TypeError, ValueError):
            return Verdict(False, f"for {name} your function returns {got!r}, not one number")
        if abs(got - expected) <= 1e-3:
            continue
        slips = {
            "10·log10 of the RMS (use 20·log10 for an amplitude, 10·log10 for a power)":
                10 * math.log10(rms),
            "no square root: that is the mean power, whose level is 10·log10, not 20·log10":
                20 * math.log10(rms ** 2),
            "the peak amplitude instead of the root mean square":
                20 * math.log10(float(np.abs(x).max())),
            "the standard deviation (mean removed): the RMS keeps the mean":
                20 * math.log10(float(x.std())),
            "the mean absolute value instead of the root mean square":
                20 * math.log10(float(np.abs(x).mean())),
        }
        hint = next((f" It matches {slip}." for slip, value in slips.items()
                     if abs(got - value) <= 1e-3), "")
        return Verdict(False, f"for {name} your function gives {got:.2f} dB, expected "
                              f"{expected:.2f} dB (RMS {rms:.4f}).{hint}")
    return Verdict(True, f"{len(_rms_db_cases())} test signals give the expected RMS level "
                         "20·log10(sqrt(mean(x²)))")


# --- chapter 2: framing -------------------------------------------------------------------------

FRAME_COUNT_CASES = [(7, 3, 3), (7, 3, 2), (2, 3, 3), (500, 500, 500), (501, 500, 500),
                     (46089, 500, 500), (46089, 500, 250), (10000, 977, 244), (1000, 500, 750),
                     (65000, 977, 244)]


def check_frame_count(fn) -> Verdict:
    """Check ``fn(n, frame_length, hop) -> number of frames`` against :func:`frame_signal`.

    The reference is :func:`emoser.prep.count_frames`, the count ``frame_signal`` cuts (the
    last frame zero-padded; no all-zero frame when the hop is longer than a frame).

    Chapter: chapters/02_framing.ipynb
    """
    for n, length, hop in FRAME_COUNT_CASES:
        expected = count_frames(n, length, hop)
        got, failed = _call(fn, n, length, hop)
        if failed is not None:
            return failed
        if _unfilled(got):
            return _UNFILLED
        if got == expected:
            continue
        try:
            got_int = int(got)
        except (TypeError, ValueError):
            return Verdict(False, f"for n={n}, L={length}, hop={hop} your function returns "
                                  f"{got!r}, not an integer")
        last_start = (expected - 1) * hop
        slips = {
            "n // hop: that drops the zero-padded last frame": n // hop,
            "ceil(n / hop): with overlap that counts frames starting after the one that "
            "already reaches the end": math.ceil(n / hop),
            "floor instead of ceil: the tail that fills less than a hop is lost":
                1 + max(n - length, 0) // hop,
        }
        hint = next((f" It matches {slip}." for slip, value in slips.items()
                     if got_int == value), "")
        return Verdict(False, f"for n={n} samples, L={length}, hop={hop} you give {got_int} "
                              f"frames, frame_signal cuts {expected} (the last one starts at "
                              f"sample {last_start} and is zero-padded).{hint}")
    return Verdict(True, f"your frame counts equal frame_signal's in all "
                         f"{len(FRAME_COUNT_CASES)} cases")


FRAME_SIGNAL_CASES = [(7, 3, 3), (7, 3, 2), (2, 3, 3), (1150, 500, 500), (1150, 500, 250),
                      (1000, 500, 750), (46089, 500, 500)]


def _start_of(frame: np.ndarray, wave: np.ndarray) -> int | None:
    """Where ``frame``'s first sample sits in ``wave`` (distinct values), or None."""
    hits = np.flatnonzero(wave == frame[0]) if frame.size else []
    return int(hits[0]) if len(hits) else None


def check_frame_signal(fn) -> Verdict:
    """Check ``fn(wave, frame_length, hop) -> n_frames × frame_length`` against ``frame_signal``.

    The test waveforms hold distinct values (``1, 2, 3, ...``), so a wrong frame can be traced
    back to the sample it starts at; the message names the first wrong frame, where it starts
    and where it should, or what is wrong in its padding.

    Chapter: chapters/02_framing.ipynb
    """
    for n, length, hop in FRAME_SIGNAL_CASES:
        wave = np.arange(1, n + 1, dtype=np.float32)
        expected = frame_signal(wave, length, hop)
        got, failed = _call(fn, wave.copy(), length, hop)
        if failed is not None:
            return failed
        if _unfilled(got):
            return _UNFILLED
        got = np.asarray(as_numpy(got))
        case = f"for n={n} samples, L={length}, hop={hop}"
        if got.ndim != 2 or got.shape[1] != length:
            return Verdict(False, f"{case} your frames have shape {got.shape}, expected "
                                  f"{expected.shape} (one row of L samples per frame)")
        if got.shape[0] != expected.shape[0]:
            return Verdict(False, f"{case} you cut {got.shape[0]} frames, frame_signal cuts "
                                  f"{expected.shape[0]} (the last one zero-padded)")
        for k in range(expected.shape[0]):
            if np.array_equal(got[k], expected[k]):
                continue
            start = _start_of(got[k], wave)
            real = int(np.count_nonzero(expected[k]))
            if start is not None and start != k * hop:
                tail = (" (the original exercise's bug: its last frame repeated the previous "
                        "frame's start instead of the true tail)"
                        if k == expected.shape[0] - 1 and start == (k - 1) * hop else "")
                return Verdict(False, f"{case}, frame {k} starts at sample {start}, expected "
                                      f"{k * hop} (= k·hop){tail}")
            if np.array_equal(got[k, :real], expected[k, :real]):
                return Verdict(False, f"{case}, frame {k} holds the right {real} samples, but "
                                      f"its last {length - real} values should be zeros "
                                      "(padding past the end of the waveform)")
            return Verdict(False, f"{case}, frame {k} differs from frame_signal's (which holds "
                                  f"samples {k * hop} to {k * hop + real - 1})")
    return Verdict(True, f"your frames equal frame_signal's in all {len(FRAME_SIGNAL_CASES)} "
                         "cases, padding included")


# --- chapter 3: one LSTM step -------------------------------------------------------------------

GATES = ("input_gate", "forget_gate", "candidate", "output_gate")  # torch's order: i, f, g, o


def _lstm_case(seed: int, n: int = 3, i_size: int = 4, h_size: int = 5):
    g = torch.Generator().manual_seed(seed)
    w = {name: torch.randn(h_size, i_size + h_size, generator=g, dtype=torch.float64)
         for name in GATES}
    b = {name: torch.randn(h_size, generator=g, dtype=torch.float64) for name in GATES}
    x = torch.randn(n, i_size, generator=g, dtype=torch.float64)
    h = torch.randn(n, h_size, generator=g, dtype=torch.float64)
    c = 2 * torch.randn(n, h_size, generator=g, dtype=torch.float64)
    return x, h, c, w, b


def _torch_step(x, h, c, w, b):
    """The same step computed by ``torch.nn.LSTMCell`` (gate blocks i, f, g, o)."""
    i_size = x.shape[1]
    ref = torch.nn.LSTMCell(i_size, h.shape[1], dtype=torch.float64)
    with torch.no_grad():
        ref.weight_ih.copy_(torch.cat([w[k][:, :i_size] for k in GATES]))
        ref.weight_hh.copy_(torch.cat([w[k][:, i_size:] for k in GATES]))
        ref.bias_ih.copy_(torch.cat([b[k] for k in GATES]))
        ref.bias_hh.zero_()
        return ref(x, (h, c))


def _step_variants(x, h, c, w, b) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Typical slips, each as the (h, c) it computes."""
    xh = torch.cat([x, h], dim=1)
    z = {k: xh @ w[k].T + b[k] for k in GATES}
    i, f, o = (torch.sigmoid(z[k]) for k in ("input_gate", "forget_gate", "output_gate"))
    g = torch.tanh(z["candidate"])
    variants = {}

    def add(name, i_=i, f_=f, g_=g, o_=o, h_of=lambda o_, c_: o_ * torch.tanh(c_)):
        c_new = f_ * c + i_ * g_
        variants[name] = (h_of(o_, c_new), c_new)

    add("gate f: the forget gate is left out (f = 1), so the old state is never scaled", f_=1)
    add("gate g: sigmoid for the candidate g (it takes tanh, values in (-1, 1))",
        g_=torch.sigmoid(z["candidate"]))
    add("gate i: tanh for the input gate i (a gate takes sigmoid, values in (0, 1))",
        i_=torch.tanh(z["input_gate"]))
    add("gates f and i swapped: c_t = f·g + i·c_{t-1}", i_=f, f_=i)
    add("output: h_t = o·c_t without the tanh", h_of=lambda o_, c_: o_ * c_)
    add("output: h_t = tanh(o·c_t) instead of o·tanh(c_t)", h_of=lambda o_, c_: torch.tanh(o_ * c_))
    zr = {k: torch.cat([h, x], dim=1) @ w[k].T + b[k] for k in GATES}
    ir, fr, orr = (torch.sigmoid(zr[k]) for k in ("input_gate", "forget_gate", "output_gate"))
    cr = fr * c + ir * torch.tanh(zr["candidate"])
    variants["input: [h, x] concatenated instead of [x, h]"] = (orr * torch.tanh(cr), cr)
    return variants


def check_lstm_step(fn) -> Verdict:
    """Check ``fn(x, h, c, W, b) -> (h_t, c_t)``, one LSTM step, against ``torch.nn.LSTMCell``.

    ``W[gate]`` is ``H × (I+H)`` (acting on ``[x, h]``) and ``b[gate]`` has ``H`` entries, for
    the gates ``"input_gate"``, ``"forget_gate"``, ``"output_gate"``, ``"candidate"``, as in
    :class:`emoser.nn.LstmCell`. When the answer differs, the message names the output
    (``h`` or ``c``), the size of the difference and, where one explains it, the slip
    (a left-out forget gate, a sigmoid for the candidate, a missing tanh, ...).

    Chapter: chapters/03_lstm_cell.ipynb
    """
    for seed in range(3):
        x, h, c, w, b = _lstm_case(seed)
        got, failed = _call(fn, x.clone(), h.clone(), c.clone(),
                            {k: v.clone() for k, v in w.items()},
                            {k: v.clone() for k, v in b.items()})
        if failed is not None:
            return failed
        if _unfilled(got):
            return _UNFILLED
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            return Verdict(False, "return the new state as a pair (h_t, c_t)")
        h_got, c_got = (torch.as_tensor(as_numpy(t), dtype=torch.float64) for t in got)
        h_ref, c_ref = _torch_step(x, h, c, w, b)
        if h_got.shape != h_ref.shape or c_got.shape != c_ref.shape:
            return Verdict(False, f"your h_t, c_t have shapes {tuple(h_got.shape)}, "
                                  f"{tuple(c_got.shape)}; expected N × H = {tuple(h_ref.shape)}")
        err_h = float((h_got - h_ref).abs().max())
        err_c = float((c_got - c_ref).abs().max())
        if max(err_h, err_c) <= 1e-9:
            continue
        which = (f"c_t differs from torch.nn.LSTMCell's by {err_c:.2g}" if err_c > 1e-9
                 else f"c_t is right, but h_t differs from torch.nn.LSTMCell's by {err_h:.2g}")
        for slip, (h_v, c_v) in _step_variants(x, h, c, w, b).items():
            if (torch.allclose(h_got, h_v, rtol=0, atol=1e-9)
                    and torch.allclose(c_got, c_v, rtol=0, atol=1e-9)):
                return Verdict(False, f"{which}. Your step matches {slip}.")
        return Verdict(False, f"{which} (test case {seed}; c_t = f·c_(t-1) + i·g, "
                              "h_t = o·tanh(c_t), gates on [x, h]).")
    return Verdict(True, "your step equals torch.nn.LSTMCell's (h_t and c_t, 3 random cases, "
                         "float64, to 1e-9)")


# --- chapter 4: the last valid step -------------------------------------------------------------

def check_last_valid_step(fn) -> Verdict:
    """Check ``fn(h_all, lengths) -> N × H``: row ``n`` is ``h_all[n, lengths[n] - 1]``.

    Chapter: chapters/04_lstm_layer.ipynb
    """
    g = torch.Generator().manual_seed(0)
    cases = [(torch.randn(4, 6, 3, generator=g, dtype=torch.float64), torch.tensor([6, 2, 4, 1])),
             (torch.randn(3, 5, 2, generator=g, dtype=torch.float64), torch.tensor([3, 5, 1]))]
    for h_all, lengths in cases:
        got, failed = _call(fn, h_all.clone(), lengths.clone())
        if failed is not None:
            return failed
        if _unfilled(got):
            return _UNFILLED
        got = torch.as_tensor(as_numpy(got), dtype=torch.float64)
        n, t, hidden = h_all.shape
        if got.shape != (n, hidden):
            return Verdict(False, f"your result has shape {tuple(got.shape)}, expected N × H = "
                                  f"{(n, hidden)} (one state per sequence)")
        for row in range(n):
            want = int(lengths[row]) - 1
            if torch.equal(got[row], h_all[row, want]):
                continue
            found = [s for s in range(t) if torch.equal(got[row], h_all[row, s])]
            if found and found[0] == t - 1:
                why = (f"that is step T-1 = {t - 1}, the last padded step: read each sequence "
                       "at its own last valid step")
            elif found and found[0] == want + 1:
                why = "one step too far: the last valid index is lengths - 1"
            elif found:
                why = f"that is step {found[0]}"
            else:
                why = "it is not any step of that sequence"
            return Verdict(False, f"sequence {row} (length {int(lengths[row])}): your row is "
                                  f"not h_all[{row}, {want}]; {why}")
    return Verdict(True, "every row is its sequence's state at step lengths[n] - 1")


# --- chapter 5: shapes through the CNN ----------------------------------------------------------

#: The stages whose frame length ``cnn_lengths`` returns (the CNN of AudioNet, 3 blocks).
CNN_STAGES = ("frame", "average pooling", "conv1", "max pooling 1", "conv2", "max pooling 2",
              "conv3", "max pooling 3")


def model_cnn_lengths(d: int, kernel: int = 5, blocks: int = 3) -> list[int]:
    """The frame length after every stage of a real AudioNet's CNN, measured with one frame.

    Chapter: chapters/05_audionet.ipynb
    """
    net = AudioNet(inDim=d, convKernelSize=kernel, convLayerNum=blocks)
    stages = describe_shapes(net, torch.zeros(1, 1, d), torch.tensor([1]))
    cnn = stages[1:next(k for k, (name, _) in enumerate(stages) if name.startswith("flatten"))]
    return [shape[-1] for _, shape in cnn]


def check_cnn_lengths(fn) -> Verdict:
    """Check ``fn(D) -> [D, after avg pool, conv1, pool1, conv2, pool2, conv3, pool3]``.

    The reference is measured: the shapes :func:`emoser.nn.describe_shapes` reports for a real
    ``AudioNet(inDim=D)`` (kernel 5, stride 2, 3 blocks).

    Chapter: chapters/05_audionet.ipynb
    """
    for d in (500, 732, 960, 254):
        expected = model_cnn_lengths(d)
        got, failed = _call(fn, d)
        if failed is not None:
            return failed
        if _unfilled(got):
            return _UNFILLED
        try:
            got = [int(v) for v in got]
        except (TypeError, ValueError):
            return Verdict(False, f"for D={d} return a list of {len(expected)} integers, "
                                  f"got {got!r}")
        if len(got) != len(expected):
            return Verdict(False, f"for D={d} you give {len(got)} lengths, expected "
                                  f"{len(expected)}: one per stage {', '.join(CNN_STAGES)}")
        for stage, (a, e, prev) in enumerate(zip(got, expected, [None] + expected)):
            if a == e:
                continue
            name = CNN_STAGES[stage]
            if name.startswith("conv"):
                rule = (f"a convolution of kernel 5, stride 2 gives floor(({prev} - 5) / 2) + 1"
                        f" = {e}" + (" (you dropped the + 1)" if a == (prev - 5) // 2 else ""))
            elif prev is not None:
                rule = f"pooling 2/2 halves and rounds down: floor({prev} / 2) = {e}"
            else:
                rule = "the first entry is the frame length D itself"
            return Verdict(False, f"for D={d}, after {name} you have {a}, the model has {e}: "
                                  f"{rule}")
    return Verdict(True, "your lengths equal the ones measured in AudioNet for D = 500, 732, "
                         "960 and 254")


# --- chapter 5, exercise 3: shared or separate convolutions, measured --------------------------

#: Written by ``benchmarks/sharing_sweep.py`` (chapter 7's protocol, both variants, same seeds).
SHARING_FILE = "results/sharing-sweep.json"


def sharing_results() -> dict:
    """The sharing sweep: ``{variant: {"parameters": n, "accuracy": {seed: a}, "test_loss": ...}}``.

    ``variant`` is ``"shared"`` or ``"unshared"`` (``convOutNum=32``); read from the package's
    ``results/sharing-sweep.json``, which ``benchmarks/sharing_sweep.py`` writes.

    Chapter: chapters/05_audionet.ipynb
    """
    from importlib import resources

    data = json.loads(resources.files("emoser.course").joinpath(SHARING_FILE).read_text())
    return {name: {"parameters": int(v["parameters"]),
                   "accuracy": {int(r["seed"]): float(r["accuracy"]) for r in v["seeds"]},
                   "test_loss": {int(r["seed"]): float(r["test_loss"]) for r in v["seeds"]}}
            for name, v in data["variants"].items()}
