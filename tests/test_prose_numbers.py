"""Numbers in the chapters' prose come from their outputs (glue), not from a keyboard.

Issue 15, item 7: a measured number typed into the text goes stale the day the code changes. This
review test reads every Markdown cell, removes what is glued (``{glue:text}`...```), code spans and
math, and flags any percentage left that is not a *stated constant* of the course: chance levels,
split sizes, thresholds the text sets, the original exercise's published 89.17 %. A new measured
number in prose must be glued instead (or, if it truly is a constant, added here with a reason).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))

#: Percentages the text may state: they are settings, targets or definitions, not measurements.
CONSTANTS = {
    "50": "chance for two classes",
    "1": "the few recordings of a guess (chapter 12)",
    "20": "a validation share of the training set",
    "30": "the test share of the split",
    "60": "a threshold an exercise proposes; published MFCC results across voices (50-60 %)",
    "70": "the training share of the split",
    "80": "the training share of chapter 6's split",
    "77": "published: a log-mel 2-D CNN, seven emotions across TESS's actresses (chapter 10)",
    "85": "the stand-in check's floor; issue 17's target for four emotions across voices",
    "89": "published: wav2vec2 models, seven emotions across TESS's actresses (84-89 %)",
    "89.17": "the original exercise's published accuracy",
    "90": "a threshold the text sets (first epoch at 90 %)",
    "95": "the stand-in check's mean",
    "97": "issue 19's bar for every seed",
    "99": "the course's target for happy vs sad",
    "100": "perfect (the ceiling, published random-split results)",
}

NUMBER = re.compile(r"(?<![\w.`{])(\d+(?:\.\d+)?)\s?%")


def typed_percentages(text: str) -> list[tuple[str, str]]:
    """``(number, context)`` for every percentage typed in Markdown ``text``."""
    text = re.sub(r"\{glue:[a-z]+\}`[^`]*`", "G", text)
    text = re.sub(r"```.*?```", "C", text, flags=re.S)
    text = re.sub(r"`[^`]*`", "C", text)
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$", "M", text, flags=re.S)
    return [(m.group(1), " ".join(text[max(0, m.start() - 60):m.end()].split()))
            for m in NUMBER.finditer(text)]


def test_the_review_finds_a_typed_number_and_ignores_glue_code_and_math():
    text = ("The mean is {glue:text}`acc:.1f` % and `x = 3 %`; $5 \\%$. We measured 87.5 % "
            "on a guess of 50 %.")
    assert [n for n, _ in typed_percentages(text)] == ["87.5", "50"]


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_no_measured_number_is_typed_into_the_prose(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    typed = [(n, ctx) for cell in nb["cells"] if cell["cell_type"] == "markdown"
             for n, ctx in typed_percentages("".join(cell["source"])) if n not in CONSTANTS]
    assert not typed, (f"{path.name}: percentages typed into the prose (glue them, or add a "
                       f"stated constant to CONSTANTS): {typed}")
