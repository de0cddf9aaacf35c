"""Reading recordings: mono float32 at the working rate, with clear errors and a decoded cache.

Chapter: chapters/01_data.ipynb
"""

from __future__ import annotations

import hashlib
import json
import os
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

_CACHE_VERSION = 2
_CACHE_KEEP = 6  # decoded-cache entries kept (least recently used ones are removed)


class AudioLoadError(ValueError):
    """A recording cannot be used; ``.path`` and ``.reason`` say which and why."""

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
        s = f"{'cached' if self.from_cache else 'decoded'} in {self.seconds:.2f} s at {self.rate} Hz"
        if self.resampled:
            s += "; resampled: " + ", ".join(f"{Path(p).name} ({r} Hz)" for p, r in self.resampled)
        if self.skipped:
            s += "; SKIPPED: " + ", ".join(f"{Path(p).name} ({why})" for p, why in self.skipped)
        return s

    def __str__(self) -> str:
        return self.summary()


def resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    try:
        import soxr
        return soxr.resample(x, src, dst, quality="HQ").astype(np.float32, copy=False)
    except ImportError:  # pragma: no cover - soxr comes with librosa
        from math import gcd

        from scipy.signal import resample_poly
        g = gcd(src, dst)
        return resample_poly(x, dst // g, src // g).astype(np.float32)


_INT16_SCALE = np.float32(1.0 / 32768.0)  # libsndfile's own int16 -> float scaling


def _read(path: Path) -> tuple[np.ndarray, int]:
    """Samples as int16 (mono 16-bit PCM: exact, compact) or float32 (frames x channels)."""
    try:
        with sf.SoundFile(path) as f:
            if f.subtype == "PCM_16" and f.channels == 1:
                return f.read(dtype="int16"), f.samplerate
            return f.read(dtype="float32", always_2d=True), f.samplerate
    except Exception as exc:  # libsndfile reads WAV, AIFF, FLAC, OGG, MP3 (whatever the name)
        raise AudioLoadError(path, f"not a readable audio file ({exc})") from exc


def _decode(path: Path, rate: int | None) -> tuple[np.ndarray, int, np.ndarray | None]:
    """Return (mono float32 wave at ``rate``, native rate, the int16 samples if exact or None).

    Raises AudioLoadError if the file is unusable.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioLoadError(path, f"cannot open ({exc.strerror or exc})") from exc
    if size == 0:
        raise AudioLoadError(path, "empty file (0 bytes)")
    data, native = _read(path)
    native = int(native)
    if data.size == 0:
        raise AudioLoadError(path, "contains no samples")
    if data.dtype == np.int16:
        ints, wave = data, data.astype(np.float32)
        wave *= _INT16_SCALE
    else:
        ints = None
        wave = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
        if not np.all(np.isfinite(wave)):
            raise AudioLoadError(path, "contains NaN or infinite samples")
    if not np.any(data):
        raise AudioLoadError(path, "silent: all samples are zero")
    if rate is not None and native != rate:
        wave, ints = resample(wave, native, rate), None
    return np.ascontiguousarray(wave, dtype=np.float32), native, ints


def load_audio(path: str | os.PathLike, rate: int | None = DEFAULT_RATE) -> np.ndarray:
    """Read one recording as a mono float32 array at ``rate``.

    Stereo is averaged to mono; a file at another rate is resampled (soxr, high quality).
    AIFF files with a ``.wav`` name are fine (libsndfile reads the header, not the name).

    Args:
        path: audio file.
        rate (int | None): working rate in Hz (default TESS's 24414); None keeps the native rate.

    Returns:
        np.ndarray: 1-D float32 samples in [-1, 1].

    Raises:
        AudioLoadError: unreadable, empty, all-zero or non-finite (message names file and reason).

    Chapter: chapters/01_data.ipynb
    """
    return _decode(Path(path), rate)[0]


def decoded_cache_dir() -> Path:
    """Folder of the decoded-audio cache: ``<cache>/decoded`` (see :func:`cache_dir`).

    Chapter: chapters/01_data.ipynb
    """
    return cache_dir() / "decoded"


def _cache_key(paths: list[Path], rate: int, skip_bad: bool) -> str:
    h = hashlib.sha256(f"v{_CACHE_VERSION} rate={rate} skip={skip_bad}\n".encode())
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
                   cache: bool = True, *, progress: bool = False
                   ) -> tuple[list[np.ndarray], LoadReport]:
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

    Returns:
        tuple: ``(waves, report)`` -- a list of 1-D float32 arrays in input order (without the
        skipped files) and a :class:`LoadReport`.

    Raises:
        AudioLoadError: an unusable file when ``skip_bad`` is False.

    Chapter: chapters/01_data.ipynb
    """
    t0 = time.perf_counter()
    paths = [Path(getattr(r, "path", r)) for r in records]
    report = LoadReport(rate=int(rate))
    file = None
    if cache and paths:
        try:
            file = decoded_cache_dir() / f"{_cache_key(paths, rate, skip_bad)}.npz"
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
            w, native, q = _decode(p, rate)
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
