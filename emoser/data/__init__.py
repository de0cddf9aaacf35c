"""emoser.data: finding, checking, downloading and loading TESS (or its offline stand-in).

Where the data come from is decided in one place, :mod:`emoser.data.config`
(:func:`resolve_data_dir`; the cache folder is :mod:`emoser.data.cache`): an explicit path,
else ``$EMOSER_TESS_DIR``, else an earlier download
in ``<cache>/tess`` (``<cache>`` = ``$EMOSER_CACHE_DIR`` or ``~/.cache/emoser``), else a download
(when asked, or in Colab), else an error saying how to get the data. :func:`load_tess` may then
fall back to a generated stand-in corpus, always labelled "STAND-IN ..., not TESS".

Chapter: chapters/01_data.ipynb
"""

from ..common import DEFAULT_RATE, in_colab
from .audio import AudioLoadError, LoadReport, decoded_cache_dir, load_audio, load_waveforms
from .cache import ENV_CACHE_DIR, cache_dir
from .config import (
    ENV_TESS_ARCHIVE,
    ENV_TESS_DIR,
    ENV_TESS_URL,
    TessDownloadFailed,
    TessNotFoundError,
    how_to_get_tess,
    resolve_data_dir,
)
from .dataset import TessData, load_tess
from .download import (
    TESS_DOI,
    TESS_URL,
    ChecksumError,
    DownloadError,
    UnsafeArchiveError,
    download_tess,
)
from .standin import STANDIN_WORDS, make_standin_corpus, standin_info, standin_source
from .tess import (
    EMOTIONS,
    SPEAKERS,
    Catalog,
    Recording,
    find_recordings,
    normalize_emotion,
    normalize_speaker,
    parse_name,
)
from .verify import Checksum, VerifyReport, load_checksums, sha256_file, verify

__all__ = [
    # names and discovery
    "EMOTIONS", "SPEAKERS", "Recording", "Catalog", "parse_name", "normalize_emotion",
    "normalize_speaker", "find_recordings",
    # where data come from
    "DEFAULT_RATE", "ENV_TESS_DIR", "ENV_CACHE_DIR", "ENV_TESS_URL", "ENV_TESS_ARCHIVE",
    "TessNotFoundError", "TessDownloadFailed", "cache_dir",
    "in_colab", "how_to_get_tess", "resolve_data_dir",
    # loading
    "AudioLoadError", "LoadReport", "load_audio", "load_waveforms", "decoded_cache_dir",
    "TessData", "load_tess",
    # download and verification
    "TESS_DOI", "TESS_URL", "DownloadError", "UnsafeArchiveError", "ChecksumError",
    "download_tess", "Checksum", "VerifyReport", "load_checksums", "sha256_file", "verify",
    # offline stand-in
    "STANDIN_WORDS", "make_standin_corpus", "standin_info", "standin_source",
]
