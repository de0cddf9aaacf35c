"""Helpers for the chapters themselves: the setup cell, glue and audio players.

Every chapter starts with the same two cells: one that installs ``emoser`` when the
notebook runs in Colab (its text is :data:`COLAB_SETUP_CELL`, rendered from the
repository URL in ``_config.yml``) and one that imports ``emoser`` and calls
:func:`setup`. Chapter: chapters/intro.md.
"""
from __future__ import annotations

import base64
import hashlib
import html
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ..common import in_colab
from ..data.cache import cache_dir
from ..data.config import ENV_TESS_DIR
from ..data.verify import load_checksums
from ..training.runtime import describe_device, device, set_seed, training_threads

__all__ = ["in_colab", "setup", "glue", "listen", "play_recording", "play_recordings",
           "embeddable_checksums",
           "EMBEDDABLE_TESS", "MAX_EMBEDDED", "TESS_CREDIT", "colab_setup_cell", "redact_paths"]

#: The only TESS recordings a stored notebook may hold, byte for byte as published (CC BY-NC-ND
#: 4.0 allows verbatim, attributed, non-commercial sharing; the book embeds at most four):
#: the word "dog", happy and sad, by the younger speaker (chapter 1) and the older (chapter 10).
EMBEDDABLE_TESS = ("YAF_dog_happy.wav", "YAF_dog_sad.wav", "OAF_dog_happy.wav", "OAF_dog_sad.wav")
MAX_EMBEDDED = 4
#: What every player of a TESS recording shows under it.
TESS_CREDIT = ("Toronto Emotional Speech Set (TESS), Kate Dupuis and M. Kathleen Pichora-Fuller, "
               "University of Toronto, 2010, doi:10.5683/SP2/E8H2MF. Licence: CC BY-NC-ND 4.0 "
               "(https://creativecommons.org/licenses/by-nc-nd/4.0/). The published file, "
               "unchanged.")


def colab_setup_cell(repository_url: str) -> str:
    """Return the text of the first code cell of every chapter.

    The cell installs ``emoser`` from ``repository_url`` in Colab only; locally it
    does nothing, so the same notebook runs unchanged in both places. A test
    checks that every chapter starts with exactly this text for the URL in
    ``_config.yml`` (the one place where the URL is set).

    Chapter: chapters/intro.md
    """
    return (
        "# Colab only: install emoser (this course's package) with its dependencies.\n"
        "# Locally, install it once with the README's set-up command instead.\n"
        "import sys\n"
        "\n"
        "if \"google.colab\" in sys.modules:\n"
        "    import subprocess\n"
        "\n"
        f"    url = \"git+{repository_url}\"\n"
        "    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", url],"
        " check=True)"
    )


def setup(seed: int = 0, threads: int | None = None, quiet: bool = False):
    """Seed every generator, pick the device and configure figures for a chapter.

    Args:
        seed (int): seed for Python, NumPy and PyTorch (default 0).
        threads (int | None): number of CPU threads for PyTorch; None leaves the
            default (or ``EMOSER_THREADS`` when set).
        quiet (bool): do not print the device line.

    Returns:
        torch.device: CUDA when available, else CPU (``EMOSER_DEVICE`` overrides).

    Chapter: chapters/01_data.ipynb
    """
    import matplotlib
    import torch

    threads = threads or int(os.environ.get("EMOSER_THREADS", "0")) or None
    if threads:
        torch.set_num_threads(threads)
    set_seed(seed)
    dev = device()
    matplotlib.rcParams.update({"figure.dpi": 100, "figure.figsize": (8, 3.5),
                                "axes.grid": True, "grid.alpha": 0.3})
    if not quiet:
        print(f"seed {seed}; device: {describe_device(dev)}")
        if dev.type != "cuda":
            n = training_threads()
            print(f"No GPU found: everything runs on the CPU. Training uses {n} thread"
                  f"{'s' if n != 1 else ''} on any\nmachine, so your numbers match the book's "
                  "(chapter 8: what still differs).\nIn Colab: Runtime > Change runtime "
                  "type > GPU.")
    return dev


def glue(name: str, value, display: bool = False):
    """Store ``value`` under ``name`` so the chapter's prose can quote it.

    Uses MyST-NB's ``glue`` when it is installed (building the book); in Colab or
    a bare Jupyter it only returns the value, so chapters run without MyST-NB.

    Chapter: chapters/intro.md
    """
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        # NumPy 2 scalars print as np.float64(...), which MyST-NB cannot format with a
        # spec such as {glue:text}`name:.1f`: glue the plain Python number instead.
        value = value.item()
    try:
        from myst_nb import glue as _glue
    except ImportError:  # pragma: no cover - depends on the environment
        return value
    _glue(name, value, display=display)
    return value


