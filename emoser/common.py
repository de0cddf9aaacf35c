"""What every layer of emoser shares: the working rate, the frame length, and three helpers.

This is the lowest module of the package: it imports nothing from emoser, and every
other module may import it.

Chapter: chapters/intro.md
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import numpy as np

__all__ = ["DEFAULT_RATE", "DEFAULT_FRAME_LENGTH", "in_colab", "as_numpy", "format_table"]

#: TESS's sampling rate (Hz); recordings at other rates are resampled to it.
DEFAULT_RATE = 24414

#: Samples per frame of the course's model (500 samples: about 20 ms at 24414 Hz).
DEFAULT_FRAME_LENGTH = 500


def in_colab() -> bool:
    """Return True when running inside Google Colab.

    Chapter: chapters/01_data.ipynb
    """
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def as_numpy(x) -> np.ndarray:
    """An array, a list or a tensor (also on a GPU, also with a gradient) as a NumPy array.

    Chapter: chapters/02_framing.ipynb
    """
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def format_table(rows: Sequence[Sequence], headers: Sequence[str], align: str | None = None) -> str:
    """Rows as an aligned plain-text table (for printing in a chapter).

    Args:
        rows: the rows, each a sequence of values (converted with ``str``).
        headers: one header per column.
        align (str | None): one letter per column, ``"l"`` (left) or ``"r"`` (right);
            None: columns whose values are all numbers right, the others left.

    Returns:
        str: a header line, a rule, and one line per row; columns whose values are all
        numbers are right-aligned.

    Chapter: chapters/05_audionet.ipynb
    """
    headers = [str(h) for h in headers]
    cells = [[str(v) for v in row] for row in rows]
    for k, row in enumerate(cells):
        if len(row) != len(headers):
            raise ValueError(f"row {k} has {len(row)} values for {len(headers)} headers")
    if align is None:
        right = [bool(rows) and all(_is_number(row[j]) for row in rows)
                 for j in range(len(headers))]
    elif len(align) != len(headers) or set(align) - {"l", "r"}:
        raise ValueError(f"align needs one of 'l'/'r' per column ({len(headers)}), got {align!r}")
    else:
        right = [a == "r" for a in align]
    widths = [max([len(headers[j])] + [len(row[j]) for row in cells])
              for j in range(len(headers))]

    def line(values):
        return "  ".join(v.rjust(w) if r else v.ljust(w)
                         for v, w, r in zip(values, widths, right)).rstrip()

    return "\n".join([line(headers), "  ".join("-" * w for w in widths)]
                     + [line(r) for r in cells])
