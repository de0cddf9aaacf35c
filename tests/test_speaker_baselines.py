"""Baselines across speakers (issue 17): per-speaker normalization, pitch + loudness, the results.

Known answers on synthetic tones; the committed ``speaker-baselines.json`` is checked for
completeness and inner consistency (it is written by ``benchmarks/speaker_baselines.py``).
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from emoser.experiments import baselines
from emoser.prep import per_speaker_standardized, speaker_indices
from emoser.training import RECIPE

RATE = 8000
RESULTS = Path(baselines.__file__).resolve().parents[1] / "course" / "results"


def _tone(freq: float, amplitude: float, seconds: float = 0.5, phase: float = 0.0):
    t = np.arange(int(seconds * RATE)) / RATE
    return amplitude * np.sin(2 * np.pi * freq * t + phase)


def _voices(n_words: int = 10, quiet_speaker: float = 0.1, seconds: float = 0.5, seed: int = 0):
    """Two speakers ("A", "B") say ``n_words`` words, sad (label 0) and happy (label 1).

    Happy is 12 dB louder than sad within a voice; both at the same pitch. Speaker B's whole
    voice is ``quiet_speaker`` times as loud as A's (-20 dB), so B's happy speech is quieter
    than A's sad speech: chapter 10's finding about the two actresses, in miniature.
    """
    rng = np.random.default_rng(seed)
    waves, labels, records = [], [], []
    for speaker, gain in (("A", 1.0), ("B", quiet_speaker)):
        for w in range(n_words):
            for label, amplitude in ((0, 0.1), (1, 0.4)):
                jitter = 1 + 0.05 * rng.standard_normal()
                waves.append(_tone(200.0 * (1 + 0.01 * rng.standard_normal()),
                                   gain * amplitude * jitter, seconds, rng.uniform(0, 6)))
                labels.append(label)
                records.append(SimpleNamespace(speaker=speaker, word=f"w{w}"))
    return SimpleNamespace(waves=waves, labels=np.array(labels), rate=RATE,
                           classes=("sad", "happy"), records=records)


def _a_to_b(data):
    return lambda s: speaker_indices(data, "A", "B", val_size=0.2, seed=s)


# --------------------------------------------------------------------------- features
def test_loud_level_is_the_rms_of_the_loud_frames_in_db():
    tone = _tone(200.0, 0.5, seconds=2.0)
    padded = np.concatenate([np.zeros(RATE), tone, np.zeros(RATE)])  # as long again in silence
    level = baselines.loud_level([tone, padded, np.zeros(RATE)], frame_length=1024)
    expected = 20 * np.log10(0.5 / np.sqrt(2))  # a sine's RMS is its amplitude / sqrt(2)
    # (the frames at the ends, half silence, lower it by a few tenths of a dB)
    assert level[0] == pytest.approx(expected, abs=0.3)
    assert level[1] == pytest.approx(expected, abs=0.3)  # pauses do not lower it
    whole = 20 * np.log10(np.sqrt(np.mean(padded ** 2)))
    assert whole == pytest.approx(expected - 3, abs=0.1)  # the whole waveform's level: -3 dB
    assert np.isnan(level[2])  # silence has no level


def test_per_speaker_standardized_uses_each_speakers_own_rows():
    x = np.array([[1.0], [3.0], [10.0], [30.0], [100.0], [300.0]])
    speakers = np.array(["A", "A", "B", "B", "B", "B"])
    z = per_speaker_standardized(x, speakers, train_idx=[0, 1, 2, 3], test_idx=[4, 5])
    # A's training rows by A's training rows; B's training rows (2, 3) by theirs, B's test
    # rows (4, 5) by theirs: every group becomes -1, +1
    assert z[:, 0].tolist() == [-1.0, 1.0, -1.0, 1.0, -1.0, 1.0]
    z = per_speaker_standardized(np.hstack([x, np.ones((6, 1))]), speakers,
                                           [0, 1], [4, 5])
    assert np.isnan(z[2:4]).all()  # in neither set
    assert z[[0, 1, 4, 5], 1].tolist() == [0.0] * 4  # a constant column is only centred


# --------------------------------------------------------------------------- known answers
def test_per_speaker_normalization_removes_a_speaker_wide_loudness_offset():
    data = _voices()
    feats = baselines.utterance_features(data)
    runs = {norm: baselines.run_baselines(data, seeds=[0, 1], indices=_a_to_b(data),
                                          which=("pitch_level",), features=feats,
                                          normalization=norm, log=None)
            for norm in baselines.BASELINE_NORMALIZATIONS}
    glob, own = runs["global"]["pitch_level"], runs["per_speaker"]["pitch_level"]
    assert all(np.array_equal(r.test_idx, np.arange(20, 40)) for r in glob.results)
    # trained on A, B's happy recordings are below A's threshold: everything of B is "sad"
    assert [r.accuracy for r in glob.results] == [0.5, 0.5]
    assert all((r.predictions == 0).all() for r in glob.results)
    # each voice on its own scale: the within-voice difference remains and transfers
    assert [r.accuracy for r in own.results] == [1.0, 1.0]
    # the offset really is in the features: B's levels are 20 dB below A's
    a_level = np.median(feats["pitch_level"][:20, 1])
    b_level = np.median(feats["pitch_level"][20:, 1])
    assert a_level - b_level == pytest.approx(20.0, abs=1.0)


def test_per_speaker_normalization_changes_nothing_when_the_voices_match():
    data = _voices(quiet_speaker=1.0)
    feats = baselines.utterance_features(data)
    for norm in baselines.BASELINE_NORMALIZATIONS:
        spreads = baselines.run_baselines(data, seeds=[0], indices=_a_to_b(data),
                                          which=("pitch_level",), features=feats,
                                          normalization=norm, log=None)
        assert spreads["pitch_level"].mean == 1.0, norm


def test_pitch_level_baseline_tells_four_classes_apart_by_pitch_and_loudness():
    rng = np.random.default_rng(0)
    corners = [(150.0, 0.05), (150.0, 0.5), (300.0, 0.05), (300.0, 0.5)]  # (Hz, amplitude)
    waves, labels = [], []
    for _ in range(10):
        for label, (freq, amplitude) in enumerate(corners):
            waves.append(_tone(freq * (1 + 0.02 * rng.standard_normal()),
                               amplitude * (1 + 0.05 * rng.standard_normal()),
                               phase=rng.uniform(0, 6)))
            labels.append(label)
    data = SimpleNamespace(waves=waves, labels=np.array(labels), rate=RATE,
                           classes=("a", "b", "c", "d"))
    spreads = baselines.run_baselines(data, seeds=[0, 1], which=("pitch_level", "pitch"),
                                      log=None)
    assert spreads["pitch_level"].mean == 1.0
    assert spreads["pitch_level"].results[0].model[-1].classes_.tolist() == [0, 1, 2, 3]
    assert spreads["pitch"].mean <= 0.5  # one threshold on pitch: at most two classes


def test_pooled_per_speaker_tests_each_voice_on_its_own_scale():
    """The network trains as usual and is retested per speaker: B's scale no longer matters."""
    recipe = RECIPE.replace(epochs=1)
    probabilities = {}
    for norm in baselines.BASELINE_NORMALIZATIONS:
        for gain in (1.0, 10.0):
            data = _voices(n_words=5, seconds=0.25)
            data.waves = data.waves[:10] + [gain * w for w in data.waves[10:]]
            spreads = baselines.run_baselines(data, seeds=[0], indices=_a_to_b(data),
                                              which=("pooled",), normalization=norm,
                                              recipe=recipe, device="cpu", log=None)
            run = spreads["pooled"].results[0]
            assert np.array_equal(run.test_idx, np.arange(10, 20))
            assert np.array_equal(run.evaluation.probabilities.argmax(1), run.predictions)
            probabilities[norm, gain] = run.evaluation.probabilities
    assert np.allclose(probabilities["per_speaker", 1.0], probabilities["per_speaker", 10.0],
                       atol=1e-5)
    # with the training speaker's statistics a louder test voice is another input
    assert not np.allclose(probabilities["global", 1.0], probabilities["global", 10.0],
                           atol=1e-3)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("kwargs, message", [
    ({"normalization": "per_word"}, "normalization must be one of global, per_speaker"),
    ({"features": {"pitch": np.zeros((40, 1))}, "which": ("mfcc",)}, "features lack"),
])
def test_run_baselines_refuses_bad_arguments_in_one_line(kwargs, message):
    data = _voices(n_words=5)
    with pytest.raises(ValueError, match=message) as err:
        baselines.run_baselines(data, seeds=[0], log=None, **kwargs)
    assert "\n" not in str(err.value)