def listen(wave, rate: int):
    """Return an audio player for a waveform (any samples: a stand-in recording, your voice).

    The player holds a re-encoded copy of the samples, so ``tools/execute_chapters.py``
    removes it before a notebook is saved; a TESS recording the book may keep is played with
    :func:`play_recording` instead.

    Chapter: chapters/01_data.ipynb
    """
    from IPython.display import Audio

    return Audio(wave, rate=rate)


def embeddable_checksums() -> dict[str, str]:
    """``{file name: SHA-256}`` of the TESS files a stored notebook may embed.

    The digests are the published ones (``emoser/data/tess-sha256.tsv``); at most
    :data:`MAX_EMBEDDED` files.

    Chapter: chapters/01_data.ipynb
    """
    published = load_checksums()
    return {name: published[name].sha256 for name in EMBEDDABLE_TESS[:MAX_EMBEDDED]}


def _player_html(path, label: str = "") -> str:
    path = Path(path)
    payload = path.read_bytes()
    digest = hashlib.sha256(payload).hexdigest()
    published = load_checksums().get(path.name)
    if published is not None and published.sha256 == digest:
        credit = f"{path.name}: {TESS_CREDIT}"
    else:
        credit = f"{path.name}: not a published TESS file (the stand-in corpus, or a changed copy)."
    mime = "audio/x-aiff" if payload[:4] == b"FORM" else "audio/wav"
    src = f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"
    caption = html.escape(f"{label} — {credit}" if label else credit)
    return (f'<figure class="emoser-listen"><audio controls preload="none" src="{src}"></audio>'
            f"<figcaption><small>{caption}</small></figcaption></figure>")


def play_recording(path, label: str = ""):
    """Return a player for one recording file with its source and licence written under it.

    The player embeds the file's own bytes, unchanged (no decoding, resampling or
    re-encoding). A file whose name and SHA-256 match a published TESS file is credited to
    TESS (:data:`TESS_CREDIT`); any other file, a stand-in recording say, is labelled as not
    TESS. ``tools/execute_chapters.py`` keeps such a player in a saved notebook only when the
    file is one of :data:`EMBEDDABLE_TESS`.

    Args:
        path: a recording (WAV or AIFF; the browser must be able to play it).
        label (str): shown before the credit, e.g. ``'happy: "say the word dog"'``.

    Returns:
        IPython.display.HTML: an ``<audio>`` player and its caption.

    Chapter: chapters/01_data.ipynb
    """
    return play_recordings([(path, label)])


def play_recordings(recordings):
    """Players for several recordings, one under the other: ``[(path, label), ...]``.

    See :func:`play_recording`; one output holds them all.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    from IPython.display import HTML

    return HTML("".join(_player_html(path, label) for path, label in recordings))


def redact_paths(text: str, extra: Mapping[str, str] | None = None) -> str:
    """Replace this machine's folders in ``text`` by placeholders, so it can be printed in a book.

    Replaced (longest first, each also in its fully resolved form): the folder named by
    ``$EMOSER_TESS_DIR`` by ``$EMOSER_TESS_DIR``, the emoser cache folder by ``<cache>``, the
    temporary folder by ``<tmp>`` and the home folder by ``~``.

    Args:
        text (str): any text, e.g. ``data.summary()`` or an error message.
        extra (Mapping[str, str] | None): more ``{folder: placeholder}`` pairs.

    Returns:
        str: the text with those folders replaced.

    Example:
        >>> redact_paths(f"TESS at {os.environ['EMOSER_TESS_DIR']}")  # doctest: +SKIP
        'TESS at $EMOSER_TESS_DIR'

    Chapter: chapters/01_data.ipynb
    """
    pairs: dict[str, str] = {}

    def add(folder, placeholder: str) -> None:
        if not folder:
            return
        p = Path(folder).expanduser()
        for form in {str(p), str(p.resolve())}:
            if len(form) > 1:  # never replace a bare "/"
                pairs.setdefault(form.rstrip(os.sep), placeholder)

    add(os.environ.get(ENV_TESS_DIR, "").strip(), f"${ENV_TESS_DIR}")
    add(cache_dir(), "<cache>")
    add(tempfile.gettempdir(), "<tmp>")
    add(Path.home(), "~")
    for folder, placeholder in (extra or {}).items():
        add(folder, placeholder)
    for folder in sorted(pairs, key=len, reverse=True):
        text = text.replace(folder, pairs[folder])
    return text
