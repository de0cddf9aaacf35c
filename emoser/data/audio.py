"""Reading recordings: mono float32 at the working rate, with clear errors and a decoded cache.

Chapter: chapters/01_data.ipynb
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import soundfile as sf

from ..common import DEFAULT_RATE
from .cache import cache_dir

__all__ = ["AudioLoadError", "LoadReport", "load_audio", "load_waveforms", "decoded_cache_dir"]

_CACHE_VERSION = 3  # 3: files that are truncated, constant, absurd or too long are refused
_CACHE_KEEP = 6  # decoded-cache entries kept (least recently used ones are removed)

#: Longest recording decoded by default (seconds): 10 minutes, about 60 MB at the working rate.
MAX_SECONDS = 600.0
_MIN_RATE, _MAX_RATE = 1000, 1_000_000  # sampling rates (Hz) that real audio files have
_MAX_ABS = 1e4  # float samples beyond this are not audio (full scale is 1.0)
_MIN_STD = 1e-6  # a signal varying less than this (-120 dBFS) carries no sound


class AudioLoadError(ValueError):
    """A recording cannot be used; ``.path`` and ``.reason`` say which and why.

    Chapter: chapters/01_data.ipynb
    """

    def __init__(self, path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass
class LoadReport:
    """What :func:`load_waveforms` did besides reading.

    Attributes:
        resampled: ``(path, native_rate)`` of files converted to the working rate.
        skipped: ``(path, reason)`` of unusable files left out (only with ``skip_bad=True``).
        rate: the working rate in Hz.
        from_cache (bool): the arrays came from the decoded cache.
        seconds (float): time taken.

    Chapter: chapters/01_data.ipynb
    """

    resampled: list[tuple[Path, int]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    rate: int = DEFAULT_RATE
    from_cache: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        """One line: resampled and skipped files (named) and the time taken."""
        how = "cached" if self.from_cache else "decoded"
        s = f"{how} in {self.seconds:.2f} s at {self.rate} Hz"
        if self.resampled:
            s += "; resampled: " + ", ".join(f"{Path(p).name} ({r} Hz)" for p, r in self.resampled)
        if self.skipped:
            s += "; SKIPPED: " + ", ".join(f"{Path(p).name} ({why})" for p, why in self.skipped)
        return s

    def __str__(self) -> str:
        return self.summary()


def resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Resample ``x`` from ``src`` Hz to ``dst`` Hz (soxr, high quality; float32 out).

    Chapter: chapters/01_data.ipynb
    """
    try:
        import soxr
        return soxr.resample(x, src, dst, quality="HQ").astype(np.float32, copy=False)
    except ImportError:  # pragma: no cover - soxr comes with librosa
        from math import gcd

        from scipy.signal import resample_poly
        g = gcd(src, dst)
        return resample_poly(x, dst // g, src // g).astype(np.float32)


_INT16_SCALE = np.float32(1.0 / 32768.0)  # libsndfile's own int16 -> float scaling


def _check_options(rate, max_seconds) -> None:
    """Refuse options that would allocate without bound (a bad rate or length limit)."""
    if rate is not None:
        try:
            ok = float(rate).is_integer() and _MIN_RATE <= rate <= _MAX_RATE
        except (TypeError, ValueError, OverflowError):
            ok = False
        if not ok:
            raise ValueError(f"rate={rate!r} is not a real sampling rate "
                             f"(expected a whole number of Hz from {_MIN_RATE} to {_MAX_RATE})")
    try:
        ok = max_seconds > 0 and math.isfinite(max_seconds)
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"max_seconds={max_seconds!r}: expected a positive number of seconds")


def _nbytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:.0f} bytes"


