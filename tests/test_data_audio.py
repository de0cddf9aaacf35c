"""Loading recordings (emoser.data.audio): formats, resampling, bad files, decoded cache."""
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emoser.data import AudioLoadError, find_recordings, load_audio, load_waveforms
from emoser.data.audio import decoded_cache_dir

RATE = 24414


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOSER_CACHE_DIR", str(tmp_path / "cache"))


def _sine(rate=RATE, seconds=0.25, freq=440.0):
    t = np.arange(int(rate * seconds)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _write(path: Path, data, rate=RATE, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, data, rate, **kw)
    return path


@pytest.fixture
def corpus(tmp_path):
    """Good files in several guises plus one of each kind of bad file."""
    d = tmp_path / "tess"
    good = {
        "plain": _write(d / "YAF_happy" / "YAF_back_happy.wav", _sine(), subtype="PCM_16"),
        # an AIFF file with a .wav name, as two published TESS files are
        "aiff": _write(d / "YAF_happy" / "YAF_bar_happy.wav", _sine(), format="AIFF",
                       subtype="PCM_16"),
        "stereo": _write(d / "YAF_sad" / "YAF_back_sad.wav",
                         np.stack([_sine(), np.zeros_like(_sine())], axis=1), subtype="PCM_16"),
        "48k": _write(d / "YAF_sad" / "YAF_bar_sad.wav", _sine(48000), rate=48000,
                      subtype="PCM_16"),
    }
    bad = {
        "empty": d / "YAF_sad" / "YAF_base_sad.wav",
        "zeros": _write(d / "YAF_sad" / "YAF_bath_sad.wav", np.zeros(4000, np.float32),
                        subtype="PCM_16"),
        "garbage": d / "YAF_sad" / "YAF_bean_sad.wav",
    }
    bad["empty"].write_bytes(b"")
    bad["garbage"].write_bytes(b"RIFF\x10\x00\x00\x00WAVEthis is not audio at all" * 3)
    return d, good, bad


def test_formats_mono_and_resampling(corpus):
    _, good, _ = corpus
    ref = load_audio(good["plain"])
    assert ref.dtype == np.float32 and ref.ndim == 1 and len(ref) == len(_sine())
    np.testing.assert_allclose(load_audio(good["aiff"]), ref, atol=1e-6)
    np.testing.assert_allclose(load_audio(good["stereo"]), ref / 2, atol=1e-4)  # mixed to mono
    resampled = load_audio(good["48k"])
    assert abs(len(resampled) - len(ref)) <= 1
    np.testing.assert_allclose(resampled[200:-200], ref[200:len(resampled) - 200], atol=0.02)
    assert len(load_audio(good["48k"], rate=None)) == 12000  # native rate kept


@pytest.mark.parametrize("kind, reason", [("empty", "empty file"),
                                          ("zeros", "all samples are zero"),
                                          ("garbage", "not a readable audio file")])
def test_bad_file_error_names_file_and_reason(corpus, kind, reason):
    _, _, bad = corpus
    with pytest.raises(AudioLoadError) as err:
        load_audio(bad[kind])
    assert str(bad[kind]) in str(err.value) and reason in str(err.value)
    assert err.value.path == bad[kind]


def test_load_waveforms_raises_or_skips_and_lists(corpus):
    root, good, bad = corpus
    cat = find_recordings(root)
    assert len(cat) == 7
    with pytest.raises(AudioLoadError):
        load_waveforms(cat.records)
    waves, report = load_waveforms(cat.records, skip_bad=True)
    assert len(waves) == 4
    assert {p for p, _ in report.skipped} == set(bad.values())
    assert report.resampled == [(good["48k"], 48000)]
    assert "SKIPPED" in report.summary() and "YAF_bar_sad.wav (48000 Hz)" in report.summary()


def test_decoded_cache_hit_and_invalidation(corpus):
    _, good, _ = corpus
    paths = [good["plain"], good["48k"], good["stereo"]]
    first, r1 = load_waveforms(paths)
    assert not r1.from_cache and len(list(decoded_cache_dir().glob("*.npz"))) == 1
    second, r2 = load_waveforms(paths)
    assert r2.from_cache and r2.resampled == r1.resampled
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)  # bit-identical, int16 and float32 parts alike
        assert b.dtype == np.float32
    # change a file: the cache entry no longer applies
    _write(good["plain"], _sine(freq=300.0), subtype="PCM_16")
    st = os.stat(good["plain"])
    os.utime(good["plain"], ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    third, r3 = load_waveforms(paths)
    assert not r3.from_cache
    assert not np.array_equal(third[0], first[0])
    _, r4 = load_waveforms(paths, cache=False)
    assert not r4.from_cache


def test_cache_never_written_beside_recordings(corpus):
    root, good, _ = corpus
    before = sorted(p for p in root.rglob("*"))
    load_waveforms([good["plain"]])
    assert sorted(p for p in root.rglob("*")) == before
