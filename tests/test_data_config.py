"""Where data come from (resolve_data_dir) and the one-call loader (load_tess)."""
import sys

import numpy as np
import pytest
import soundfile as sf

import emoser.data as data
from emoser.data import TessNotFoundError, load_tess, resolve_data_dir
from emoser.data import config as config_mod
from emoser.data import standin as standin_mod


@pytest.fixture(autouse=True)
def _clean_env(tmp_path, monkeypatch):
    monkeypatch.delenv("EMOSER_TESS_DIR", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setenv("EMOSER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(standin_mod, "STANDIN_WORDS", ("back", "dog", "chair"))  # fast stand-in


def _corpus(root, groups=(("YAF", "happy"), ("YAF", "sad"), ("OAF", "sad")), words=("back", "bar")):
    rng = np.random.default_rng(0)
    for speaker, emotion in groups:
        for word in words:
            p = root / f"{speaker}_{emotion}" / f"{speaker}_{word}_{emotion}.wav"
            p.parent.mkdir(parents=True, exist_ok=True)
            sf.write(p, 0.1 * rng.standard_normal(3000), 24414, subtype="PCM_16")
    return root


def test_order_path_then_env_then_cache(tmp_path, monkeypatch):
    explicit, env = _corpus(tmp_path / "explicit"), _corpus(tmp_path / "env")
    cached = _corpus(tmp_path / "cache" / "tess")
    assert resolve_data_dir() == cached
    monkeypatch.setenv("EMOSER_TESS_DIR", str(env))
    assert resolve_data_dir() == env
    assert resolve_data_dir(explicit) == explicit


def test_wrong_env_var_is_an_error_not_a_fallback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EMOSER_TESS_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="EMOSER_TESS_DIR=.*nowhere") as err:
        load_tess(allow_standin=True)
    assert not isinstance(err.value, TessNotFoundError)
    with pytest.raises(FileNotFoundError, match="given as path="):
        resolve_data_dir(tmp_path / "missing")


def test_nothing_found_says_how_to_get_the_data(monkeypatch):
    monkeypatch.setattr(config_mod, "download_tess", lambda *a, **k: pytest.fail("downloaded"))
    with pytest.raises(TessNotFoundError) as err:
        resolve_data_dir()
    msg = str(err.value)
    for hint in ("download_tess()", "EMOSER_TESS_DIR=", "load_tess(path=", "10.5683/SP2/E8H2MF"):
        assert hint in msg
    with pytest.raises(TessNotFoundError):
        resolve_data_dir(download=False)


@pytest.mark.parametrize("colab, download, expect_download", [
    (False, True, True), (True, None, True), (True, False, False), (False, None, False)])
def test_download_when_asked_or_in_colab(tmp_path, monkeypatch, colab, download, expect_download):
    calls = []

    def fake_download(target, url, progress=True, archive=None):
        calls.append(target)
        return _corpus(target)

    monkeypatch.setattr(config_mod, "download_tess", fake_download)
    if colab:
        monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-test")
    if expect_download:
        assert resolve_data_dir(download=download) == tmp_path / "cache" / "tess"
        assert calls == [tmp_path / "cache" / "tess"]
    else:
        with pytest.raises(TessNotFoundError):
            resolve_data_dir(download=download)
        assert calls == []


def test_load_tess_labels_classes_and_summary(tmp_path):
    root = _corpus(tmp_path / "t")
    d = load_tess(emotions=("sad", "happy"), speakers=("YAF",), path=root)
    assert d.classes == ("happy", "sad") and not d.is_standin
    assert d.source.startswith("TESS (real recordings") and d.root == root
    assert [d.classes[i] for i in d.labels] == [r.emotion for r in d.records]
    assert d.counts() == {"happy": 2, "sad": 2} and d.speakers == ("YAF",)
    assert all(w.dtype == np.float32 for w in d.waves) and len(d) == 4
    assert "happy 2, sad 2" in d.summary() and "TESS" in repr(d)
    both = load_tess(emotions=("sad",), speakers=("OAF", "YAF"), path=root)
    assert both.speakers == ("OAF", "YAF") and both.labels.tolist() == [0, 0, 0, 0]
    with pytest.raises(FileNotFoundError, match="no recordings of happy"):
        load_tess(emotions=("happy", "sad"), speakers=("OAF",), path=root)


def test_load_tess_falls_back_to_labelled_standin(capsys):
    d = load_tess()  # nothing configured, nothing cached, no download requested
    assert d.is_standin and "STAND-IN" in d.source and "not TESS" in d.source
    assert d.classes == ("happy", "sad") and d.counts() == {"happy": 3, "sad": 3}
    err = capsys.readouterr().err
    assert "WARNING" in err and "not TESS results" in err
    assert "NOT TESS results" in d.summary() and "STAND-IN" in repr(d)
    with pytest.raises(TessNotFoundError):
        load_tess(allow_standin=False)


def test_standin_folder_given_as_path_is_still_labelled(tmp_path):
    folder = data.make_standin_corpus(tmp_path / "sd", emotions=("happy", "sad"), speakers=("YAF",),
                                      engine="formant")
    d = load_tess(path=folder)
    assert d.is_standin and d.source.startswith("STAND-IN")
