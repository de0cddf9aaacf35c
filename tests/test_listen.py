"""Listening in the book: at most four TESS files, byte for byte as published, and no other audio.

The chapters may store players of the files in ``emoser.course.EMBEDDABLE_TESS`` only
(CC BY-NC-ND 4.0: verbatim, attributed, non-commercial sharing). Every audio payload of every
stored notebook is decoded and its SHA-256 compared with the published checksums.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

import emoser.course
from emoser.data.verify import load_checksums

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import execute_chapters as ex  # noqa: E402

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
AUDIO_SUFFIXES = {".wav", ".aif", ".aiff", ".aifc", ".flac", ".mp3", ".ogg", ".oga", ".opus",
                  ".m4a", ".aac", ".wma", ".webm"}


def _audio_outputs(path: Path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if ex._is_audio(out):
                yield out


def test_the_embeddable_files_are_at_most_four_published_tess_files():
    allowed = emoser.course.embeddable_checksums()
    published = load_checksums()
    assert 0 < len(allowed) <= emoser.course.MAX_EMBEDDED == 4
    for name, digest in allowed.items():
        assert published[name].sha256 == digest, name


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_stored_audio_payload_is_an_allowed_tess_file_with_its_credit(path):
    allowed = set(emoser.course.embeddable_checksums().values())
    for out in _audio_outputs(path):
        payloads = ex.audio_payloads(out)
        assert payloads, f"{path.name}: an audio player whose file cannot be read back"
        for payload in payloads:
            assert payload is not None, f"{path.name}: audio payload is not valid base64"
            digest = hashlib.sha256(payload).hexdigest()
            assert digest in allowed, f"{path.name}: stored audio {digest[:12]}... is not allowed"
        html = "".join(out.get("data", {}).get("text/html", ""))
        assert html.count("CC BY-NC-ND 4.0") == len(payloads), (
            f"{path.name}: every player needs the TESS credit and licence next to it")
        assert html.count("doi:10.5683/SP2/E8H2MF") == len(payloads), path.name


def test_the_book_embeds_at_most_four_distinct_recordings_and_plays_some():
    digests = set()
    for path in CHAPTERS:
        for out in _audio_outputs(path):
            digests |= {hashlib.sha256(p).hexdigest() for p in ex.audio_payloads(out) if p}
    assert 0 < len(digests) <= 4, f"{len(digests)} distinct recordings embedded in the book"


def test_no_audio_file_is_tracked_in_git():
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    audio = [f for f in files if Path(f).suffix.lower() in AUDIO_SUFFIXES]
    assert audio == [], f"audio files tracked in git: {audio}"


def _player(tmp_path: Path, name: str, payload: bytes) -> dict:
    path = tmp_path / name
    path.write_bytes(payload)
    html = emoser.course.play_recording(path, "label").data
    return new_output("display_data", data={"text/html": html,
                                            "text/plain": "<IPython.core.display.HTML object>"})


def test_play_recording_embeds_the_file_unchanged_and_labels_what_it_is(tmp_path):
    payload = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(200))
    out = _player(tmp_path, "YAF_dog_happy.wav", payload)
    assert ex.audio_payloads(out) == [payload]  # the bytes of the file, nothing else
    html = out["data"]["text/html"]
    assert "not a published TESS file" in html and "CC BY-NC-ND" not in html  # a stand-in
    digest = hashlib.sha256(payload).hexdigest()
    published = {"YAF_dog_happy.wav": load_checksums()["YAF_dog_happy.wav"]}
    published["YAF_dog_happy.wav"] = type(published["YAF_dog_happy.wav"])(
        "YAF_dog_happy.wav", digest, len(payload))
    from emoser.course import notebook

    original = notebook.load_checksums
    notebook.load_checksums = lambda: published
    try:
        html = _player(tmp_path, "YAF_dog_happy.wav", payload)["data"]["text/html"]
    finally:
        notebook.load_checksums = original
    assert emoser.course.TESS_CREDIT.replace('"', "&quot;") in html


def test_execute_chapters_keeps_allowed_players_only(tmp_path):
    allowed_bytes, other_bytes = b"RIFF allowed", b"RIFF other"
    allowed = {hashlib.sha256(allowed_bytes).hexdigest()}
    keep = _player(tmp_path, "YAF_dog_sad.wav", allowed_bytes)
    drop = _player(tmp_path, "YAF_dog_sad.wav", other_bytes)
    mixed = new_output("display_data", data={"text/html": keep["data"]["text/html"]
                                             + drop["data"]["text/html"]})
    resampled = new_output("display_data", data={"audio/wav": "UklGRg==", "text/plain": "A"})
    nb = new_notebook(cells=[new_code_cell("play", outputs=[keep, drop, mixed, resampled])])
    nb = nbformat.from_dict(nb)
    assert ex.strip_audio(nb, allowed) == 3
    assert nb.cells[0].outputs == [keep]