def _declared_audio_bytes(path: Path, size: int) -> tuple[int, int] | None:
    """``(bytes the header declares for the samples, bytes the file holds after that header)``.

    Walks the chunks of a RIFF/RF64 WAV or an AIFF file (libsndfile silently reads a truncated
    file as a shorter one). None for other formats, streamed headers without a length, or a
    chunk layout that libsndfile itself will judge.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12:
                return None
            if head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
                order, data_id = "<", b"data"
            elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
                order, data_id = ">", b"SSND"
            else:
                return None
            ds64 = None
            for _ in range(1000):  # chunks before the samples
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                cid, n = chunk[:4], struct.unpack(order + "I", chunk[4:])[0]
                start = fh.tell()
                if cid == b"ds64":
                    ds64 = struct.unpack("<Q", fh.read(16)[8:16] or b"\0" * 8)[0]
                if cid == data_id:
                    if n == 0xFFFFFFFF and ds64 is not None:
                        n = ds64
                    if n in (0, 0xFFFFFFFF):  # written while streaming: length unknown
                        return None
                    if data_id == b"SSND":  # offset and block size precede the samples
                        n, start = n - 8, start + 8
                    return n, max(size - start, 0)
                fh.seek(start + n + (n & 1))
    except (OSError, struct.error):
        return None
    return None


def _read(path: Path, rate: int | None, max_seconds: float) -> tuple[np.ndarray, int]:
    """Samples as int16 (mono 16-bit PCM: exact, compact) or float32 (frames x channels).

    The header is checked before anything is allocated: a real sampling rate, a length within
    ``max_seconds``, and samples that are all in the file.
    """
    try:
        f = sf.SoundFile(path)
    except Exception as exc:  # libsndfile reads WAV, AIFF, FLAC, OGG, MP3 (whatever the name)
        raise AudioLoadError(path, f"not a readable audio file ({exc})") from exc
    with f:
        native, frames, channels = int(f.samplerate), int(f.frames), int(f.channels)
        if not _MIN_RATE <= native <= _MAX_RATE:
            raise AudioLoadError(path, f"not a real sampling rate: the header says {native} Hz "
                                       f"(expected {_MIN_RATE} to {_MAX_RATE} Hz)")
        seconds = frames / native
        if seconds > max_seconds:
            mono16 = f.subtype == "PCM_16" and channels == 1
            out = math.ceil(frames * rate / native) if rate not in (None, native) else 0
            need = frames * channels * (2 if mono16 else 4) + 4 * frames + 4 * out
            to = f" and resample to {rate} Hz" if out else ""
            raise AudioLoadError(
                path, f"too long: {seconds:.0f} s of audio ({channels} channel(s) at {native} Hz) "
                      f"would need about {_nbytes(need)} to decode{to}; the limit is "
                      f"{max_seconds:g} s (max_seconds={max_seconds:g})")
        declared = _declared_audio_bytes(path, path.stat().st_size)
        if declared is not None and declared[0] > declared[1]:
            raise AudioLoadError(path, f"truncated: header says {declared[0]} bytes of audio, "
                                       f"file has {declared[1]}")
        try:
            if f.subtype == "PCM_16" and channels == 1:
                return f.read(dtype="int16"), native
            return f.read(dtype="float32", always_2d=True), native
        except Exception as exc:
            raise AudioLoadError(path, f"not a readable audio file ({exc})") from exc


def _spread(x: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of a 1-D array, in float64 blocks (no full-size copy)."""
    mean = float(x.mean(dtype=np.float64))
    ss = 0.0
    for i in range(0, len(x), 1 << 20):
        d = x[i:i + (1 << 20)].astype(np.float64) - mean
        ss += float(d @ d)
    return mean, math.sqrt(ss / len(x))


