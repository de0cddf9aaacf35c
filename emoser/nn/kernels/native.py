"""Fused CPU kernels for the default training path, compiled on first use.

``emoser/nn/kernels/native_kernels.c`` holds kernels of the same equations as
:mod:`emoser.nn.kernels`: the
LSTM recurrence with its backward pass through time, block 1 of the CNN front-end (average
pooling, convolution, ReLU, max pooling) with its backward pass, and the ReLU + max pooling
of the later blocks. On a CPU these loops are dominated by the cost of *calling* small
PyTorch operations (microseconds each, thousands per batch); the C code does a whole step,
or a whole frame, per loop iteration.

The first call compiles the file with the system's C compiler (``$CC``, else ``cc``; about a
second per precision) into ``<cache>/native/`` (``<cache>`` as in
:func:`emoser.data.cache.cache_dir`) and loads it with :mod:`ctypes`. Without a compiler,
or with ``EMOSER_NATIVE=0``, :mod:`emoser.nn.kernels` runs its PyTorch code instead: the same
function, slower. ``EMOSER_NATIVE=require`` turns a failed build into an error (CI uses it,
so that the tests never pass on the fallback alone).

Chapter: chapters/13_under_the_hood.ipynb
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from importlib import resources
from pathlib import Path

import torch

from ...data.cache import cache_dir

__all__ = ["ENV_NATIVE", "NativeBuildError", "enabled", "override", "kernels", "status", "build"]

#: ``0``: never use the kernels; ``require``: fail when they cannot be built; else use them
#: when a C compiler is there.
ENV_NATIVE = "EMOSER_NATIVE"

#: Flags of the compilation: IEEE arithmetic. No ``-ffast-math``: it lets the compiler assume
#: there are no NaNs or infinities (a NaN then turned into a finite number, and a training
#: seed that trains without it collapsed) and reorder sums. ``-ffp-contract=off``: no fused
#: multiply-add either, so every product and sum is rounded as written, on any CPU.
#: ``-fno-math-errno`` changes no result (``exp``/``tanh`` need not set ``errno``).
CFLAGS = ("-O3", "-fno-math-errno", "-ffp-contract=off", "-fPIC")
LDFLAGS = ("-shared",)
#: Tried in turn until one compiles: the vector instructions of this CPU (``-march=native``;
#: ``-mcpu=native`` on ARM), else the architecture's baseline. With the flags above they give
#: the same bits (tests/test_native.py compares them); the native ones are faster (wider
#: vectors, more registers for the matrix product). The CPU's flags are part of the cache key.
_ARCH_FLAGS = (("-march=native",), ("-mcpu=native",), ())

#: The longest convolution kernel block 1's kernel takes (``MAX_K`` in the C file).
MAX_KERNEL = 16

_P, _I, _L = ctypes.c_void_p, ctypes.c_int, ctypes.c_long
_SIGNATURES = {
    "lstm_forward": [_P] * 5 + [_I] * 4,
    "lstm_backward": [_P] * 8 + [_I] * 4,
    "block1_forward": [_P] + [_I] * 6 + [_P] * 3 + [_L] * 3,
    "block1_backward": [_P] + [_I] * 6 + [_P] * 3 + [_L] * 3 + [_P],
    "pool_forward": [_P] + [_I] * 3 + [_P] + [_L] * 3 + [_P],
    "pool_backward": [_P, _P] + [_L] * 3 + [_P] + [_I] * 3 + [_P],
}


class NativeBuildError(RuntimeError, OSError):
    """The kernels could not be compiled or loaded: a one-line message (with the compiler's
    first complaint), the whole compiler output in ``log`` (and, from Python 3.11, as a note
    of the traceback). Also an ``OSError``, so that the command line reports it in one line,
    without a traceback.

    Chapter: chapters/13_under_the_hood.ipynb
    """

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log
        if log and hasattr(self, "add_note"):
            self.add_note(log)


_loaded: dict = {}
_failure: str | None = None
_override: bool | None = None


def _setting() -> str:
    return os.environ.get(ENV_NATIVE, "1").strip().lower()


def enabled() -> bool:
    """Whether :mod:`emoser.speed` should try the kernels: inside :func:`override` what it says,
    else unless ``EMOSER_NATIVE`` is ``0``.

    Chapter: chapters/13_under_the_hood.ipynb
    """
    if _override is not None:
        return _override
    return _setting() not in ("0", "false", "no", "off")


@contextlib.contextmanager
def override(on: bool):
    """Within the ``with`` block, use the kernels (``True``, where they can be built) or the
    PyTorch code (``False``), whatever ``EMOSER_NATIVE`` says.

    Chapter: chapters/13_under_the_hood.ipynb
    """
    global _override
    before, _override = _override, bool(on)
    try:
        yield
    finally:
        _override = before


def _source() -> bytes:
    return resources.files("emoser.nn.kernels").joinpath("native_kernels.c").read_bytes()


def _cpu_key() -> str:
    """What ``-march=native`` depends on: the CPU's feature flags where Linux lists them."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _stamp_path(lib: Path) -> Path:
    return lib.with_name(lib.name + ".json")


