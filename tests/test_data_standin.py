"""The offline stand-in corpus (emoser.data.standin): layout, determinism, prosody, labelling."""
import json
import re
import time

import numpy as np
import pytest
import soundfile as sf

from emoser.course import spectral_centroid, threshold_accuracy, utterance_stats
from emoser.data import find_recordings, load_waveforms, make_standin_corpus, standin_source
from emoser.data import standin as standin_mod

WORDS = ("back", "bar", "base", "bath", "bean", "beg", "bite", "boat")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOSER_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return make_standin_corpus(tmp_path_factory.mktemp("sd") / "standin", words=WORDS,
                               emotions=("happy", "sad"))


def test_layout_names_rate_and_marker(small):
    files = sorted(p.relative_to(small).as_posix() for p in small.rglob("*.wav"))
    assert len(files) == 2 * 2 * len(WORDS)
    assert "YAF_happy/YAF_back_happy.wav" in files and "OAF_sad/OAF_boat_sad.wav" in files
    info = sf.info(small / "YAF_happy" / "YAF_back_happy.wav")
    assert info.samplerate == 24414 and info.channels == 1
    assert 1.0 < info.duration < 3.5  # TESS-like utterance lengths
    marker = json.loads((small / "STANDIN.json").read_text())
    assert marker["engine_name"].startswith("eSpeak NG")  # the bundled library works here
    assert marker["deterministic"] is True  # synthesized in a fresh process
    assert marker["source"] == "STAND-IN synthetic corpus (eSpeak NG %s), not TESS" % \
        marker["engine_name"].split()[-1]
    assert standin_source(small) == marker["source"]
    assert len(find_recordings(small)) == len(files)


def test_prosody_differs_by_emotion_but_overlaps(small):
    cat = find_recordings(small, speakers=("YAF",))
    waves, _ = load_waveforms(cat.records, cache=False)
    dur = {e: [len(w) / 24414 for w, r in zip(waves, cat) if r.emotion == e]
           for e in ("happy", "sad")}
    assert np.mean(dur["happy"]) < np.mean(dur["sad"])  # happy is spoken faster ...
    assert min(dur["sad"]) < max(dur["happy"])  # ... but the classes overlap


def test_happy_and_sad_differ_as_in_tess_and_speakers_differ_in_level(small):
    # TESS (chapters 1 and 10): sad is quieter, lower and darker than happy; OAF is ~11 dB
    # quieter than YAF, so OAF's happy speech is quieter than YAF's sad speech
    cat = find_recordings(small)
    waves, _ = load_waveforms(cat.records, cache=False)
    stats = utterance_stats(waves, 24414)
    stats["centroid_hz"] = spectral_centroid(waves, 24414)
    group = {(s, e): np.array([r.speaker == s and r.emotion == e for r in cat])
             for s in ("YAF", "OAF") for e in ("happy", "sad")}

    def mean(s, e, key):
        return float(np.nanmean(stats[key][group[s, e]]))

    for s in ("YAF", "OAF"):
        assert mean(s, "happy", "rms_db") > mean(s, "sad", "rms_db") + 4
        assert mean(s, "happy", "f0_hz") > mean(s, "sad", "f0_hz") + 40
        assert mean(s, "happy", "centroid_hz") > mean(s, "sad", "centroid_hz") + 200
    assert mean("OAF", "happy", "rms_db") < mean("YAF", "sad", "rms_db") - 2
    # small jitter: loudness alone separates happy from sad within a speaker almost always
    for s in ("YAF", "OAF"):
        m = group[s, "happy"] | group[s, "sad"]
        _, accuracy, _ = threshold_accuracy(stats["rms_db"][m], group[s, "sad"][m].astype(int))
        assert accuracy >= 0.9, (s, accuracy)


def test_generation_prints_its_size_and_time_once(tmp_path, capsys):
    start = time.perf_counter()
    folder = make_standin_corpus(tmp_path / "t", words=("back", "dog"), emotions=("happy", "sad"))
    seconds = time.perf_counter() - start
    err = capsys.readouterr().err
    match = re.search(r"stand-in corpus once \((\d+) files, ([\d.]+) MB, ([\d.]+) s", err)
    assert match, err
    assert int(match[1]) == 8
    size = sum(p.stat().st_size for p in folder.rglob("*.wav"))
    assert float(match[2]) == pytest.approx(size / 1e6, abs=0.05)
    assert float(match[3]) <= seconds + 0.05  # the time it states is the time it took
    make_standin_corpus(tmp_path / "t", words=("back", "dog"), emotions=("happy", "sad"))
    assert capsys.readouterr().err == ""  # reused: nothing generated, nothing printed


def test_a_cached_corpus_of_an_older_version_is_regenerated(tmp_path):
    folder = make_standin_corpus(tmp_path / "v", words=("back",), emotions=("sad",),
                                 speakers=("YAF",))
    marker = json.loads((folder / "STANDIN.json").read_text())
    assert marker["settings"]["version"] == standin_mod._VERSION >= 2
    marker["settings"]["version"] = 1  # what an old cache holds
    (folder / "STANDIN.json").write_text(json.dumps(marker))
    make_standin_corpus(folder, words=("back",), emotions=("sad",), speakers=("YAF",))
    assert json.loads((folder / "STANDIN.json").read_text())["settings"]["version"] >= 2


def test_deterministic_and_built_once(small, tmp_path):
    again = make_standin_corpus(tmp_path / "again", words=WORDS, emotions=("happy", "sad"))
    for p in small.rglob("*.wav"):
        assert p.read_bytes() == (again / p.relative_to(small)).read_bytes()
    stamp = (again / "STANDIN.json").stat().st_mtime_ns
    assert make_standin_corpus(again, words=WORDS, emotions=("happy", "sad")) == again
    assert (again / "STANDIN.json").stat().st_mtime_ns == stamp  # reused, not rebuilt
    make_standin_corpus(again, words=WORDS[:2], emotions=("happy", "sad"))  # other settings
    assert len(list(again.rglob("*.wav"))) == 2 * 2 * 2


def test_formant_fallback_engine(tmp_path):
    folder = make_standin_corpus(tmp_path / "f", words=("back", "dog"), emotions=("happy", "sad"),
                                 engine="formant")
    assert standin_source(folder) == "STAND-IN synthetic corpus (formant synthesizer), not TESS"
    waves, report = load_waveforms(find_recordings(folder).records, cache=False)
    assert len(waves) == 8 and not report.skipped
    assert all(np.abs(w).max() > 0.05 for w in waves)


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="STANDIN.json"):
        make_standin_corpus(tmp_path / "mine", words=("back",))
    assert (tmp_path / "mine" / "thesis.txt").read_text() == "precious"


def test_default_location_is_the_cache(tmp_path):
    folder = make_standin_corpus(words=("back",), emotions=("sad",), speakers=("OAF",),
                                 engine="formant")
    assert folder == tmp_path / "cache" / "standin"
    assert [p.name for p in folder.rglob("*.wav")] == ["OAF_back_sad.wav"]
