"""The chapters' exercises answer back, and their diagrams are described (issue 15, items 3-4).

Every exercise of the listed chapters states a difficulty and a time and has a folded solution;
each chapter has at least one coding exercise made of a scaffold with ``...``, a folded solution
cell (a form in Colab) and a checker cell whose stored verdict is "right"; every diagram cell
hides its code and carries alt text.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the chapters whose exercises follow this format (chapters 6-7 join when theirs do)
CHAPTERS = ["01_data", "02_framing", "03_lstm_cell", "04_lstm_layer", "05_audionet"]
EXERCISE = re.compile(r"^(?:\*\*Exercise (\d+)[:.]|### Exercise (\d+) \(coding\))", re.M)


def _cells(name: str) -> list[dict]:
    nb = json.loads((ROOT / "chapters" / f"{name}.ipynb").read_text(encoding="utf-8"))
    return [dict(c, text="".join(c["source"])) for c in nb["cells"]]


def _exercise_cells(cells: list[dict]) -> list[dict]:
    start = next(i for i, c in enumerate(cells)
                 if c["cell_type"] == "markdown" and c["text"].startswith("## Exercises"))
    return cells[start:]


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_exercise_has_difficulty_time_and_a_folded_solution(name):
    cells = _exercise_cells(_cells(name))
    markdown = "\n".join(c["text"] for c in cells if c["cell_type"] == "markdown")
    starts = [m for m in EXERCISE.finditer(markdown)]
    numbers = [int(m.group(1) or m.group(2)) for m in starts]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 4, (name, numbers)
    for k, m in enumerate(starts):
        end = starts[k + 1].start() if k + 1 < len(starts) else len(markdown)
        body = markdown[m.start():end]
        head = body.split("\n\n")[0] + "\n" + body.split("\n\n")[1]
        assert re.search(r"★{1,3}\s*·\s*about \d+ min", head), (
            f"{name}, exercise {numbers[k]}: no difficulty (★) and time in {head!r}")
        if m.group(1):  # a written exercise: its solution follows, folded
            assert re.search(r"^:::\{admonition\} Solution\n:class: dropdown\n", body, re.M), (
                f"{name}, exercise {numbers[k]}: no folded Solution admonition")
            solution = body.split(":class: dropdown", 1)[1].split("\n:::", 1)[0]
            assert len(solution.split()) >= 40, f"{name}, exercise {numbers[k]}: solution too short"


@pytest.mark.parametrize("name", CHAPTERS)
def test_coding_exercises_have_scaffold_solution_and_a_checker_that_says_right(name):
    cells = _exercise_cells(_cells(name))
    coding = [i for i, c in enumerate(cells)
              if c["cell_type"] == "markdown" and "(coding)" in c["text"].split("\n")[0]]
    assert coding, f"{name}: no coding exercise"
    for i in coding:
        scaffold, solution, checker = cells[i + 1:i + 4]
        assert scaffold["cell_type"] == "code" and re.search(r"=\s*\.\.\.|\[.*\.\.\.|\.\.\.\)|"
                                                             r"return \.\.\.", scaffold["text"])
        assert "hide-input" in solution["metadata"].get("tags", [])
        assert solution["metadata"].get("colab", {}).get("cellView") == "form"
        assert solution["text"].startswith("# @title Solution")
        defined = re.search(r"^def (\w+)\(", scaffold["text"], re.M).group(1)
        assert re.search(rf"^def {defined}\(", solution["text"], re.M), (name, defined)
        assert "...  #" not in solution["text"] and " = ...\n" not in solution["text"]
        # nbval compares the stored verdict (tools/tag_cells.py turns the comment into the tag)
        assert "nbval-check-output" in checker["metadata"].get("tags", []), (name, checker["id"])
        assert re.search(rf"emoser\.course\.exercises\.check_\w+\({defined}\)", checker["text"])
        out = "".join("".join(o.get("text", "")) for o in checker["outputs"])
        assert out.startswith("right: "), f"{name}: the checker's stored verdict is {out!r}"
        copy = ROOT / "colab" / "chapters" / f"{name}.ipynb"  # the Colab copy folds it too
        cells_of_copy = json.loads(copy.read_text(encoding="utf-8"))["cells"]
        same = next(c for c in cells_of_copy if c["id"] == solution["id"])
        assert same["metadata"].get("colab", {}).get("cellView") == "form", name


@pytest.mark.parametrize("name", CHAPTERS)
def test_the_numbers_of_the_solutions_are_glued_in_a_folded_cell(name):
    cells = _cells(name)
    markdown = "\n".join(c["text"] for c in _exercise_cells(cells) if c["cell_type"] == "markdown")
    quoted = set(re.findall(r"\{glue:text\}`(ex\d\w*?)(?::[^`]*)?`", markdown))
    last = cells[-1]
    assert last["text"].startswith("# The numbers quoted by the solutions")
    assert "hide-cell" in last["metadata"].get("tags", [])
    glued = set(re.findall(r'glue\((?:f)?"(ex\d\w*?)"', last["text"]))
    loops = re.findall(r'glue\(f"(ex\d\w*?)\{', last["text"])  # names built in a loop
    missing = {q for q in quoted - glued if not any(q.startswith(p) for p in loops)}
    assert not missing, f"{name}: solutions quote names the last cell does not glue: {missing}"


DIAGRAMS = {"02_framing": "draw_framing", "03_lstm_cell": "draw_lstm_cell",
            "04_lstm_layer": "draw_lstm_layer", "05_audionet": "draw_audionet"}


@pytest.mark.parametrize("name", sorted(DIAGRAMS))
def test_diagram_cells_hide_their_code_and_have_alt_text(name):
    cells = [c for c in _cells(name)
             if c["cell_type"] == "code" and re.search(r"emoser\.course\.draw_\w+\(", c["text"])]
    assert any(DIAGRAMS[name] in c["text"] for c in cells), f"{name}: no {DIAGRAMS[name]} cell"
    for c in cells:
        assert "remove-input" in c["metadata"].get("tags", []), name
        alt = c["metadata"].get("mystnb", {}).get("image", {}).get("alt", "")
        assert len(alt.split()) >= 20, f"{name}: diagram without a real alt text"
        assert any("image/png" in o.get("data", {}) for o in c["outputs"]), f"{name}: not drawn"


@pytest.mark.parametrize("name", CHAPTERS)
def test_solution_code_fits_its_box(name):
    """Code in a solution box is narrower than a code cell (check_book measures it in a browser)."""
    cells = _exercise_cells(_cells(name))
    for c in cells:
        if c["cell_type"] == "markdown":
            for block in re.findall(r"```python\n(.*?)```", c["text"], re.S):
                wide = [line for line in block.split("\n") if len(line) > 80]
                assert not wide, f"{name}: solution code line over 80 characters: {wide[0]!r}"