def _file_stamp(path: Path) -> dict:
    return {"bytes": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _intact(lib: Path) -> bool:
    """Whether ``lib`` is the whole library that was built: its size and SHA-256 as recorded
    beside it at build time. Loading a truncated library (a full disk, an interrupted copy)
    kills the process with SIGBUS, so nothing is loaded without this check."""
    try:
        return json.loads(_stamp_path(lib).read_text()) == _file_stamp(lib)
    except (OSError, ValueError):
        return False


def _compile(cc: str, source: Path, real: str, target: Path) -> None:
    """Compile, then link, into a temporary name; record its size and SHA-256 beside ``target``,
    then rename it to ``target``, only when both steps worked."""
    errors = []
    obj = source.with_name(f"kernels_{real}.o")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    for arch in _ARCH_FLAGS:
        steps = ([cc, *arch, *CFLAGS, f"-DREAL={real}", "-c", "-o", str(obj), str(source)],
                 [cc, *LDFLAGS, "-o", str(tmp), str(obj), "-lm"])
        for cmd in steps:
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                errors.append(f"$ {' '.join(cmd)}\n{proc.stderr.strip()}")
                break
        else:
            stamp, stamp_tmp = _stamp_path(target), _stamp_path(tmp)
            stamp_tmp.write_text(json.dumps(_file_stamp(tmp)))
            os.replace(stamp_tmp, stamp)
            os.replace(tmp, target)  # whole file or nothing: no half-written library is ever loaded
            return
        tmp.unlink(missing_ok=True)
    raise NativeBuildError(f"compiling {source.name} failed: {_first_error(errors)}",
                           "\n".join(errors))


def _first_error(logs) -> str:
    for log in logs:
        for line in log.splitlines():
            if "error" in line.lower():
                return line.strip()
    return "see the compiler output below"


def build(folder: Path | None = None) -> dict:
    """Compile (if not yet in the cache) and load the kernels; return ``{dtype: library}``.

    Chapter: chapters/13_under_the_hood.ipynb

    Args:
        folder (Path | None): Where the libraries go; default ``<cache>/native``.

    Raises:
        NativeBuildError: No C compiler, or the build or the loading failed.
    """
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise NativeBuildError("no C compiler found (set $CC, or install gcc or clang)")
    src = _source()
    version = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
    flags = " | ".join(" ".join(f) for f in (CFLAGS, LDFLAGS, *_ARCH_FLAGS))
    key = hashlib.sha256(b"\0".join([src, version.encode(), _cpu_key().encode(), flags.encode()]))
    folder = Path(folder) if folder is not None else cache_dir() / "native"
    out = folder / key.hexdigest()[:16]
    out.mkdir(parents=True, exist_ok=True)
    libs = {}
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "native_kernels.c"
        source.write_bytes(src)
        for dtype, real in ((torch.float32, "float"), (torch.float64, "double")):
            target = out / f"kernels_{real}.so"
            if not _intact(target):  # missing, or not the file that was built: build it again
                try:
                    _compile(cc, source, real, target)
                except NativeBuildError as err:
                    if not target.exists():
                        raise
                    raise NativeBuildError(f"{target} is damaged (its size or SHA-256 is not the "
                                           f"one recorded when it was built) and rebuilding it "
                                           f"failed: {err}", err.log) from None
                # no check again here: os.replace put a whole file there (ours, or that of a
                # process building at the same time, whose stamp may then be the other one's:
                # the next process rebuilds once)
            try:
                lib = ctypes.CDLL(str(target))
            except OSError as err:
                raise NativeBuildError(f"loading {target} failed: {err}") from err
            for name, args in _SIGNATURES.items():
                fn = getattr(lib, name)
                fn.argtypes, fn.restype = args, ctypes.c_int
            libs[dtype] = lib
    return libs


def kernels(dtype: torch.dtype):
    """The compiled library for ``dtype`` (float32/float64), or ``None`` (disabled, other dtype,
    or no build possible: then a warning says why, once).

    Chapter: chapters/13_under_the_hood.ipynb
    """
    global _failure
    if not enabled() or dtype not in (torch.float32, torch.float64):
        return None
    if not _loaded and _failure is None:
        try:
            _loaded.update(build())
        except (NativeBuildError, OSError) as err:
            _failure = str(err)
            if _setting() == "require":
                raise
            warnings.warn("emoser: the fused CPU kernels are not available, using the PyTorch "
                          f"code (same results, slower). {_failure.splitlines()[0]}",
                          RuntimeWarning, stacklevel=2)
    return _loaded.get(dtype)


def status() -> str:
    """One line: whether the kernels are in use, and if not, why.

    Chapter: chapters/13_under_the_hood.ipynb
    """
    if not enabled():
        why = ("emoser.nn.kernels.native.override(False)" if _override is False
               else f"{ENV_NATIVE}={os.environ.get(ENV_NATIVE)}")
        return f"fused CPU kernels: off ({why})"
    lib = kernels(torch.float32)
    if lib is None:
        return f"fused CPU kernels: not available ({(_failure or '').splitlines()[0]})"
    return "fused CPU kernels: compiled and in use"
