"""tools/tag_cells.py: the chapters show no bookkeeping, and the rules do what they say."""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import tag_cells  # noqa: E402

CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


def _glue_output(name: str, value: str) -> dict:
    return {"data": {"application/papermill.record/text/plain": value},
            "metadata": {"scrapbook": {"mime_prefix": "application/papermill.record/",
                                       "name": name}},
            "output_type": "display_data"}


def _code(cid: str, source: str, outputs=(), count=None, tags=()) -> dict:
    cell = {"cell_type": "code", "execution_count": count, "id": cid, "metadata": {},
            "outputs": list(outputs), "source": source.splitlines(keepends=True)}
    if tags:
        cell["metadata"]["tags"] = list(tags)
    return cell


def _nb(*cells) -> dict:
    return {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _src(cell: dict) -> str:
    return "".join(cell["source"])


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_shows_no_bookkeeping_and_no_stray_value(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    problems = tag_cells.check(nb, path.name)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_is_as_the_tool_leaves_it(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    report = tag_cells.process(copy.deepcopy(nb), path.name)
    assert not report.changes, (f"{path.name}: run python tools/tag_cells.py --write "
                                f"({report.changes[:3]})")


def test_a_mixed_cell_is_split_and_its_outputs_follow_the_code():
    nb = _nb(_code("a", "import x\n", count=1),
             _code("b", "# NBVAL_CHECK_OUTPUT\nvalue = 2 * 21\nshare = value / 100\n"
                        "# the answer, checked\nassert value == 42\n"
                        "print('value', value)\nglue('v', share)\n",
                   outputs=[{"name": "stdout", "output_type": "stream", "text": ["value 42\n"]},
                            _glue_output("v", "0.42"),
                            {"data": {"text/plain": ["0.42"]}, "execution_count": 2,
                             "metadata": {}, "output_type": "execute_result"}], count=2),
             _code("c", "print(value)\n", count=3))
    report = tag_cells.process(nb, "x.ipynb")
    kept, book = nb["cells"][1], nb["cells"][2]
    assert _src(kept) == "value = 2 * 21\nshare = value / 100\nprint('value', value)"
    assert kept["metadata"]["tags"] == ["nbval-check-output"]
    assert [o["output_type"] for o in kept["outputs"]] == ["stream"]
    # nbval compares this cell: its kernel would show the value despite a ';', so it is assigned
    assert _src(book) == "# the answer, checked\nassert value == 42\n_ = glue('v', share)"
    assert book["id"] == "b-book" and book["metadata"]["tags"] == ["remove-cell",
                                                                    "nbval-check-output"]
    assert [o["output_type"] for o in book["outputs"]] == ["display_data"]  # value dropped
    assert [c["execution_count"] for c in nb["cells"]] == [1, 2, 3, 4]
    assert report.problems == [] and report.changes
    again = tag_cells.process(nb, "x.ipynb")
    assert again.changes == []  # idempotent


def test_a_glue_only_cell_is_removed_and_ends_quietly():
    nb = _nb(_code("a", "m = 3 * 2\nglue('m', m)\n", count=1,
                   outputs=[_glue_output("m", "6"),
                            {"data": {"text/plain": ["6"]}, "execution_count": 1,
                             "metadata": {}, "output_type": "execute_result"}]))
    tag_cells.process(nb, "x.ipynb")
    cell = nb["cells"][0]
    assert cell["metadata"]["tags"] == ["remove-cell"]
    assert _src(cell) == "m = 3 * 2\nglue('m', m);"
    assert [o["output_type"] for o in cell["outputs"]] == ["display_data"]


def test_a_check_that_prints_keeps_its_output_visible():
    nb = _nb(_code("a", "if flag:\n    assert x\nassert y\n", count=1,
                   outputs=[{"name": "stdout", "output_type": "stream", "text": ["ok\n"]}]))
    tag_cells.process(nb, "x.ipynb")
    assert nb["cells"][0]["metadata"]["tags"] == ["remove-input"]


def test_checks_that_cannot_move_are_reported_not_moved():
    nested = "for v in values:\n    print(v)\n    assert v > 0\n"
    rebinds = "assert x > 0\nx = 5\nprint(x)\n"
    nb = _nb(_code("n", nested, count=1), _code("r", rebinds, count=2))
    report = tag_cells.process(nb, "x.ipynb")
    assert [_src(c) for c in nb["cells"]] == [nested, rebinds]  # untouched
    assert any("n: assert/glue nested" in p for p in report.problems)
    assert any("r: bookkeeping cannot be moved" in p and "rebinds" in p
               for p in report.problems)


def test_a_helper_used_by_later_code_stays_visible():
    nb = _nb(_code("a", "ratio = 1 / 3\nglue('r', ratio)\nprint('hello')\n", count=1),
             _code("b", "print(ratio)\n", count=2))
    tag_cells.process(nb, "x.ipynb")
    assert _src(nb["cells"][0]) == "ratio = 1 / 3\nprint('hello')"
    assert _src(nb["cells"][1]) == "glue('r', ratio);" and nb["cells"][2]["id"] == "b"


def test_a_bare_number_after_a_visible_cell_is_a_stray_value():
    cell = _code("a", "len(items)\n", count=1,
                 outputs=[{"data": {"text/plain": ["1346"]}, "execution_count": 1,
                           "metadata": {}, "output_type": "execute_result"}])
    problems = tag_cells.check(_nb(cell), "x.ipynb")
    assert problems == ["x.ipynb cell a: stray value 1346 printed after the cell (end the last "
                        "line with ';', assign it, or print a labelled line)"]
    tag_cells.VALUE_IS_THE_POINT["x.ipynb"] = {"a"}
    try:
        assert tag_cells.check(_nb(cell), "x.ipynb") == []
    finally:
        del tag_cells.VALUE_IS_THE_POINT["x.ipynb"]


def test_a_visible_nbval_marker_is_reported():
    nb = _nb(_code("a", "# NBVAL_CHECK_OUTPUT\nprint(1)\n", count=1))
    assert tag_cells.check(nb, "x.ipynb") == [
        "x.ipynb cell a: visible nbval marker '# NBVAL_CHECK_OUTPUT'"]


def test_code_before_visible_code_keeps_its_place_and_glued_assignments_unwrap():
    nb = _nb(_code("a", "start = now()\nrun = train()\nseconds = glue('s', now() - start)\n"
                        "print(seconds)\nassert run.ok\nratio = seconds / 2\n"
                        "glue('r', ratio)\n", count=1))
    tag_cells.process(nb, "x.ipynb")
    assert _src(nb["cells"][0]) == ("start = now()\nrun = train()\nseconds = now() - start\n"
                                    "print(seconds)")  # the training run stays before the timer
    assert _src(nb["cells"][1]) == ("glue('s', seconds)\nassert run.ok\nratio = seconds / 2\n"
                                    "glue('r', ratio);")  # a trailing helper moves
    assert tag_cells.check(nb, "x.ipynb") == []


def test_check_flags_a_compared_cell_that_relies_on_a_semicolon():
    """nbval's kernel shows a cell's value despite a trailing ';' (chapter 6's checkers did)."""
    nb = _nb(_code("a", "check(x);\n", count=1))
    nb["cells"][0]["metadata"]["tags"] = ["nbval-check-output"]
    assert any("despite the ';'" in p for p in tag_cells.check(nb, "x.ipynb"))
