"""Checkers of chapters 3 and 4: one LSTM step against ``torch.nn.LSTMCell``, the last valid step.

Chapter: chapters/03_lstm_cell.ipynb
"""
from __future__ import annotations

import torch

from ...common import as_numpy
from .verdict import UNFILLED, Verdict, call, unfilled

__all__ = ["check_lstm_step", "check_last_valid_step"]


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
        got, failed = call(fn, x.clone(), h.clone(), c.clone(),
                            {k: v.clone() for k, v in w.items()},
                            {k: v.clone() for k, v in b.items()})
        if failed is not None:
            return failed
        if unfilled(got):
            return UNFILLED
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
        got, failed = call(fn, h_all.clone(), lengths.clone())
        if failed is not None:
            return failed
        if unfilled(got):
            return UNFILLED
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
