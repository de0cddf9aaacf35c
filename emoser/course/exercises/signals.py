"""Checkers of chapters 1 and 2: the loudness of a recording, frame counts, frames.

Chapter: chapters/02_framing.ipynb
"""
from __future__ import annotations

import math

import numpy as np

from ...common import as_numpy
from ...prep import count_frames, frame_signal
from .verdict import UNFILLED, Verdict, call, unfilled

__all__ = ["check_rms_db", "check_frame_count", "check_frame_signal"]


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
        got, failed = call(fn, wave.copy())
        if failed is not None:
            return failed
        if unfilled(got):
            return UNFILLED
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
        got, failed = call(fn, n, length, hop)
        if failed is not None:
            return failed
        if unfilled(got):
            return UNFILLED
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
        got, failed = call(fn, wave.copy(), length, hop)
        if failed is not None:
            return failed
        if unfilled(got):
            return UNFILLED
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
