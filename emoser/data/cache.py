"""The per-user cache folder of emoser: downloads, the stand-in corpus, decoded audio, kernels.

Chapter: chapters/01_data.ipynb
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_CACHE_DIR", "cache_dir"]

#: Environment variable overriding the per-user cache folder (default ``~/.cache/emoser``).
ENV_CACHE_DIR = "EMOSER_CACHE_DIR"


def cache_dir() -> Path:
    """Return the per-user cache folder (not created here).

    ``$EMOSER_CACHE_DIR`` if set, else ``~/.cache/emoser``. Downloads go to ``<cache>/tess``,
    the stand-in corpus to ``<cache>/standin``, decoded-audio caches to ``<cache>/decoded``.

    Returns:
        Path: the cache folder.

    Chapter: chapters/01_data.ipynb
    """
    env = os.environ.get(ENV_CACHE_DIR, "").strip()
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "emoser"
