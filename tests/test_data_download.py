"""download_tess and verify against a local HTTP server on 127.0.0.1 (never the internet)."""
import hashlib
import io
import stat
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf

from emoser.data import (
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    download_tess,
    find_recordings,
    load_checksums,
    verify,
)
from emoser.data.verify import Checksum

# name -> the folder a distribution might put it in
FILES = {
    "OAF_back_fear.wav": "OAF_Fear",
    "OAF_back_ps.wav": "OAF_Pleasant_surprise",
    "YAF_back_ps.wav": "YAF_pleasant_surprised",
    "OA_bite_neutral.wav": "OAF_neutral",
    "YAF_back_happy.wav": "YAF_happy",
    "YAF_back_sad.wav": "YAF_sad",
}
TOP = "TESS Toronto emotional speech set data"


def _wav_bytes(seed):
    buf = io.BytesIO()
    rng = np.random.default_rng(seed)
    sf.write(buf, 0.1 * rng.standard_normal(2000), 24414, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.fixture(scope="module")
def published():
    """The 'published' recordings and their checksum table."""
    blobs = {name: _wav_bytes(i) for i, name in enumerate(FILES)}
    table = {n: Checksum(n, hashlib.sha256(b).hexdigest(), len(b), FILES[n])
             for n, b in blobs.items()}
    return blobs, table


def _zip(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            if isinstance(data, zipfile.ZipInfo):
                zf.writestr(data, b"/etc/passwd")
            else:
                zf.writestr(name, data)
    return buf.getvalue()


def _good_archive(blobs):
    """Dataverse-like: a manifest plus an inner zip holding an archive extracted twice."""
    inner = [(f"{TOP}/{FILES[n]}/{n}", b) for n, b in blobs.items()]
    inner += [(f"{TOP}/{TOP}/{FILES[n]}/{n}", b) for n, b in list(blobs.items())[:2]]
    inner += [(f"__MACOSX/{TOP}/._{n}", b"\0junk") for n in list(blobs)[:2]]
    return _zip([("MANIFEST.TXT", b"files of doi:10.5683/SP2/E8H2MF"), ("tess.zip", _zip(inner))])


class _Server:
    """Serves ``self.body`` at /tess.zip; mode: good, truncate, truncate-once, norange, 404."""

    def __init__(self):
        self.body, self.mode, self.requests = b"", "good", []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append(rng)
                if server.mode == "404" or self.path != "/tess.zip":
                    self.send_error(404)
                    return
                body, start = server.body, 0
                if rng and server.mode != "norange":
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                rest = body[start:]
                self.send_header("Content-Length", str(len(rest)))
                self.end_headers()
                cut = server.mode == "truncate" or (server.mode == "truncate-once"
                                                    and len(server.requests) == 1)
                self.wfile.write(rest[: len(rest) // 2] if cut else rest)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/tess.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def _get(server, table, target, **kw):
    kw = {"progress": False, "checksums": table, "retries": 0, "timeout": 10, "backoff": 0, **kw}
    return download_tess(target, url=server.url, **kw)


def _leftovers(parent, target):
    return sorted(p.name for p in parent.iterdir() if p != target)


def test_good_archive_installed_verified_and_normalized(server, published, tmp_path):
    blobs, table = published
    server.body = _good_archive(blobs)
    target = tmp_path / "tess"
    assert _get(server, table, target) == target
    names = sorted(p.relative_to(target).as_posix() for p in target.rglob("*.wav"))
    assert names == sorted(["OAF_fear/OAF_back_fear.wav", "OAF_ps/OAF_back_ps.wav",
                            "YAF_ps/YAF_back_ps.wav", "OAF_neutral/OA_bite_neutral.wav",
                            "YAF_happy/YAF_back_happy.wav", "YAF_sad/YAF_back_sad.wav"])
    report = verify(target, table)
    assert report.complete and len(report.ok) == len(FILES)
    assert "10.5683/SP2/E8H2MF" in (target / "TESS-SOURCE.txt").read_text()
    assert len(find_recordings(target)) == len(FILES)
    assert _leftovers(tmp_path, target) == []  # no .part, no work folders
    n = len(server.requests)
    assert _get(server, table, target) == target and len(server.requests) == n  # no refetch


def test_published_file_under_another_name_is_recognised(server, published, tmp_path):
    blobs, table = published
    entries = [(f"{FILES[n]}/{n}", b) for n, b in blobs.items() if n != "OA_bite_neutral.wav"]
    entries.append(("OAF_neutral/OAF_bite_neutral.wav", blobs["OA_bite_neutral.wav"]))  # renamed
    server.body = _zip(entries)
    target = _get(server, table, tmp_path / "tess")
    assert (target / "OAF_neutral" / "OA_bite_neutral.wav").exists()
    assert verify(target, table).complete


def test_altered_recording_rejected_nothing_installed(server, published, tmp_path):
    blobs, table = published
    bad = dict(blobs)
    bad["YAF_back_sad.wav"] = blobs["YAF_back_sad.wav"][:-2] + b"\x01\x02"  # valid zip, wrong bytes
    server.body = _good_archive(bad)
    with pytest.raises(ChecksumError, match="YAF_back_sad.wav") as err:
        _get(server, table, tmp_path / "tess")
    assert "differ from the published checksums" in str(err.value)
    assert _leftovers(tmp_path, None) == []  # no data folder, no part file (content was bad)


def test_corrupted_zip_bytes(server, published, tmp_path):
    blobs, table = published
    body = bytearray(_zip([(n, b) for n, b in blobs.items()]))
    body[200:260] = bytes(60)  # damage compressed data: CRC / inflate error
    server.body = bytes(body)
    with pytest.raises(DownloadError, match="not a complete zip archive"):
        _get(server, table, tmp_path / "tess")
    assert _leftovers(tmp_path, None) == []


def test_truncated_transfer_fails_cleanly_then_resumes(server, published, tmp_path):
    blobs, table = published
    server.body, server.mode = _good_archive(blobs), "truncate"
    target = tmp_path / "tess"
    with pytest.raises(DownloadError, match="cut off") as err:
        _get(server, table, target, retries=1)
    assert "resumes" in str(err.value) and not target.exists()
    part = tmp_path / ".tess.download.part"
    assert 0 < part.stat().st_size < len(server.body)
    assert server.requests[0] is None and server.requests[1].startswith("bytes=")
    have = part.stat().st_size
    server.mode, server.requests = "good", []
    _get(server, table, target)
    assert server.requests == [f"bytes={have}-"]  # resumed, not restarted
    assert verify(target, table).complete and not part.exists()


def test_cut_off_once_resumed_automatically(server, published, tmp_path):
    blobs, table = published
    server.body, server.mode = _good_archive(blobs), "truncate-once"
    _get(server, table, tmp_path / "tess", retries=2)
    half = (len(server.body)) // 2
    assert server.requests == [None, f"bytes={half}-"]
    assert verify(tmp_path / "tess", table).complete


def test_server_without_range_support_restarts(server, published, tmp_path):
    blobs, table = published
    server.body, server.mode = _good_archive(blobs), "truncate"
    with pytest.raises(DownloadError):
        _get(server, table, tmp_path / "tess")
    server.mode = "norange"
    _get(server, table, tmp_path / "tess")
    assert verify(tmp_path / "tess", table).complete


def _symlink_entry():
    info = zipfile.ZipInfo("YAF_happy/YAF_back_happy.wav")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize("name", ["../YAF_evil_happy.wav", "/tmp/YAF_evil_happy.wav",
                                  "ok/../../YAF_evil_happy.wav", "C:/YAF_evil_happy.wav", "link"])
def test_path_escaping_entry_refused(server, published, tmp_path, name):
    blobs, table = published
    entry = (name, _symlink_entry()) if name == "link" else (name, blobs["YAF_back_happy.wav"])
    server.body = _zip([(n, b) for n, b in blobs.items()] + [entry])
    target = tmp_path / "dl" / "tess"
    with pytest.raises(UnsafeArchiveError, match="refused"):
        _get(server, table, target)
    assert not list(tmp_path.rglob("YAF_evil_happy.wav"))
    assert _leftovers(tmp_path / "dl", None) == []


def test_missing_recordings_and_http_errors(server, published, tmp_path):
    blobs, table = published
    server.body = _zip([(n, b) for n, b in list(blobs.items())[:-1]] + [("MANIFEST.TXT", b"x")])
    with pytest.raises(ChecksumError, match="1 of 6 published recordings are missing.*MANIFEST"):
        _get(server, table, tmp_path / "tess")
    server.mode = "404"
    with pytest.raises(DownloadError, match="HTTP 404"):
        _get(server, table, tmp_path / "tess", retries=3)
    assert len(server.requests) == 2  # a 404 is not retried
    assert not (tmp_path / "tess").exists()


def test_force_replaces_only_after_success(server, published, tmp_path):
    blobs, table = published
    target = tmp_path / "tess"
    (target / "old").mkdir(parents=True)
    (target / "old" / "keep.txt").write_text("old copy")
    server.body = _zip([("x/YAF_back_happy.wav", b"tampered")])
    with pytest.raises(ChecksumError):
        _get(server, table, target, force=True, require_complete=False)
    assert (target / "old" / "keep.txt").read_text() == "old copy"
    server.body = _good_archive(blobs)
    _get(server, table, target, force=True)
    assert not (target / "old").exists() and verify(target, table).complete


def test_verify_reports_missing_altered_unknown(published, tmp_path):
    blobs, table = published
    for name, data in blobs.items():
        (tmp_path / "copy").mkdir(exist_ok=True)
        (tmp_path / "copy" / name).write_bytes(data)
    (tmp_path / "copy" / "YAF_back_sad.wav").unlink()
    (tmp_path / "copy" / "YAF_back_happy.wav").write_bytes(b"changed")
    (tmp_path / "copy" / "YAF_new_happy.wav").write_bytes(blobs["YAF_back_ps.wav"])
    report = verify(tmp_path / "copy", table)
    assert report.missing == ["YAF_back_sad.wav"]
    assert [p.name for p in report.altered] == ["YAF_back_happy.wav"]
    assert [p.name for p in report.unknown] == ["YAF_new_happy.wav"]
    assert len(report.ok) == 4 and not report.intact
    assert "1 altered" in report.summary()
    with pytest.raises(FileNotFoundError):
        verify(tmp_path / "nowhere", table)


def test_shipped_checksum_list():
    table = load_checksums()
    assert len(table) == 2800
    assert "OA_bite_neutral.wav" in table and "YAF_beg_sad.wav" in table
    assert all(len(c.sha256) == 64 for c in table.values())


# --- the archive kept elsewhere (Google Drive in Colab, see emoser.course.colab) -------------

def test_kept_archive_is_reused_without_downloading(server, published, tmp_path):
    blobs, table = published
    server.body = _good_archive(blobs)
    kept = tmp_path / "drive" / "emoser" / "tess.zip"
    _get(server, table, tmp_path / "one" / "tess", archive=kept)
    assert kept.read_bytes() == server.body  # kept whole, its resume note removed
    assert not kept.with_name("tess.zip.json").exists()
    n = len(server.requests)
    fresh = _get(server, table, tmp_path / "two" / "tess", archive=kept)  # a new runtime
    assert len(server.requests) == n and verify(fresh, table).complete


def test_kept_archive_cut_short_is_downloaded_again(server, published, tmp_path):
    blobs, table = published
    server.body = _good_archive(blobs)
    kept = tmp_path / "drive" / "tess.zip"
    kept.parent.mkdir()
    kept.write_bytes(server.body[: len(server.body) // 2])  # e.g. a copy interrupted earlier
    target = _get(server, table, tmp_path / "tess", archive=kept)
    assert server.requests == [None] and verify(target, table).complete
    assert kept.read_bytes() == server.body


def test_kept_archive_that_fails_verification_is_deleted(server, published, tmp_path):
    blobs, table = published
    server.body = _zip([(f"{FILES[n]}/{n}", b) for n, b in list(blobs.items())[:-1]])
    kept = tmp_path / "drive" / "tess.zip"
    with pytest.raises(ChecksumError, match="missing"):
        _get(server, table, tmp_path / "tess", archive=kept)
    assert not kept.exists() and not (tmp_path / "tess").exists()  # the next try downloads anew


# --- a failed automatic download (Colab) falls back to the stand-in with one warning line ----

@pytest.fixture
def colab_without_tess(tmp_path, monkeypatch):
    """A Colab runtime: no TESS anywhere, an empty cache, the archive served by ``server``."""
    from emoser.data import standin
    monkeypatch.delenv("EMOSER_TESS_DIR", raising=False)
    monkeypatch.delenv("EMOSER_TESS_ARCHIVE", raising=False)
    monkeypatch.setenv("EMOSER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-test")
    monkeypatch.setattr(standin, "STANDIN_WORDS", ("back", "dog", "chair"))  # a fast stand-in
    return tmp_path / "cache"


@pytest.mark.parametrize("case", ["truncated archive", "HTTP 404", "incomplete archive"])
def test_failed_download_in_colab_falls_back_to_the_standin(server, published, colab_without_tess,
                                                            monkeypatch, capsys, case):
    from emoser.data import TessDownloadFailed, load_tess, resolve_data_dir
    blobs, _ = published
    whole = _good_archive(blobs)
    if case == "truncated archive":
        server.body = whole[: len(whole) // 2]  # served whole: the file itself is cut short
    elif case == "HTTP 404":
        server.mode = "404"
    else:  # a well-formed archive in the published layout, but not all 2800 recordings
        server.body = whole
    monkeypatch.setenv("EMOSER_TESS_URL", server.url)
    data = load_tess()
    assert data.is_standin and data.counts() == {"happy": 3, "sad": 3}
    warnings = [line for line in capsys.readouterr().err.splitlines() if "WARNING" in line]
    assert len(warnings) == 1, warnings
    expected = {"truncated archive": "not a complete zip archive", "HTTP 404": "HTTP 404",
                "incomplete archive": "published recordings are missing"}[case]
    assert "downloading TESS failed" in warnings[0] and expected in warnings[0]
    assert "STAND-IN" in warnings[0] and "not TESS results" in warnings[0]
    assert not (colab_without_tess / "tess").exists()
    assert [p.name for p in colab_without_tess.iterdir() if "download" in p.name] == []
    n = len(server.requests)
    assert load_tess().is_standin and len(server.requests) == n  # not tried again this session
    with pytest.raises(TessDownloadFailed, match=expected):
        resolve_data_dir()
    with pytest.raises(DownloadError, match=expected):  # asked for explicitly: an error
        resolve_data_dir(download=True)


def test_cli_download_uses_the_address_and_archive_from_the_environment(server, tmp_path,
                                                                        monkeypatch, capsys):
    from emoser.cli import main
    server.mode = "404"
    monkeypatch.setenv("EMOSER_TESS_URL", server.url)
    monkeypatch.setenv("EMOSER_TESS_ARCHIVE", str(tmp_path / "kept" / "tess.zip"))
    assert main(["download", "--target", str(tmp_path / "tess")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and server.url in err[0] and "HTTP 404" in err[0]
    assert server.requests == [None] and (tmp_path / "kept").is_dir()
