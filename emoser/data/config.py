"""Where the TESS recordings come from: the one place that documents the resolution order.

:func:`resolve_data_dir` looks, in this order, at

1. an explicit ``path`` argument;
2. the environment variable ``EMOSER_TESS_DIR`` (if it is set, it must point at an existing
   folder -- a wrong value is an error, never silently replaced by something else);
3. the per-user cache folder ``<cache>/tess`` holding an earlier download, where ``<cache>`` is
   ``$EMOSER_CACHE_DIR`` or else ``~/.cache/emoser``;
4. a download from the Borealis Dataverse into ``<cache>/tess`` -- when asked
   (``download=True``) or when running in Google Colab (``download=None``). ``EMOSER_TESS_URL``
   names another address serving the same archive (a mirror; the tests' loopback server), and
   ``EMOSER_TESS_ARCHIVE`` a file in which to keep the downloaded archive (the Colab copies'
   optional Google Drive cell sets it), so that a fresh machine installs from it instead of
   downloading again. Every recording is checked against the shipped checksums either way;
5. otherwise :class:`TessNotFoundError`, whose message lists the ways to get the data. When
   the automatic download of step 4 (``download=None``, in Colab) fails, this is the subclass
   :class:`TessDownloadFailed`, whose one-line message says why; the download is not tried
   again in the same process.

:func:`emoser.data.load_tess` adds one step after 5: with ``allow_standin=True`` it falls back to
the generated stand-in corpus (:mod:`emoser.data.standin`), loudly labelled as not being TESS.

Chapter: chapters/01_data.ipynb
"""

from __future__ import annotations

import os
from pathlib import Path

from ..common import in_colab
from .cache import ENV_CACHE_DIR, cache_dir
from .download import TESS_URL, DownloadError, download_tess

__all__ = ["ENV_TESS_DIR", "ENV_TESS_URL", "ENV_TESS_ARCHIVE", "TessNotFoundError",
           "TessDownloadFailed", "resolve_data_dir", "how_to_get_tess", "download_source"]

#: Environment variable naming a folder that holds TESS recordings.
ENV_TESS_DIR = "EMOSER_TESS_DIR"
#: Environment variable naming the address of the TESS archive (default: :data:`TESS_URL`).
ENV_TESS_URL = "EMOSER_TESS_URL"
#: Environment variable naming a file in which to keep the downloaded archive (e.g. on Drive).
ENV_TESS_ARCHIVE = "EMOSER_TESS_ARCHIVE"

# failed automatic downloads of this process: (target, url, archive) -> the one-line reason
_FAILED: dict[tuple[str, str, str | None], str] = {}


class TessNotFoundError(FileNotFoundError):
    """No TESS copy was found and no download was requested.

    Chapter: chapters/01_data.ipynb
    """


class TessDownloadFailed(TessNotFoundError):
    """The automatic download (in Colab) failed; the message is one line saying why.

    A :class:`TessNotFoundError`, so that :func:`emoser.data.load_tess` (and chapter 1's own
    fallback) go on with the stand-in corpus instead of stopping the chapter.

    Chapter: chapters/01_data.ipynb
    """


def how_to_get_tess() -> str:
    """Return the instructions printed when no TESS copy can be found.

    Chapter: chapters/01_data.ipynb
    """
    tess = cache_dir() / "tess"
    return (
        "No TESS recordings found. Any one of these gets them:\n"
        "  1. download once into the cache (about 270 MB, checksum-verified):\n"
        "       python -c \"import emoser.data as d; d.download_tess()\"\n"
        f"     (goes to {tess}; set {ENV_CACHE_DIR} to use another cache folder)\n"
        "  2. point emoser at a copy you already have (any folder layout works):\n"
        f"       export {ENV_TESS_DIR}=/path/to/TESS\n"
        "  3. or pass the folder explicitly:\n"
        "       emoser.data.load_tess(path='/path/to/TESS')\n"
        "TESS: Dupuis & Pichora-Fuller, University of Toronto, 2010, doi:10.5683/SP2/E8H2MF, "
        "licence CC BY-NC-ND 4.0."
    )


def download_source() -> tuple[str, str | None]:
    """Where a download comes from and where its archive is kept, from the environment.

    Returns:
        tuple[str, str | None]: ``$EMOSER_TESS_URL`` or :data:`TESS_URL`, and
        ``$EMOSER_TESS_ARCHIVE`` or None (the archive is then deleted once installed).

    Chapter: chapters/01_data.ipynb
    """
    url = os.environ.get(ENV_TESS_URL, "").strip() or TESS_URL
    return url, os.environ.get(ENV_TESS_ARCHIVE, "").strip() or None


def _nonempty_dir(path: Path) -> bool:
    try:
        return path.is_dir() and any(path.iterdir())
    except OSError:
        return False


def resolve_data_dir(path: str | os.PathLike | None = None, download: bool | None = None,
                     *, progress: bool = True) -> Path:
    """Find the folder holding the TESS recordings.

    Order: ``path``; else ``$EMOSER_TESS_DIR``; else ``<cache>/tess`` (``<cache>`` is
    ``$EMOSER_CACHE_DIR`` or ``~/.cache/emoser``) from an earlier download; else a download into
    ``<cache>/tess`` when ``download`` is True, or when it is None and we run in Colab (from
    ``$EMOSER_TESS_URL`` when set, keeping the archive at ``$EMOSER_TESS_ARCHIVE`` when set);
    else :class:`TessNotFoundError` with instructions.

    Args:
        path: explicit folder; must exist.
        download (bool | None): True downloads if nothing is found, False never downloads,
            None (default) downloads only in Colab.
        progress (bool): show a progress bar while downloading.

    Returns:
        Path: an existing folder (recordings may be nested anywhere below it).

    Raises:
        FileNotFoundError: ``path`` or ``$EMOSER_TESS_DIR`` names a missing folder.
        TessNotFoundError: nothing found and no download requested.
        TessDownloadFailed: the automatic download (``download=None``, in Colab) failed, now
            or earlier in this process (a TessNotFoundError, so callers fall back).
        DownloadError: the download asked for with ``download=True`` failed.

    Chapter: chapters/01_data.ipynb
    """
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_dir():
            raise FileNotFoundError(
                f"TESS folder {p} (given as path=) does not exist or is not a folder")
        return p
    env = os.environ.get(ENV_TESS_DIR, "").strip()
    if env:
        p = Path(env).expanduser()
        if not p.is_dir():
            raise FileNotFoundError(
                f"{ENV_TESS_DIR}={env} does not exist or is not a folder; "
                "fix or unset the variable")
        return p
    cached = cache_dir() / "tess"
    if _nonempty_dir(cached):
        return cached
    if not (download or (download is None and in_colab())):
        raise TessNotFoundError(how_to_get_tess())
    url, archive = download_source()
    if download:  # asked for: its error is the caller's to see
        return download_tess(cached, url, progress=progress, archive=archive)
    key = (str(cached), url, archive)
    if key in _FAILED:
        raise TessDownloadFailed(_FAILED[key])
    try:
        return download_tess(cached, url, progress=progress, archive=archive)
    except DownloadError as exc:
        _FAILED[key] = "downloading TESS failed: " + " ".join(str(exc).split())
        raise TessDownloadFailed(_FAILED[key]) from exc
