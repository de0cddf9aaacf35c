"""Exercise checkers accept the right answer and reject typical wrong ones with their message."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from emoser.course import exercises
from emoser.prep import frame_signal


def _rms_db(wave):
    return 20 * np.log10(np.sqrt(np.mean(np.square(wave.astype(np.float64)))))


def test_verdict_prints_and_requires():
    assert str(exercises.Verdict(True, "fine")) == "right: fine"
    assert not exercises.Verdict(False, "no")
    with pytest.raises(AssertionError, match="wrong: no"):
        exercises.Verdict(False, "no").require()


def test_rms_db_checker():
    assert exercises.check_rms_db(_rms_db).require().ok
    ten = exercises.check_rms_db(lambda w: 10 * np.log10(np.sqrt(np.mean(w.astype(float) ** 2))))
    assert not ten and "10·log10 of the RMS" in ten.message and "expected -9.03 dB" in ten.message
    peak = exercises.check_rms_db(lambda w: 20 * np.log10(np.abs(w).max()))
    assert not peak and "peak amplitude" in peak.message
    assert "fill in the `...`" in exercises.check_rms_db(lambda w: ...).message
    assert "raised ZeroDivisionError" in exercises.check_rms_db(lambda w: 1 / 0).message


def test_frame_count_checker():
    right = exercises.check_frame_count(lambda n, L, h: len(frame_signal(np.zeros(n), L, h)))
    assert right.ok, right
    assert exercises.check_frame_count(
        lambda n, L, h: 1 + math.ceil(max(n - L, 0) / h) if h <= L else math.ceil(n / h)).ok
    wrong = exercises.check_frame_count(lambda n, L, h: n // h)
    assert not wrong and "n // hop" in wrong.message and "frame_signal cuts 3" in wrong.message


def _lstm_step(x, h, c, W, b):
    xh = torch.cat([x, h], dim=1)
    z = {k: xh @ W[k].T + b[k] for k in W}
    i, f, o = (torch.sigmoid(z[k]) for k in ("input_gate", "forget_gate", "output_gate"))
    c_new = f * c + i * torch.tanh(z["candidate"])
    return o * torch.tanh(c_new), c_new


def test_lstm_step_checker_accepts_the_cell_and_torch():
    assert exercises.check_lstm_step(_lstm_step).require().ok
    # the package's own cell with the same weights is right too
    from emoser.nn import LstmCell

    def with_cell(x, h, c, W, b):
        cell = LstmCell(x.shape[1], h.shape[1]).double()
        with torch.no_grad():
            for name in W:
                getattr(cell, name).weight.copy_(W[name])
                getattr(cell, name).bias.copy_(b[name])
            return cell(x, (h, c))

    assert exercises.check_lstm_step(with_cell).ok


def test_lstm_step_checker_names_the_slip():
    def no_forget(x, h, c, W, b):
        xh = torch.cat([x, h], dim=1)
        z = {k: xh @ W[k].T + b[k] for k in W}
        c_new = c + torch.sigmoid(z["input_gate"]) * torch.tanh(z["candidate"])
        return torch.sigmoid(z["output_gate"]) * torch.tanh(c_new), c_new

    verdict = exercises.check_lstm_step(no_forget)
    assert not verdict and "c_t differs from torch.nn.LSTMCell's by" in verdict.message
    assert "gate f" in verdict.message

    def no_tanh(x, h, c, W, b):
        h_new, c_new = _lstm_step(x, h, c, W, b)
        return h_new / torch.tanh(c_new) * c_new, c_new

    verdict = exercises.check_lstm_step(no_tanh)
    assert not verdict and "c_t is right" in verdict.message
    assert "without the tanh" in verdict.message
    assert "pair" in exercises.check_lstm_step(lambda *a: a[0]).message


def test_last_valid_step_checker():
    def gather(h_all, lengths):
        idx = (lengths - 1).view(-1, 1, 1).expand(-1, 1, h_all.shape[2])
        return h_all.gather(1, idx).squeeze(1)

    assert exercises.check_last_valid_step(gather).require().ok
    last = exercises.check_last_valid_step(lambda h_all, lengths: h_all[:, -1])
    assert not last and "last padded step" in last.message
    assert "sequence 1 (length 2)" in last.message
    off = exercises.check_last_valid_step(
        lambda h_all, lengths: h_all[torch.arange(len(lengths)), lengths.clamp(max=5)])
    assert not off and "one step too far" in off.message


def _cnn_lengths(d, kernel=5, blocks=3):
    out = [d, d // 2]
    for _ in range(blocks):
        out.append((out[-1] - kernel) // 2 + 1)
        out.append(out[-1] // 2)
    return out


def test_cnn_lengths_checker_uses_the_real_model():
    assert exercises.model_cnn_lengths(500) == [500, 250, 123, 61, 29, 14, 5, 2]
    assert exercises.check_cnn_lengths(_cnn_lengths).require().ok

    def no_plus_one(d):
        out = [d, d // 2]
        for _ in range(3):
            out.append((out[-1] - 5) // 2)
            out.append(out[-1] // 2)
        return out

    verdict = exercises.check_cnn_lengths(no_plus_one)
    assert not verdict and "after conv1 you have 122, the model has 123" in verdict.message
    assert "dropped the + 1" in verdict.message
    assert "one per stage" in exercises.check_cnn_lengths(lambda d: [d]).message


def test_an_unfilled_scaffold_is_named():
    def scaffold(wave):
        rms = ...
        return 20 * np.log10(rms)

    verdict = exercises.check_rms_db(scaffold)
    assert not verdict and "still to fill" in verdict.message


def test_sharing_results_are_the_sweeps_of_both_variants():
    from emoser.nn import AudioNet

    sweep = exercises.sharing_results()
    assert set(sweep) == {"shared", "unshared"}
    assert sweep["shared"]["accuracy"].keys() == sweep["unshared"]["accuracy"].keys()
    assert len(sweep["shared"]["accuracy"]) >= 5
    for name, shared in (("shared", True), ("unshared", False)):
        model = AudioNet(convOutNum=32, sharedConv=shared)
        assert sweep[name]["parameters"] == sum(p.numel() for p in model.parameters())
        assert all(0 <= a <= 1 for a in sweep[name]["accuracy"].values())


def _frames(wave, frame_length, hop, shift=0, pad=0.0, original_tail=False):
    n_out = 1 + math.ceil(max(len(wave) - frame_length, 0) / hop)
    out = np.full((n_out, frame_length), pad, dtype=wave.dtype)
    for k in range(n_out):
        start = k * (hop + shift)
        if original_tail and k == n_out - 1 and k > 0:
            start = (k - 1) * hop
        piece = wave[start:start + frame_length]
        out[k, :len(piece)] = piece
    return out


def test_frame_signal_checker():
    assert exercises.check_frame_signal(_frames).require().ok
    assert exercises.check_frame_signal(lambda w, L, h: frame_signal(w, L, h)).ok
    shifted = exercises.check_frame_signal(lambda w, L, h: _frames(w, L, h, shift=1))
    assert not shifted and "frame 1 starts at sample 4, expected 3" in shifted.message
    tail = exercises.check_frame_signal(lambda w, L, h: _frames(w, L, h, original_tail=True))
    assert not tail and "original exercise's bug" in tail.message
    padded = exercises.check_frame_signal(lambda w, L, h: _frames(w, L, h, pad=-1.0))
    assert not padded and "should be zeros" in padded.message
    count = exercises.check_frame_signal(lambda w, L, h: _frames(w, L, h)[:-1])
    assert not count and "frame_signal cuts 3" in count.message


def test_the_checkers_live_in_one_package():
    from pathlib import Path

    course = Path(exercises.__file__).resolve().parents[1]
    assert (course / "exercises" / "__init__.py").is_file()
    assert not (course / "exercises.py").exists(), (
        "emoser/course/exercises.py beside the exercises/ package is never imported (the package "
        "wins): move its checkers into a module of the package and re-export them")
