"""Structural checks on the committed chapters (their execution is nbval's job)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from emoser.course import colab_setup_cell

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
AUDIO_MIMES = ("audio/wav", "audio/x-wav", "audio/mpeg", "audio/ogg")


def _repository_url() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return config["repository"]["url"]


def _toc_files() -> set[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = set()

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.add(node["file"])
            if "root" in node:
                files.add(node["root"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return files


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def test_there_are_chapters_and_all_are_in_the_toc():
    assert CHAPTERS, "no chapters found"
    listed = _toc_files()
    for path in CHAPTERS:
        assert f"chapters/{path.stem}" in listed, f"{path.name} is not in _toc.yml"
    for entry in listed:
        stem = ROOT / entry
        assert stem.with_suffix(".ipynb").exists() or stem.with_suffix(".md").exists(), entry


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_starts_with_the_colab_setup_cell_and_one_import_cell(path):
    nb = _load(path)
    code = _code_cells(nb)
    assert "".join(code[0]["source"]) == colab_setup_cell(_repository_url()), (
        f"{path.name}: the first code cell must be "
        "emoser.course.colab_setup_cell(<repository url>)")
    imports = [i for i, c in enumerate(code)
               if re.search(r"^\s*(import emoser|from emoser)", "".join(c["source"]), re.M)]
    assert imports == [1], (
        f"{path.name}: emoser must be imported in the second code cell only, found {imports}")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_was_executed_top_to_bottom(path):
    counts = [c.get("execution_count") for c in _code_cells(_load(path))]
    assert None not in counts, f"{path.name}: a code cell was never executed"
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name}: executed out of order: {counts}")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_stores_no_audio_errors_or_absolute_paths(path):
    """No error output, no path of this machine, and no audio but an allowed TESS player
    (whose payload tests/test_listen.py checks byte for byte)."""
    nb = _load(path)
    text = path.read_text()
    for cell in _code_cells(nb):
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", f"{path.name}: stored error output"
            data = out.get("data", {})
            assert not any(m in data for m in AUDIO_MIMES), f"{path.name}: stored audio output"
            html = "".join(data.get("text/html", []))
            if "<audio" in html:
                assert 'class="emoser-listen"' in html and html.count("<audio") == html.count(
                    "data:audio/"), f"{path.name}: stored audio player that is not a TESS clip"
    for pattern in ("/work/", "/root/", "/home/", "shared/data", "C:\\\\"):
        assert pattern not in text, f"{path.name}: contains an absolute or machine path ({pattern})"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_has_one_title_and_learning_objectives(path):
    nb = _load(path)
    markdown = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    titles = re.findall(r"^# ", markdown, re.M)
    assert len(titles) == 1, f"{path.name}: expected exactly one H1, found {len(titles)}"
    assert re.search(r"learning objectives|you will learn", markdown, re.I), path.name
