"""Issue 14: bad input and faults get a clear one-line answer and lose nothing.

Audio files that cannot carry a usable recording (truncated, absurd header or samples, no sound)
and download failures (offline, stalled, wrong target), through the API and the command line.
Every server is a loopback one started here; no test reaches the internet.
"""
import hashlib
import io
import os
import subprocess
import sys
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emoser.data import (
    AudioLoadError,
    DownloadError,
    download_tess,
    load_audio,
    load_waveforms,
    verify,
)
from emoser.data.verify import Checksum

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


# --------------------------------------------------------------------------- unopenable files
def test_unopenable_file_says_why_not_system_error(tmp_path, monkeypatch):
    from emoser.data import audio

    folder = tmp_path / "folder.wav"
    folder.mkdir()
    _refused(folder, "cannot open", "Is a directory")
    path = _write(tmp_path / "locked.wav", _noise(), subtype="PCM_16")

    def denied(file, *args, **kw):  # as chmod 000 does (which root would ignore)
        raise PermissionError(13, "Permission denied", str(file))

    monkeypatch.setattr(audio, "open", denied, raising=False)
    err = _refused(path, "cannot open (Permission denied)")
    assert "System error" not in str(err)


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


# --------------------------------------------------------------------------- downloads
def _archive():
    """A one-recording 'TESS' archive and its checksum table."""
    buf = io.BytesIO()
    sf.write(buf, _noise(2000), RATE, format="WAV", subtype="PCM_16")
    wav = buf.getvalue()
    table = {"YAF_back_happy.wav": Checksum("YAF_back_happy.wav", hashlib.sha256(wav).hexdigest(),
                                            len(wav), "YAF_happy")}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("TESS/YAF_happy/YAF_back_happy.wav", wav)
    return out.getvalue(), table


class _Server:
    """Serves ``body`` at /tess.zip; the first ``slow`` requests trickle (``byte`` bytes every
    ``every`` s) or, with ``byte=0``, send the headers and then nothing."""

    def __init__(self, body, slow=0, every=0.1, byte=1):
        self.requests, self.stop = [], threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append(self.headers.get("Range"))
                start = int(self.headers["Range"][6:-1]) if self.headers.get("Range") else 0
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if len(server.requests) > slow:
                    self.wfile.write(body[start:])
                    return
                for i in range(start, len(body), byte or 1):  # bounded: the body's length
                    if server.stop.wait(every):
                        return
                    try:
                        self.wfile.write(body[i:i + byte])
                        self.wfile.flush()
                    except OSError:  # the client gave up
                        return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/tess.zip"
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(*args, **kw):
        servers.append(_Server(*args, **kw))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _download(url, target, table, **kw):
    kw = {"progress": False, "checksums": table, "retries": 0, "timeout": 10, "backoff": 0, **kw}
    return download_tess(target, url=url, **kw)


def test_trickling_transfer_gives_up_and_keeps_what_arrived(serve, tmp_path):
    body, table = _archive()
    server = serve(body, slow=1, every=0.05)  # 20 bytes/s: never a socket timeout
    with pytest.raises(DownloadError) as err:
        _download(server.url, tmp_path / "tess", table, stall_seconds=1, stall_bytes=1000)
    message = str(err.value)
    assert "stalled: only" in message and "arrived in the last 1 s" in message, message
    assert "gives up when less than 1000 bytes arrives in 1 s" in message and "\n" not in message
    part = tmp_path / ".tess.download.part"
    assert 0 < part.stat().st_size < len(body) and f"kept in {part}" in message
    assert not (tmp_path / "tess").exists()
    have = part.stat().st_size  # the next attempt resumes from what arrived
    _download(server.url, tmp_path / "tess", table, stall_seconds=1, stall_bytes=1000)
    assert server.requests == [None, f"bytes={have}-"]  # resumed, not restarted
    assert verify(tmp_path / "tess", table).complete and not part.exists()


