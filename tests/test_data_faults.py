"""Issue 14: bad input and faults get a clear one-line answer and lose nothing.

Audio files that cannot carry a usable recording (truncated, absurd header or samples, no sound)
and download failures (offline, stalled, wrong target), through the API and the command line.
Every server is a loopback one started here; no test reaches the internet.
"""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emoser.data import AudioLoadError, load_audio, load_waveforms

RATE = 24414
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOSER_CACHE_DIR", str(tmp_path / "cache"))


def _noise(n=4000, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def _write(path, data, rate=RATE, **kw):
    sf.write(path, data, rate, **kw)
    return path


def _refused(path, *reason, **kw):
    """load_audio refuses ``path``: an AudioLoadError naming it, on one line, with ``reason``."""
    with pytest.raises(AudioLoadError) as err:
        load_audio(path, **kw)
    message = str(err.value)
    assert str(path) in message and "\n" not in message, message
    for part in reason:
        assert part in err.value.reason, message
    return err.value


# --------------------------------------------------------------------------- 4. memory guard
def test_absurd_header_rate_is_refused_before_allocating(tmp_path):
    # a 40 kB file whose header says 1 Hz would be resampled to 488 million samples (GBs)
    path = _write(tmp_path / "one_hertz.wav", _noise(20000), rate=1, subtype="PCM_16")
    assert path.stat().st_size < 50_000
    _refused(path, "not a real sampling rate", "1 Hz")
    _refused(path, "not a real sampling rate", rate=None)  # even when kept at its own rate


def test_too_long_recording_states_estimate_and_limit(tmp_path):
    path = _write(tmp_path / "long.wav", _noise(2 * 8000), rate=8000, subtype="PCM_16")
    err = _refused(path, "too long", "2 s of audio", "limit is 1.5 s", "max_seconds",
                   "resample to 24414 Hz", max_seconds=1.5)
    assert " kB" in err.reason or " MB" in err.reason  # the memory estimate
    assert len(load_audio(path, max_seconds=2.5)) == 2 * RATE  # the limit is a parameter
    # the default limit (10 minutes) refuses 11 minutes of a low-rate file
    long = _write(tmp_path / "eleven_minutes.wav", np.zeros(1000 * 660, np.int16), rate=1000,
                  subtype="PCM_16")
    _refused(long, "too long", "660 s", "limit is 600 s")


@pytest.mark.parametrize("option", [{"rate": 1}, {"rate": 10**9}, {"rate": 0.5},
                                    {"max_seconds": 0}, {"max_seconds": float("nan")}])
def test_absurd_options_are_refused(tmp_path, option):
    path = _write(tmp_path / "ok.wav", _noise(), subtype="PCM_16")
    with pytest.raises(ValueError, match=next(iter(option))):
        load_audio(path, **option)
    with pytest.raises(ValueError, match=next(iter(option))):
        load_waveforms([path], **option)


# --------------------------------------------------------------------------- 5. truncated files
@pytest.mark.parametrize("fmt, subtype", [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("AIFF", "PCM_16"),
                                          ("WAV", "PCM_24")])
def test_truncated_file_is_reported(tmp_path, fmt, subtype):
    whole = _write(tmp_path / "whole.wav", _noise(), format=fmt, subtype=subtype)
    data = whole.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) // 2])
    assert sf.info(cut).frames > 0  # libsndfile alone reads it as a shorter file
    err = _refused(cut, "truncated: header says", "bytes of audio, file has")
    declared, have = (int(w) for w in err.reason.split() if w.isdigit())
    assert declared > have > 0
    assert len(load_audio(whole)) == 4000  # the intact file is fine


def test_truncated_file_listed_by_load_waveforms(tmp_path):
    good = _write(tmp_path / "good.wav", _noise(), subtype="PCM_16")
    data = good.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[:-100])
    with pytest.raises(AudioLoadError, match="truncated"):
        load_waveforms([good, cut])
    waves, report = load_waveforms([good, cut], skip_bad=True)
    assert len(waves) == 1 and report.skipped[0][0] == cut
    assert report.skipped[0][1].startswith("truncated: header says")
    assert "cut.wav (truncated" in report.summary()


def test_trailing_chunks_and_odd_layouts_are_not_truncation(tmp_path):
    path = _write(tmp_path / "tail.wav", _noise(), subtype="PCM_16")
    with open(path, "ab") as fh:  # a chunk after the samples (e.g. metadata) is fine
        fh.write(b"LIST\x04\x00\x00\x00abcd")
    assert len(load_audio(path)) == 4000
    flac = _write(tmp_path / "x.flac", _noise(), format="FLAC")
    assert len(load_audio(flac)) == 4000


# --------------------------------------------------------------------------- 6. no sound
def test_constant_signal_has_no_sound(tmp_path):
    dc = _write(tmp_path / "dc.wav", np.full(4000, 0.25, np.float32), subtype="PCM_16")
    _refused(dc, "no sound", "constant")
    dc_float = _write(tmp_path / "dc_float.wav", np.full(4000, -0.5, np.float32), subtype="FLOAT")
    _refused(dc_float, "no sound")


def test_stereo_cancelling_in_the_mono_mix_has_no_sound(tmp_path):
    x = _noise()
    path = _write(tmp_path / "cancel.wav", np.stack([x, -x], axis=1), subtype="PCM_16")
    _refused(path, "no sound", "cancel")
    _, report = load_waveforms([path], skip_bad=True)
    assert report.skipped[0][1].startswith("no sound")


def test_quiet_but_real_signals_are_kept(tmp_path):
    quiet = _write(tmp_path / "quiet.wav", 1e-3 * _noise(), subtype="PCM_16")  # about -80 dBFS
    assert np.std(load_audio(quiet)) > 0
    x = _noise()
    half = _write(tmp_path / "half.wav", np.stack([x, 0 * x], axis=1), subtype="PCM_16")
    assert np.std(load_audio(half)) > 0
    zeros = _write(tmp_path / "zeros.wav", np.zeros(4000, np.float32), subtype="PCM_16")
    _refused(zeros, "silent: all samples are zero")  # the existing message is kept


# --------------------------------------------------------------------------- 7. absurd samples
@pytest.mark.parametrize("peak", [1e38, 3e5])
def test_absurd_float_samples_are_refused(tmp_path, peak):
    x = _noise().astype(np.float64)
    x[100] = peak  # finite, but the normalized signal would overflow float32 later
    path = _write(tmp_path / "huge.wav", x, subtype="FLOAT")
    assert np.all(np.isfinite(sf.read(path, dtype="float32")[0]))
    _refused(path, "absurd sample values", f"{peak:.3g}")
    stereo = _write(tmp_path / "huge_stereo.wav", np.stack([x, x], axis=1), subtype="DOUBLE")
    _refused(stereo, "absurd sample values")


def test_float_samples_a_little_over_full_scale_are_kept(tmp_path):
    path = _write(tmp_path / "hot.wav", 20 * _noise(), subtype="FLOAT")  # peaks around 8
    assert np.max(np.abs(load_audio(path))) > 1
