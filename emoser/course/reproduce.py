"""Does a chapter reproduce the numbers it stores? Its headline values, compared on re-execution.

A chapter's prose quotes glued values (:func:`emoser.course.glue`) from its stored outputs. When
the chapter runs again -- in CI under nbval, or by ``tools/execute_chapters.py`` -- its headline
cell calls :func:`check_reproduced`, which reads the value the *stored* notebook holds under the
same glue name and fails when the new run gives another one (beyond a stated tolerance). So a
change that moves a published number cannot pass unnoticed: it is accepted deliberately, by
re-executing with ``tools/execute_chapters.py --new-results`` (environment variable
:data:`ENV_NEW_RESULTS`).

The comparison is made on TESS only (the stored outputs come from TESS; on the stand-in corpus
the numbers differ by design) and only where the stored notebook is on disk (a Colab copy is a
lone file). Chapter: chapters/08_speed.ipynb ("Same seed, same numbers").
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

__all__ = ["ENV_NEW_RESULTS", "stored_glue", "check_reproduced", "Reproduction"]

#: Set to 1 when a chapter is re-executed to accept new headline values
#: (``tools/execute_chapters.py --new-results``).
ENV_NEW_RESULTS = "EMOSER_NEW_RESULTS"

GLUE_MIME = "application/papermill.record/text/plain"


def stored_glue(name: str, folder: str | os.PathLike = ".") -> tuple[str, Path] | None:
    """The text MyST-NB stored for glue ``name`` in a notebook of ``folder``, and that notebook.

    Every ``*.ipynb`` of ``folder`` is searched (glue names are unique across the chapters; a
    test checks it). A notebook that cannot be read as JSON raises ``ValueError`` naming it.

    Chapter: chapters/08_speed.ipynb
    """
    for path in sorted(Path(folder).glob("*.ipynb")):
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a readable notebook ({exc})") from None
        for cell in nb.get("cells", []):
            for out in cell.get("outputs", []):
                meta = out.get("metadata", {}).get("scrapbook", {})
                if meta.get("name") == name and GLUE_MIME in out.get("data", {}):
                    text = out["data"][GLUE_MIME]
                    return ("".join(text) if isinstance(text, list) else text), path
    return None


class Reproduction(str):
    """The one-line verdict of :func:`check_reproduced` (a ``str`` that prints as the line).

    Chapter: chapters/08_speed.ipynb
    """

    compared: bool


def check_reproduced(name: str, value: float, *, tolerance: float = 0.0, is_tess: bool,
                     what: str = "", folder: str | os.PathLike = ".") -> Reproduction:
    """Compare a headline value of this run with the one the stored chapter quotes.

    Args:
        name (str): the glue name the chapter stores the value under.
        value (float): this run's value.
        tolerance (float): the largest difference accepted (0: the same number; e.g. one test
            recording, ``100 / n_test`` points, where the engine may round differently).
        is_tess (bool): the run used TESS (``not data.is_standin``); otherwise nothing is
            compared.
        what (str): words for the message, e.g. ``"mean test accuracy (%)"``.
        folder (str | PathLike): where the stored chapters are (a chapter runs in ``chapters/``).

    Returns:
        Reproduction: one line saying what was compared (``.compared`` is False where
        nothing was).

    Raises:
        AssertionError: the value differs from the stored one by more than ``tolerance``, or
            is not finite, or the stored notebook has no such value (execute the chapter with
            ``--new-results`` to store one).

    Chapter: chapters/08_speed.ipynb
    """
    label = what or name
    value = float(value)
    if not math.isfinite(value):
        raise AssertionError(f"{label}: this run gave {value}")
    if not is_tess:
        return _verdict(f"{label}: {value:g} (stand-in corpus: not compared with the book's "
                        "TESS numbers)", False)
    if os.environ.get(ENV_NEW_RESULTS, "") == "1":
        return _verdict(f"{label}: {value:g} (new results accepted: {ENV_NEW_RESULTS}=1)", False)
    found = stored_glue(name, folder)
    if found is None:
        if not any(Path(folder).glob("*.ipynb")):
            return _verdict(f"{label}: {value:g} (no stored chapters here to compare with)",
                            False)
        raise AssertionError(f"{label}: no stored value '{name}' in {Path(folder)}/*.ipynb; "
                             "execute the chapter with tools/execute_chapters.py --new-results")
    text, path = found
    try:
        stored = float(text)
    except ValueError:
        raise AssertionError(f"{path.name}: stored '{name}' is not a number: {text!r}") from None
    gap = abs(value - stored)
    if not gap <= tolerance:
        raise AssertionError(f"{label}: this run gives {value:g}, the book ({path.name}) says "
                             f"{stored:g}: apart by {gap:g} > tolerance {tolerance:g}")
    how = "exactly" if gap == 0 else f"within {tolerance:g} (apart by {gap:.3g})"
    return _verdict(f"{label}: {value:g}, as the book says ({path.name}), {how}", True)


def _verdict(line: str, compared: bool) -> Reproduction:
    out = Reproduction(line)
    out.compared = compared
    return out