def test_silent_connection_is_a_stall_and_is_retried(serve, tmp_path):
    body, table = _archive()
    server = serve(body, slow=1, every=5, byte=0)  # headers, then silence (for 5 s)
    target = _download(server.url, tmp_path / "tess", table, retries=1, stall_seconds=0.5)
    assert server.requests == [None, None] and verify(target, table).complete
    server = serve(body, slow=1, every=5, byte=0)
    with pytest.raises(DownloadError, match=r"stalled: nothing arrived in 0.5 s.*Nothing was kept"):
        _download(server.url, tmp_path / "other", table, stall_seconds=0.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tess"]  # no part file, no sidecar


def test_refused_connection_names_url_and_cause(tmp_path):
    _, table = _archive()
    url = "http://127.0.0.1:9/tess.zip"  # the discard port: nothing listens on loopback
    with pytest.raises(DownloadError) as err:
        _download(url, tmp_path / "tess", table)
    message = str(err.value)
    assert url in message and "Connection refused" in message and "Nothing was kept" in message
    assert list(tmp_path.iterdir()) == []


def test_offline_fails_at_once_without_retrying(tmp_path, monkeypatch):
    import socket

    calls = []

    def offline(*args, **kw):
        calls.append(args)
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", offline)
    _, table = _archive()
    with pytest.raises(DownloadError, match="cannot look up example.org .*offline"):
        _download("http://example.org/tess.zip", tmp_path / "tess", table, retries=3, backoff=5)
    assert len(calls) == 1 and list(tmp_path.iterdir()) == []


def test_existing_folder_without_tess_is_never_written_into(tmp_path):
    _, table = _archive()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("mine")
    with pytest.raises(DownloadError, match="holds no TESS recordings; refusing"):
        _download("http://127.0.0.1:9/x", other, table)
    two = {**table, "YAF_back_sad.wav": Checksum("YAF_back_sad.wav", "0" * 64, 1, "YAF_sad")}
    partial = tmp_path / "partial"
    (partial / "x").mkdir(parents=True)
    (partial / "x" / "YAF_back_happy.wav").write_bytes(b"x")
    with pytest.raises(DownloadError, match="holds only 1 of the 2 TESS recordings.*verify"):
        _download("http://127.0.0.1:9/x", partial, two)
    assert _download("http://127.0.0.1:9/x", partial, table) == partial  # complete: kept
    assert (other / "todo.txt").read_text() == "mine"


def test_full_disk_names_the_file_and_the_cause(tmp_path, monkeypatch):
    real_open = open

    def full_disk(file, *args, **kw):
        if str(file).endswith(".download.part"):
            raise OSError(28, "No space left on device")
        return real_open(file, *args, **kw)

    import builtins
    body, table = _archive()
    server = _Server(body)
    try:
        monkeypatch.setattr(builtins, "open", full_disk)
        with pytest.raises(DownloadError) as err:
            _download(server.url, tmp_path / "tess", table)
    finally:
        monkeypatch.undo()
        server.close()
    assert str(err.value) == f"cannot write {tmp_path / '.tess.download.part'}: " \
                             "No space left on device"


# --------------------------------------------------------------------------- command line
def _cli(*args, prelude="", env=None, timeout=120):
    """Run ``python -m emoser ARGS`` (after ``prelude``); return (code, stdout, stderr)."""
    code = prelude + "\nimport runpy, sys\nsys.argv = ['emoser', *sys.argv[1:]]\n" \
                     "runpy.run_module('emoser', run_name='__main__', alter_sys=True)"
    cmd = [sys.executable, "-m", "emoser", *args] if not prelude else \
        [sys.executable, "-c", code, *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1", **(env or {})}
    r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, env=env,
                       cwd=ROOT)
    return r.returncode, r.stdout, r.stderr


def _one_line_error(code, err, *parts):
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("emoser download: error: "), err
    for part in parts:
        assert part in err, err


def test_cli_download_target_is_a_file(tmp_path):
    file = tmp_path / "tess.txt"
    file.write_text("not a folder")
    code, _, err = _cli("download", "--target", str(file), env={"EMOSER_CACHE_DIR": str(tmp_path)})
    _one_line_error(code, err, str(file), "is not a folder")


def test_cli_download_into_a_folder_without_tess(tmp_path):
    folder = tmp_path / "my documents"
    folder.mkdir()
    (folder / "letter.txt").write_text("keep me")
    code, out, err = _cli("download", "--target", str(folder))
    _one_line_error(code, err, str(folder), "holds no TESS recordings")
    assert "TESS is in" not in out and (folder / "letter.txt").read_text() == "keep me"


def test_cli_download_offline(tmp_path):
    prelude = ("import socket\n"
               "def offline(*a, **k):\n"
               "    raise socket.gaierror(-3, 'Temporary failure in name resolution')\n"
               "socket.getaddrinfo = offline")
    code, out, err = _cli("download", "--target", str(tmp_path / "tess"), prelude=prelude)
    _one_line_error(code, err, "https://borealisdata.ca/", "cannot look up borealisdata.ca",
                    "Temporary failure in name resolution", "offline")
    assert "gives up when less than 1 MiB arrives in 60 s" in out
    assert list(tmp_path.iterdir()) == []


def _unwritable(tmp_path):
    if os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir(mode=0o500)
        return folder / "tess"
    if Path("/sys").is_dir():  # even root may not create folders in sysfs
        return Path("/sys/emoser-test-tess")
    pytest.skip("no folder that root cannot write")


def test_cli_download_permission_denied(tmp_path):
    target = _unwritable(tmp_path)
    code, _, err = _cli("download", "--target", str(target))
    _one_line_error(code, err, "Permission denied", str(target.parent))
    assert "System error" not in err
