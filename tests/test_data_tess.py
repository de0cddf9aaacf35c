"""Names and discovery of TESS recordings (emoser.data.tess) on small fake corpora."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emoser.data import EMOTIONS, find_recordings, normalize_emotion, parse_name


def _tone(seed=0, n=2400):
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal(n)).astype(np.float32)


def _write(path: Path, seed=0, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, _tone(seed), kw.pop("rate", 24414), subtype="PCM_16", **kw)
    return path


@pytest.mark.parametrize("name, expected", [
    ("YAF_back_happy.wav", ("YAF", "back", "happy")),
    ("some/OAF_Fear/OAF_bar_fear.wav", ("OAF", "bar", "fear")),
    ("OA_bite_neutral.wav", ("OAF", "bite", "neutral")),  # known misspelling of OAF
    ("YAF_base_ps.wav", ("YAF", "base", "ps")),
    ("YAF_base_pleasant_surprise.wav", ("YAF", "base", "ps")),
    ("OAF_bath_Pleasant_surprised.WAV", ("OAF", "bath", "ps")),
    ("yaf_Dog_SAD.aiff", ("YAF", "dog", "sad")),
])
def test_parse_name_known_forms(name, expected):
    assert parse_name(name) == expected


@pytest.mark.parametrize("name, fragment", [
    ("YAF_back_joyful.wav", "unknown emotion token 'joyful'"),
    ("XYZ_back_happy.wav", "unknown speaker prefix"),
    ("YAF_happy.wav", "not a TESS file name"),
])
def test_parse_name_rejects_with_file_named(name, fragment):
    with pytest.raises(ValueError) as err:
        parse_name(name)
    assert fragment in str(err.value) and name in str(err.value)


def test_normalize_emotion_aliases_and_unknown():
    assert normalize_emotion("Pleasant surprise") == normalize_emotion("ps") == "ps"
    with pytest.raises(ValueError, match="unknown emotion 'bored'"):
        normalize_emotion("bored")


@pytest.fixture
def messy(tmp_path):
    """A corpus laid out like a messy distribution: odd folder names, nesting, a copy extracted
    twice."""
    root = tmp_path / "TESS Toronto emotional speech set data"
    _write(root / "YAF_happy" / "YAF_back_happy.wav", 1)
    _write(root / "YAF_happy" / "YAF_bar_happy.wav", 2)
    _write(root / "YAF_sad" / "YAF_back_sad.wav", 3)
    _write(root / "OAF_Fear" / "OAF_back_fear.wav", 4)
    _write(root / "OAF_Pleasant_surprise" / "OAF_back_ps.wav", 5)
    _write(root / "YAF_pleasant_surprised" / "YAF_back_ps.wav", 6)
    _write(root / "OAF_neutral" / "OA_bite_neutral.wav", 7)
    # the archive extracted a second time inside itself: identical copies
    twice = root / "TESS Toronto emotional speech set data"
    _write(twice / "YAF_happy" / "YAF_back_happy.wav", 1)
    _write(twice / "YAF_sad" / "YAF_back_sad.wav", 3)
    # noise a distribution carries along
    (root / "__MACOSX").mkdir()
    (root / "__MACOSX" / "._YAF_back_happy.wav").write_bytes(b"\0\5\26\7junk")
    (root / "README.txt").write_text("not audio")
    (root / "notes.wav").write_bytes(b"RIFF")
    return tmp_path


def test_find_recordings_any_layout_dedupes_and_reports(messy):
    cat = find_recordings(messy)
    assert len(cat) == 7
    assert cat.duplicates_dropped == 2
    kept = {r.path for r in cat}
    for kept_path, dropped in cat.duplicates:
        assert kept_path in kept and dropped not in kept
        assert len(dropped.parts) > len(kept_path.parts)  # the shallower copy is kept
    assert {r.key for r in cat} >= {("OAF", "bite", "neutral"), ("OAF", "back", "ps"),
                                    ("YAF", "back", "ps"), ("OAF", "back", "fear")}
    assert [r.emotion for r in cat] == sorted((r.emotion for r in cat), key=EMOTIONS.index)
    assert "2 duplicate copies dropped" in cat.summary()


def test_find_recordings_filters_reproduce_the_exercise(messy):
    cat = find_recordings(messy, emotions=("happy", "sad"), speakers=("YAF",))
    assert sorted(r.path.name for r in cat) == ["YAF_back_happy.wav", "YAF_back_sad.wav",
                                                 "YAF_bar_happy.wav"]
    assert cat.labels().tolist() == [0, 0, 1]  # happy before sad (EMOTIONS order)
    assert cat.labels(("sad", "happy")).tolist() == [1, 1, 0]
    ps = find_recordings(messy, emotions="pleasant_surprise")
    assert {r.speaker for r in ps} == {"OAF", "YAF"} and ps.classes() == ("ps",)


def test_conflicting_duplicate_names_both_paths(tmp_path):
    a = _write(tmp_path / "YAF_happy" / "YAF_back_happy.wav", 1)
    b = _write(tmp_path / "copy" / "YAF_happy" / "YAF_back_happy.wav", 2)
    with pytest.raises(ValueError) as err:
        find_recordings(tmp_path)
    assert str(a) in str(err.value) and str(b) in str(err.value)


def test_unknown_emotion_token_in_file_name(tmp_path):
    _write(tmp_path / "YAF_happy" / "YAF_back_happy.wav")
    bad = _write(tmp_path / "YAF_joy" / "YAF_back_joy.wav")
    with pytest.raises(ValueError, match="unknown emotion token 'joy'") as err:
        find_recordings(tmp_path)
    assert str(bad) in str(err.value)
    cat = find_recordings(tmp_path, strict=False)  # lenient: listed, not silently dropped
    assert len(cat) == 1 and cat.ignored[0][0] == bad


def test_unknown_emotion_in_filter(messy):
    with pytest.raises(ValueError, match="unknown emotion 'joy'"):
        find_recordings(messy, emotions=("happy", "joy"))


def test_folder_without_recordings(tmp_path):
    (tmp_path / "YAF_happy").mkdir()
    (tmp_path / "YAF_happy" / "readme.txt").write_text("nothing here")
    with pytest.raises(FileNotFoundError, match="no TESS recordings"):
        find_recordings(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_recordings(tmp_path / "missing")


def test_filter_matching_nothing_says_what_is_there(messy):
    with pytest.raises(FileNotFoundError, match="no recordings .* match"):
        find_recordings(messy, emotions=("angry",))