def _decode(path: Path, rate: int | None,
            max_seconds: float = MAX_SECONDS) -> tuple[np.ndarray, int, np.ndarray | None]:
    """Return (mono float32 wave at ``rate``, native rate, the int16 samples if exact or None).

    Raises AudioLoadError if the file is unusable.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioLoadError(path, f"cannot open ({exc.strerror or exc})") from exc
    if size == 0:
        raise AudioLoadError(path, "empty file (0 bytes)")
    try:  # the system's own words: libsndfile says "System error" for any of these
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise AudioLoadError(path, f"cannot open ({exc.strerror or exc})") from exc
    data, native = _read(path, rate, max_seconds)
    if data.size == 0:
        raise AudioLoadError(path, "contains no samples")
    if data.dtype == np.int16:
        ints, wave = data, data.astype(np.float32)
        wave *= _INT16_SCALE
    else:
        ints = None
        if not np.all(np.isfinite(data)):
            raise AudioLoadError(path, "contains NaN or infinite samples")
        peak = max(float(data.max()), -float(data.min()))
        if peak > _MAX_ABS:
            raise AudioLoadError(path, f"absurd sample values: magnitude up to {peak:.3g} "
                                       f"(audio lies within about +-1; the limit is {_MAX_ABS:g})")
        wave = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.any(data):
        raise AudioLoadError(path, "silent: all samples are zero")
    mean, std = _spread(wave)  # after mixing to mono: channels may cancel out
    if std < _MIN_STD:
        if data.ndim == 2 and data.shape[1] > 1 and np.ptp(data, axis=0).max() > 0:
            raise AudioLoadError(path, f"no sound: the {data.shape[1]} channels cancel out "
                                       f"when mixed to mono (std {std:.2g})")
        raise AudioLoadError(path, f"no sound: the signal is constant (std {std:.2g} around "
                                   f"{mean:.3g}, below {_MIN_STD:g})")
    if rate is not None and native != rate:
        wave, ints = resample(wave, native, rate), None
    return np.ascontiguousarray(wave, dtype=np.float32), native, ints


def load_audio(path: str | os.PathLike, rate: int | None = DEFAULT_RATE, *,
               max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """Read one recording as a mono float32 array at ``rate``.

    Stereo is averaged to mono; a file at another rate is resampled (soxr, high quality).
    AIFF files with a ``.wav`` name are fine (libsndfile reads the header, not the name).
    The header is checked before any sample is read, so a bad header cannot make it allocate
    without bound.

    Args:
        path: audio file.
        rate (int | None): working rate in Hz (default TESS's 24414); None keeps the native rate.
        max_seconds (float): longest recording accepted (default 600 s, about 60 MB at 24414 Hz);
            the error for a longer one states the memory decoding it would need.

    Returns:
        np.ndarray: 1-D float32 samples in [-1, 1].

    Raises:
        AudioLoadError: the file is unusable; the message names it and says why: unreadable,
            empty, truncated (the header promises more samples than the file holds), not a real
            sampling rate (below 1000 Hz), longer than ``max_seconds``, NaN, infinite or absurdly
            large samples, all-zero, or no sound (constant, or channels cancelling out in the
            mono mix).
        ValueError: ``rate`` is not a real sampling rate or ``max_seconds`` is not positive.

    Chapter: chapters/01_data.ipynb
    """
    _check_options(rate, max_seconds)
    return _decode(Path(path), None if rate is None else int(rate), max_seconds)[0]


def decoded_cache_dir() -> Path:
    """Folder of the decoded-audio cache: ``<cache>/decoded`` (see :func:`cache_dir`).

    Chapter: chapters/01_data.ipynb
    """
    return cache_dir() / "decoded"


def _cache_key(paths: list[Path], rate: int, skip_bad: bool, max_seconds: float) -> str:
    h = hashlib.sha256(f"v{_CACHE_VERSION} rate={rate} skip={skip_bad} "
                       f"max={max_seconds!r}\n".encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:32]


def _cache_read(file: Path) -> tuple[list[np.ndarray], dict]:
    with np.load(file, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        i16, f32, kind = z["i16"], z["f32"], z["kind"]
        i_off, f_off = z["i16_offsets"], z["f32_offsets"]
    def from_int16(a, b):  # one small array per wave: much faster than one huge conversion
        w = i16[a:b].astype(np.float32)
        w *= _INT16_SCALE  # identical to decoding the file again
        return w

    its = ((from_int16(a, b) for a, b in zip(i_off[:-1], i_off[1:])),
           (f32[a:b] for a, b in zip(f_off[:-1], f_off[1:])))
    waves = [next(its[k]) for k in kind]
    try:
        os.utime(file)  # mark as recently used
    except OSError:
        pass
    return waves, meta


def _cache_write(file: Path, waves: list[np.ndarray], ints: list, meta: dict) -> None:
    """Store exact 16-bit files as int16 (half the size), everything else as float32."""
    kind = np.array([0 if q is not None else 1 for q in ints], dtype=np.int8)
    i_list = [q for q in ints if q is not None]
    f_list = [w for w, q in zip(waves, ints) if q is None]

    def flat(xs, dtype):
        off = np.concatenate([[0], np.cumsum([len(x) for x in xs], dtype=np.int64)])
        return (np.concatenate(xs) if xs else np.zeros(0, dtype)), off

    i16, i_off = flat(i_list, np.int16)
    f32, f_off = flat(f_list, np.float32)
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=file.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, i16=i16, f32=f32, kind=kind, i16_offsets=i_off, f32_offsets=f_off,
                     meta=np.array(json.dumps(meta)))
        os.replace(tmp, file)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    entries = sorted(file.parent.glob("*.npz"), key=lambda q: q.stat().st_mtime, reverse=True)
    for old in entries[_CACHE_KEEP:]:
        old.unlink(missing_ok=True)


def load_waveforms(records: Iterable, rate: int = DEFAULT_RATE, skip_bad: bool = False,
                   cache: bool = True, *, progress: bool = False,
                   max_seconds: float = MAX_SECONDS) -> tuple[list[np.ndarray], LoadReport]:
    """Read many recordings; report what was resampled or skipped.

    Decoded arrays are cached in ``<cache>/decoded/<key>.npz`` (never beside the recordings),
    keyed by every file's path, size and modification time and the rate, so a changed file
    invalidates the entry. The cache is best effort: an unwritable cache folder only costs time.

    Args:
        records: :class:`~emoser.data.Recording` objects or paths.
        rate (int): working rate in Hz; files at other rates are resampled.
        skip_bad (bool): leave unusable files out (listed in ``report.skipped``) instead of raising.
        cache (bool): use the decoded cache.
        progress (bool): show a progress bar while decoding.
        max_seconds (float): longest recording accepted (see :func:`load_audio`).

    Returns:
        tuple: ``(waves, report)`` -- a list of 1-D float32 arrays in input order (without the
        skipped files) and a :class:`LoadReport`.

    Raises:
        AudioLoadError: an unusable file when ``skip_bad`` is False (see :func:`load_audio`
            for the reasons; with ``skip_bad`` they are listed in ``report.skipped``).
        ValueError: ``rate`` is not a real sampling rate or ``max_seconds`` is not positive.

    Chapter: chapters/01_data.ipynb
    """
    _check_options(rate, max_seconds)
    rate = int(rate)
    t0 = time.perf_counter()
    paths = [Path(getattr(r, "path", r)) for r in records]
    report = LoadReport(rate=int(rate))
    file = None
    if cache and paths:
        try:
            file = decoded_cache_dir() / f"{_cache_key(paths, rate, skip_bad, max_seconds)}.npz"
        except OSError:
            file = None  # a missing file: decoding below names it
    if file is not None and file.exists():
        try:
            hit = _cache_read(file)
        except Exception:
            hit = None
        if hit is not None:
            waves, meta = hit
            skipped = {p for p, _ in meta["skipped"]}
            if len(waves) == len(paths) - len(skipped):
                report.resampled = [(Path(p), r) for p, r in meta["resampled"]]
                report.skipped = [(Path(p), why) for p, why in meta["skipped"]]
                report.from_cache = True
                report.seconds = time.perf_counter() - t0
                return waves, report

    waves: list[np.ndarray] = []
    ints: list[np.ndarray | None] = []
    it = paths
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(paths, desc="decoding", unit="file")
    for p in it:
        try:
            w, native, q = _decode(p, rate, max_seconds)
        except AudioLoadError as exc:
            if not skip_bad:
                raise
            report.skipped.append((p, exc.reason))
            continue
        if native != rate:
            report.resampled.append((p, native))
        waves.append(w)
        ints.append(q)
    if file is not None:
        meta = {"rate": rate, "resampled": [(str(p), r) for p, r in report.resampled],
                "skipped": [(str(p), why) for p, why in report.skipped]}
        try:
            _cache_write(file, waves, ints, meta)
        except OSError:
            pass
    report.seconds = time.perf_counter() - t0
    return waves, report