def test_per_speaker_needs_speakers_and_pooled_needs_one_training_voice():
    data = _voices(n_words=5)
    no_records = SimpleNamespace(waves=data.waves, labels=data.labels, rate=RATE,
                                 classes=data.classes)
    with pytest.raises(ValueError, match="speaker") as err:
        baselines.run_baselines(no_records, seeds=[0], which=("pitch",),
                                normalization="per_speaker", log=None)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="training recordings of one speaker") as err:
        baselines.run_baselines(data, seeds=[0], which=("pooled",), normalization="per_speaker",
                                log=None)  # a random split: both voices in training
    assert "\n" not in str(err.value)


def test_per_speaker_standardized_refuses_bad_shapes_and_overlapping_rows():
    x = np.zeros((4, 2))
    with pytest.raises(ValueError, match="N × d feature matrix and N speakers"):
        per_speaker_standardized(x, ["A", "B"], [0], [1])
    with pytest.raises(ValueError, match="overlap"):
        per_speaker_standardized(x, ["A", "A", "B", "B"], [0, 1, 2], [2, 3])


# --------------------------------------------------------------------------- the results
def test_committed_speaker_baselines_have_every_cell_with_five_seeds():
    result = json.loads((RESULTS / "speaker-baselines.json").read_text())
    assert result["seeds"] == [0, 1, 2, 3, 4]
    assert result["split"]["function"] == "emoser.prep.speaker_indices"
    tasks = {"happy_sad": ["happy", "sad"], "four_emotions": ["angry", "happy", "neutral", "sad"]}
    assert sorted(result["tasks"]) == sorted(tasks)
    for task, classes in tasks.items():
        entry = result["tasks"][task]
        assert entry["classes"] == classes
        assert sorted(entry["results"]) == ["OAF->YAF", "YAF->OAF"]
        for direction, by_norm in entry["results"].items():
            assert sorted(by_norm) == sorted(baselines.BASELINE_NORMALIZATIONS)
            test_speaker = direction.split("->")[1]
            for norm, cells in by_norm.items():
                assert sorted(cells) == sorted(baselines.CLASSIC_BASELINES), (task, norm)
                for key, c in cells.items():
                    where = (task, direction, norm, key)
                    accs = np.array(c["accuracy"])
                    assert accs.shape == (5,) and ((0 <= accs) & (accs <= 1)).all(), where
                    assert c["mean"] == pytest.approx(accs.mean()), where
                    assert c["std"] == pytest.approx(accs.std(ddof=1)), where
                    assert c["min"] == accs.min(), where
                    assert sorted(c["recall"]) == sorted(classes), where
                    assert all(len(v) == 5 for v in c["recall"].values()), where
                    # the test set is every recording of the test speaker
                    assert c["test_size"] == sum(entry["counts"][test_speaker].values()), where
                    whole = entry["whole_speaker"][direction][norm][key]
                    assert 0 <= whole["accuracy"] <= 1 and sorted(whole["recall"]) == classes


def test_the_script_refuses_the_stand_in_corpus_with_exit_code_2(monkeypatch, capsys, tmp_path):
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "speaker_baselines.py"
    spec = importlib.util.spec_from_file_location("speaker_baselines", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "load_tess", lambda **kw: SimpleNamespace(is_standin=True))
    out = tmp_path / "never.json"
    assert module.main(["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "needs TESS" in err and err.count("\n") == 1 and not out.exists()
