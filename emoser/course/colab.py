"""Colab only: keep the TESS archive on the reader's Google Drive.

A fresh Colab runtime starts with an empty disk, so every chapter would download the 270 MB
archive again. The Colab copies of the chapters (``colab/chapters/``, made by
``tools/colab_notebooks.py``) offer one optional cell, off by default, that calls
:func:`keep_download_on_drive`: it mounts Drive and tells the data layer to keep the archive
there (``EMOSER_TESS_ARCHIVE``, see :mod:`emoser.data.config`), so that later runtimes install
from it. The archive is still checked against the published checksums each time; a broken one
is deleted and downloaded again, and a failed download falls back to the stand-in corpus with
one warning line (:func:`emoser.data.load_tess`).

Chapter: chapters/01_data.ipynb
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ..data.config import ENV_TESS_ARCHIVE

__all__ = ["DRIVE_MOUNT_POINT", "keep_download_on_drive"]

#: Where Colab mounts Google Drive (the folder ``MyDrive`` below it is the reader's Drive).
DRIVE_MOUNT_POINT = "/content/drive"


def keep_download_on_drive(folder: str = "emoser", mount_point: str = DRIVE_MOUNT_POINT
                           ) -> Path | None:
    """Mount Google Drive and keep the downloaded TESS archive in ``MyDrive/<folder>/tess.zip``.

    Sets ``$EMOSER_TESS_ARCHIVE`` for this runtime; the next chapter that loads data installs
    TESS from that file when it holds a complete archive, and downloads it there otherwise.

    Args:
        folder (str): folder of the reader's Drive that keeps the archive.
        mount_point (str): where Drive is mounted (Colab's default ``/content/drive``).

    Returns:
        Path | None: the archive's path, or None when Drive could not be mounted (then one
        warning line is printed and the chapter downloads as without this cell).

    Chapter: chapters/01_data.ipynb
    """
    try:
        from google.colab import drive

        drive.mount(mount_point)
        archive = Path(mount_point) / "MyDrive" / folder / "tess.zip"
        archive.parent.mkdir(parents=True, exist_ok=True)
    except Exception as exc:  # not in Colab, access refused, Drive unavailable: go on without
        print(f"WARNING: Google Drive not used ({type(exc).__name__}: {exc}); the data are "
              "downloaded into this runtime only.", file=sys.stderr)
        return None
    os.environ[ENV_TESS_ARCHIVE] = str(archive)
    state = ("found: TESS is installed from it, no download" if archive.is_file()
             else "not there yet: the first download is kept there")
    print(f"TESS archive on Drive: {archive} ({state})")
    return archive
