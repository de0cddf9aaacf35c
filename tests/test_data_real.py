"""The real TESS subset found through EMOSER_TESS_DIR (CI sets it; skipped only when it is
unset)."""
import os
import time
from pathlib import Path

import numpy as np
import pytest

from emoser.data import EMOTIONS, SPEAKERS, find_recordings, load_tess, verify

TESS_DIR = os.environ.get("EMOSER_TESS_DIR")
pytestmark = [pytest.mark.tess,
              pytest.mark.skipif(not TESS_DIR, reason="EMOSER_TESS_DIR is not set")]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    # a fresh cache: the first load here is cold, and nothing is written into the user's cache
    monkeypatch.setenv("EMOSER_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "tess-cache"))


def test_subset_is_found_whole():
    cat = find_recordings(TESS_DIR)
    # 2198 files: YAF's seven emotions, OAF's angry, happy, neutral and sad (shared/data/README.md)
    assert len(cat) == 2198 and cat.duplicates_dropped == 0
    counts = cat.counts()
    assert counts["YAF_sad"] == 199 and counts["YAF_happy"] == 200
    assert counts["OAF_angry"] == 199 and counts["OAF_neutral"] == 200  # OA_bite_neutral counted
    assert set(cat.classes()) == set(EMOTIONS) and {r.speaker for r in cat} == set(SPEAKERS)


def test_seed_task_loads_fast_and_labelled():
    t0 = time.perf_counter()
    data = load_tess()  # YAF happy vs sad, resolved through EMOSER_TESS_DIR
    seconds = time.perf_counter() - t0
    assert len(data) == 399 and data.counts() == {"happy": 200, "sad": 199}
    assert (not data.is_standin and data.source.startswith("TESS (real")
            and data.root == Path(TESS_DIR))
    assert data.classes == ("happy", "sad") and np.bincount(data.labels).tolist() == [200, 199]
    lengths = np.array([len(w) for w in data.waves]) / data.rate
    assert 1.2 < lengths.min() and lengths.max() < 3.0
    assert all(w.dtype == np.float32 and np.abs(w).max() <= 1.0 for w in data.waves)
    assert not data.report.skipped and not data.report.resampled
    assert seconds < 10, f"loading 399 files took {seconds:.1f} s"
    again = load_tess()
    assert again.report.from_cache
    assert all(np.array_equal(a, b) for a, b in zip(data.waves, again.waves))


def test_aiff_named_wav_files_load():
    data = load_tess(emotions=("angry", "fear"), speakers=("YAF",))
    names = {r.path.name for r in data.records}
    assert {"YAF_germ_angry.wav", "YAF_neat_fear.wav"} <= names and len(data) == 400


def test_subset_matches_published_checksums():
    report = verify(TESS_DIR)
    assert len(report.ok) == 2198 and report.intact
    assert {"YAF_beg_sad.wav", "OAF_back_angry.wav"} <= set(report.missing)
