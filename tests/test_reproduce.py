"""emoser.course.reproduce: a chapter's headline values against its stored notebook."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from emoser.course import reproduce
from emoser.course.reproduce import check_reproduced, stored_glue

ROOT = Path(__file__).resolve().parents[1]


def write_chapter(folder: Path, name: str, glued: dict) -> Path:
    outputs = [{"data": {reproduce.GLUE_MIME: repr(v)}, "output_type": "display_data",
                "metadata": {"scrapbook": {"mime_prefix": "application/papermill.record/",
                                           "name": k}}} for k, v in glued.items()]
    nb = {"cells": [{"cell_type": "code", "id": "a", "metadata": {}, "source": "glue()",
                     "execution_count": 1, "outputs": outputs}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = folder / name
    path.write_text(json.dumps(nb))
    return path


def test_stored_glue_finds_the_value_and_its_notebook(tmp_path):
    write_chapter(tmp_path, "01_a.ipynb", {"x": 1.5})
    path = write_chapter(tmp_path, "02_b.ipynb", {"acc": 99.5})
    assert stored_glue("acc", tmp_path) == ("99.5", path)
    assert stored_glue("missing", tmp_path) is None


def test_same_value_passes_and_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv(reproduce.ENV_NEW_RESULTS, raising=False)
    write_chapter(tmp_path, "07.ipynb", {"acc": 99.5})
    line = check_reproduced("acc", 99.5, is_tess=True, folder=tmp_path, what="mean accuracy")
    assert line.compared and "exactly" in line and "07.ipynb" in line
    near = check_reproduced("acc", 99.4, tolerance=0.2, is_tess=True, folder=tmp_path)
    assert near.compared and "within 0.2" in near


def test_a_different_value_fails_with_both_numbers(tmp_path, monkeypatch):
    monkeypatch.delenv(reproduce.ENV_NEW_RESULTS, raising=False)
    write_chapter(tmp_path, "07.ipynb", {"acc": 99.5})
    with pytest.raises(AssertionError, match=r"gives 98.3, the book \(07.ipynb\) says 99.5"):
        check_reproduced("acc", 98.3, tolerance=0.5, is_tess=True, folder=tmp_path)
    with pytest.raises(AssertionError, match="nan"):
        check_reproduced("acc", float("nan"), is_tess=False, folder=tmp_path)


def test_missing_stored_value_fails_unless_new_results_are_accepted(tmp_path, monkeypatch):
    monkeypatch.delenv(reproduce.ENV_NEW_RESULTS, raising=False)
    write_chapter(tmp_path, "07.ipynb", {"other": 1.0})
    with pytest.raises(AssertionError, match="--new-results"):
        check_reproduced("acc", 99.0, is_tess=True, folder=tmp_path)
    monkeypatch.setenv(reproduce.ENV_NEW_RESULTS, "1")
    line = check_reproduced("acc", 42.0, is_tess=True, folder=tmp_path)
    assert not line.compared and "accepted" in line


def test_stand_in_and_lone_notebooks_compare_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(reproduce.ENV_NEW_RESULTS, raising=False)
    write_chapter(tmp_path, "07.ipynb", {"acc": 99.5})
    assert not check_reproduced("acc", 50.0, is_tess=False, folder=tmp_path).compared
    empty = tmp_path / "colab"
    empty.mkdir()
    assert not check_reproduced("acc", 50.0, is_tess=True, folder=empty).compared


def test_execute_tool_sets_the_same_variable():
    spec = importlib.util.spec_from_file_location("execute_chapters",
                                                  ROOT / "tools" / "execute_chapters.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.ENV_NEW_RESULTS == reproduce.ENV_NEW_RESULTS


def test_glue_names_are_unique_across_chapters():
    seen: dict[str, str] = {}
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        names = {o["metadata"]["scrapbook"]["name"] for c in nb["cells"]
                 for o in c.get("outputs", []) if "scrapbook" in o.get("metadata", {})}
        for name in names:
            assert name not in seen, f"glue name {name!r} in {seen.get(name)} and {path.name}"
            seen[name] = path.name
    assert seen, "no glued values found"
