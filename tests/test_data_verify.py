"""verify() and ``python -m emoser verify``: what is searched, what is skipped, linked folders.

Folders are built in tmp_path with a checksum table made from their own files (the published
recordings are never needed): environment and cache folders are not searched, audio files
without a TESS name are ignored (not "unknown"), linked folders are followed once each (a link
loop ends), and a folder without any TESS file is an error, not an intact copy.
"""
from __future__ import annotations

import hashlib
import os

import pytest

from emoser import cli
from emoser.data import find_recordings, verify
from emoser.data.verify import Checksum


def _table(*files):
    return {f.name: Checksum(f.name, hashlib.sha256(f.read_bytes()).hexdigest(), f.stat().st_size)
            for f in files}


def _write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def tree(tmp_path):
    """copy/ holds one recording itself and one through a linked folder, a link loop, a virtual
    environment (with a scipy test WAV and even a TESS-named file), caches and a non-TESS WAV."""
    copy = tmp_path / "copy"
    happy = _write(copy / "YAF_happy" / "YAF_back_happy.wav", b"RIFF happy")
    sad = _write(tmp_path / "elsewhere" / "YAF_sad" / "YAF_back_sad.wav", b"RIFF sad")
    os.symlink(tmp_path / "elsewhere", copy / "linked", target_is_directory=True)
    os.symlink(copy, copy / "YAF_happy" / "loop", target_is_directory=True)  # back up: a loop
    site = copy / "env" / "lib" / "python3.11" / "site-packages"
    _write(site / "scipy" / "io" / "tests" / "data" / "test-44100Hz-le-1ch-4bytes.wav", b"x")
    _write(copy / "env" / "pyvenv.cfg", b"home = /usr/bin\n")
    _write(copy / "env" / "share" / "YAF_fake_happy.wav", b"not TESS")
    _write(copy / ".venv" / "YAF_other_happy.wav", b"not TESS")
    for cache in ("__pycache__", "node_modules", ".git", ".cache", "site-packages"):
        _write(copy / cache / "YAF_cached_sad.wav", b"not TESS")
    _write(copy / "notes" / "my_recording.wav", b"RIFF mine")
    return copy, _table(happy, sad)


def test_verify_follows_linked_folders_once_and_skips_environments(tree):
    copy, table = tree
    report = verify(copy, table)
    assert sorted(p.name for p in report.ok) == ["YAF_back_happy.wav", "YAF_back_sad.wav"]
    assert report.unknown == [] and report.altered == [] and report.missing == []
    assert [p.name for p in report.ignored] == ["my_recording.wav"]
    assert report.intact and report.complete and report.found == 2
    assert report.files_seen == 3
    skipped = {p.relative_to(copy).as_posix(): why for p, why in report.skipped}
    assert skipped["env"] == "Python virtual environment"
    assert skipped["YAF_happy/loop"].startswith("link to a folder searched already")
    for name in (".venv", "__pycache__", "node_modules", ".git", ".cache", "site-packages"):
        assert name in skipped, (name, skipped)
    summary = report.summary(limit=20)
    assert summary.splitlines()[0].startswith(f"searched {copy}: 3 audio files looked at")
    assert "YAF_happy/loop (link to a folder searched already" in summary


def test_discovery_follows_linked_folders(tree):
    copy, _ = tree
    catalog = find_recordings(copy, strict=False)
    assert sorted(r.path.name for r in catalog.records) == ["YAF_back_happy.wav",
                                                            "YAF_back_sad.wav"]


def test_a_link_loop_alone_ends(tmp_path):
    _write(tmp_path / "a" / "b" / "YAF_back_happy.wav", b"RIFF")
    os.symlink(tmp_path / "a", tmp_path / "a" / "b" / "up", target_is_directory=True)
    os.symlink(tmp_path / "a" / "b", tmp_path / "a" / "side", target_is_directory=True)
    report = verify(tmp_path, _table(tmp_path / "a" / "b" / "YAF_back_happy.wav"))
    assert [p.name for p in report.ok] == ["YAF_back_happy.wav"] and report.files_seen == 1
    assert len(report.skipped) == 2  # the loop and the second way into b


def test_unknown_means_a_tess_name_not_in_the_list(tmp_path):
    good = _write(tmp_path / "YAF_back_happy.wav", b"RIFF")
    _write(tmp_path / "YAF_newword_happy.wav", b"RIFF new")
    _write(tmp_path / "test-8000Hz-le-2ch-1byteu.wav", b"RIFF scipy")
    report = verify(tmp_path, _table(good))
    assert [p.name for p in report.unknown] == ["YAF_newword_happy.wav"]
    assert [p.name for p in report.ignored] == ["test-8000Hz-le-2ch-1byteu.wav"]
    assert not report.intact


def test_a_folder_without_tess_files_is_not_intact(tmp_path):
    _write(tmp_path / "scipy" / "test-44100Hz-le-1ch-4bytes.wav", b"x")
    report = verify(tmp_path, {})
    assert report.found == 0 and not report.intact and report.files_seen == 1
    assert "no TESS files" in report.summary()


@pytest.mark.parametrize("make", ["empty", "venv", "only-other-audio"])
def test_cli_verify_of_a_folder_without_tess_files_fails_in_one_line(tmp_path, capsys, make):
    """A mistyped or wrong folder used to print '0 ok, 2800 missing, ...' and exit 0."""
    folder = tmp_path / "folder"
    folder.mkdir()
    if make == "venv":
        _write(folder / ".venv" / "pyvenv.cfg", b"home = /usr/bin\n")
        _write(folder / ".venv" / "lib" / "site-packages" / "scipy" / "t.wav", b"x")
    elif make == "only-other-audio":
        _write(folder / "sub" / "test-44100Hz-le-1ch-4bytes.wav", b"x")
    assert cli.main(["verify", str(folder)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert captured.out == "" and "Traceback" not in captured.err
    assert len(err) == 1 and str(folder) in err[0] and "no TESS files" in err[0], err
    assert "searched" in err[0] and "audio files looked at" in err[0]
    if make == "venv":
        assert ".venv (hidden folder)" in err[0] or ".venv (Python virtual" in err[0]


def test_cli_verify_reports_what_it_searched(tmp_path, capsys):
    _write(tmp_path / "YAF_back_happy.wav", b"not the published recording")
    _write(tmp_path / "__pycache__" / "YAF_back_sad.wav", b"x")
    assert cli.main(["verify", str(tmp_path)]) == 1  # altered
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"searched {tmp_path}: 1 audio files looked at, 1 skipped: ")
    assert "__pycache__ (Python cache)" in out[0]
    assert out[1].startswith("0 ok, 2799 missing, 1 altered, 0 unknown")
