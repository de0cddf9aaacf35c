"""What each ingredient adds across voices: the committed ablation ladder of issue 17.

``benchmarks/cross_speaker_recipes.py`` trains a ladder of recipes (each rung adds one
ingredient to a log-mel front-end and the hand-built LSTM) on one actress and tests on the
other, for five seeds, both directions and two tasks, and writes
``emoser/course/results/cross-speaker-recipes.json`` (shipped with the package, so a chapter
opened in Colab finds it too). Training all of it takes longer than a chapter may, so chapter
10 reads the file; this module reads it and lays it out beside the baselines of
``speaker-baselines.json``.

Chapter: chapters/10_speaker_independent.ipynb
"""
from __future__ import annotations

import json
from importlib import resources

from ..common import format_table

__all__ = ["LADDER_FILE", "BASELINES_FILE", "DIRECTIONS", "load_result", "ladder_rows",
           "ladder_table", "baseline_cell"]

#: The ladder's results inside the package.
LADDER_FILE = "results/cross-speaker-recipes.json"
#: The classic baselines' results inside the package (``benchmarks/speaker_baselines.py``).
BASELINES_FILE = "results/speaker-baselines.json"
#: The two directions, as the files name them.
DIRECTIONS = ("YAF->OAF", "OAF->YAF")


def load_result(name: str = LADDER_FILE) -> dict:
    """A results file of the package, parsed.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    return json.loads(resources.files("emoser.course").joinpath(name).read_text())


def ladder_rows(ladder: dict, task: str) -> list[dict]:
    """One row per rung of ``task`` (``"happy_sad"`` or ``"four_emotions"``), in ladder order:
    ``{"rung", "adds", direction: {"mean", "std", "min", "ensemble", "seconds"}}`` in percent
    (``seconds``: mean training time per seed).

    Raises:
        KeyError: the file lacks a rung of its ladder for ``task``.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    rows = []
    for step in ladder["ladder"]:
        rung = step["rung"]
        try:
            cell = ladder["rungs"][rung][task]
        except KeyError:
            raise KeyError(f"the ladder has no results for rung {rung!r} on {task!r}") from None
        row = {"rung": rung, "adds": step["adds"]}
        for d in DIRECTIONS:
            r = cell["results"][d]
            row[d] = {"mean": 100 * r["mean"], "std": 100 * r["std"], "min": 100 * r["min"],
                      "ensemble": 100 * r["ensemble"]["accuracy"],
                      "seconds": sum(r["seconds"]) / len(r["seconds"])}
        rows.append(row)
    return rows


def baseline_cell(baselines: dict, task: str, direction: str, normalization: str,
                  which: str = "mfcc") -> float:
    """Mean test accuracy (%) of a classic baseline from ``speaker-baselines.json``.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    return 100 * baselines["tasks"][task]["results"][direction][normalization][which]["mean"]


def ladder_table(ladder: dict, baselines: dict, task: str) -> str:
    """The ladder of ``task`` as a text table (mean ± std over seeds, min, the seeds' ensemble)
    with the MFCC baseline (both normalizations) underneath.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    rows = []
    for row in ladder_rows(ladder, task):
        rows.append([row["rung"]] + [
            f"{row[d]['mean']:.1f} ± {row[d]['std']:.1f} (min {row[d]['min']:.1f}, "
            f"ens. {row[d]['ensemble']:.1f})" for d in DIRECTIONS])
    for how in ("per_speaker", "global"):
        rows.append([f"MFCC + LR, {how.replace('_', ' ')}"] + [
            f"{baseline_cell(baselines, task, d, how):.1f}" for d in DIRECTIONS])
    return format_table(rows, ["recipe (each row adds to the one above)"]
                        + [d.replace("->", " -> ") + " (%)" for d in DIRECTIONS])
