"""The Colab copies of the chapters (tools/colab_notebooks.py) and a simulated Colab run.

A reader who presses a chapter's Colab button gets ``colab/chapters/NN_name.ipynb`` from GitHub:
a copy of the chapter whose Markdown Colab can render (glued numbers filled in, admonitions as
blockquotes). The tests here keep the copies in step with the chapters, fail on any MyST-only
construct left in them, and (marked ``colab``) run chapters 1 and 6 as Colab would: a fresh
virtual environment, ``google.colab`` importable, emoser installed by the setup cell from a git
URL, no TESS, the download tried against a loopback server. See chapters/intro.md.
"""
import importlib.util
import json
import re
import shutil
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("_tool_colab_notebooks",
                                               ROOT / "tools" / "colab_notebooks.py")
cn = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cn)

# --------------------------------------------------------------------------- the copies

def test_copies_are_in_step_with_the_chapters_and_hold_no_myst(capsys):
    assert cn.main(["--check"]) == 0, capsys.readouterr().err


def test_every_chapter_has_a_copy_at_the_launch_buttons_path():
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert config["repository"]["path_to_book"] == cn.COLAB_DIR
    assert "colab" in config["exclude_patterns"]  # the copies are not pages of the book
    for chapter in sorted((ROOT / "chapters").glob("*.ipynb")):
        copy = ROOT / cn.COLAB_DIR / "chapters" / chapter.name
        nb = json.loads(copy.read_text(encoding="utf-8"))
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        chapter_code = [c for c in json.loads(chapter.read_text(encoding="utf-8"))["cells"]
                        if c["cell_type"] == "code"]
        # the chapter's code, unchanged and without outputs, plus the one optional Drive cell
        assert [c["source"] for c in code if c["id"] != "colab-drive"] == [
            c["source"] for c in chapter_code]
        assert all(not c["outputs"] and c["execution_count"] is None for c in code)
        drive = next(c for c in code if c["id"] == "colab-drive")
        assert "KEEP_ON_DRIVE = False" in "".join(drive["source"])
        assert code.index(drive) == 1  # right after the setup cell that installs emoser


def test_myst_only_patterns_catch_what_colab_shows_raw():
    raw = ["Accuracy {glue:text}`ch7_mean:.2f` %", "see {numref}`fig-x`", "{ref}`a <b>`",
           "```{admonition} Title\n:class: dropdown\nx\n```", ":::{note}\nx\n:::",
           "(my-label)=\n# Heading", "% a comment", "$$ x $$ (eq-1)", "> :class: tip"]
    for text in raw:
        nb = {"cells": [{"cell_type": "markdown", "id": "x", "source": [text]}]}
        assert cn.myst_leftovers(nb), text
    fine = ["Accuracy 99.67 %", "`{glue:text}` is the role", "```python\nx = 1\n```",
            "> **Note**\n>\n> text", "$$\nx^2\n$$", "a [link](https://x.org/a.ipynb)"]
    for text in fine[:1] + fine[2:]:
        nb = {"cells": [{"cell_type": "markdown", "id": "x", "source": [text]}]}
        assert not cn.myst_leftovers(nb), text


@pytest.mark.parametrize("text, spec", [("99.66666666666667", ".2f"), ("120", ""),
                                        ("120", "d"), ("'cpu (2 threads)'", "s"),
                                        ("0.4564", ".1%"), ("18.4293", ".0f"), ("3", ".1f")])
def test_glue_values_are_formatted_as_myst_nb_formats_them(text, spec):
    myst_nb = pytest.importorskip("myst_nb.core.variables")
    assert cn.format_plain_text(text, spec) == myst_nb.format_plain_text(text, spec)


def _glue_output(name, plain=None, markdown=None):
    prefix = "application/papermill.record/"
    data = {}
    if plain is not None:
        data[prefix + "text/plain"] = plain
    if markdown is not None:
        data[prefix + "text/markdown"] = markdown
    return {"output_type": "display_data", "data": data,
            "metadata": {"scrapbook": {"name": name, "mime_prefix": prefix}}}


def _book(tmp_path, markdown, outputs):
    """A one-chapter repository: _config.yml as ours, chapters/01_x.ipynb with ``markdown``."""
    (tmp_path / "chapters").mkdir(exist_ok=True)
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    nb = {"cells": [
        {"cell_type": "code", "id": "setup", "metadata": {}, "execution_count": 1,
         "outputs": [], "source": ["print('setup')"]},
        {"cell_type": "code", "id": "glue", "metadata": {"tags": ["remove-cell"]},
         "execution_count": 2, "outputs": outputs, "source": ["glue(...)"]},
        {"cell_type": "markdown", "id": "text", "metadata": {}, "source": [markdown]},
        {"cell_type": "markdown", "id": "later", "metadata": {},
         "source": ["(sec-later)=\n## Later section\n"]}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "chapters" / "01_x.ipynb"
    path.write_text(json.dumps(nb))
    return path


def test_converter_fills_glue_and_turns_directives_into_markdown(tmp_path):
    text = "\n".join([
        "Mean **{glue:text}`acc:.2f` %** on {glue}`dev`, {glue:text}`n` recordings,",
        "top: {glue:md}`top`; see {numref}`sec-later`, {ref}`that part <sec-later>`,",
        "{doc}`02_y`, {eq}`eq-loss`, {cite}`smith2020,doe2021` and `{glue:text}` in code.",
        "",
        "```{admonition} A defect of the original",
        ":class: warning",
        "",
        "The statistics came from the test set: $\\mu$ and",
        "",
        "$$",
        "x^2",
        "$$ (eq-loss)",
        "```",
        "",
        ":::{note}",
        "Plain note, a [link](02_y.ipynb#sec) and a [file](../README.md).",
        ":::",
        "",
        "````{dropdown} Show the answer",
        "```python",
        "print(1)",
        "```",
        "````",
        "",
        ":::{exercise} Try it",
        ":label: ex-1",
        "Change the seed.",
        ":::",
        "",
        "```{solution} ex-1",
        ":class: dropdown",
        "It moves by one recording.",
        "```",
        "% a comment",
        "(sec-x)=",
        "\\[",
        "a = b",
        "\\]",
    ])
    outputs = [_glue_output("acc", "99.66666666666667"), _glue_output("dev", "'cpu'"),
               _glue_output("n", "120"), _glue_output("top", "'sad'", "**sad**")]
    chapter = _book(tmp_path, text, outputs)
    (tmp_path / "chapters" / "02_y.ipynb").write_text(json.dumps(
        {"cells": [{"cell_type": "markdown", "id": "t", "metadata": {},
                    "source": ["# Second chapter"]}], "metadata": {}}))
    nb = cn.colab_copy(chapter, tmp_path)
    assert not cn.myst_leftovers(nb)
    md = "".join(next(c for c in nb["cells"] if c["id"] == "text")["source"])
    colab = "https://colab.research.google.com/github/emoser-course/emoser/blob/main/colab"
    assert "Mean **99.67 %** on 'cpu', 120 recordings," in md
    assert "top: **sad**; see Later section, that part," in md
    assert f"[Second chapter]({colab}/chapters/02_y.ipynb), (eq-loss), [smith2020, doe2021]" in md
    assert "`{glue:text}` in code" in md  # code spans are left alone
    assert "> **A defect of the original**\n>\n> The statistics came from the test set" in md
    assert "> $$\n> x^2\n> $$\n" in md  # math kept, its label dropped
    assert "> **Note**\n>\n> Plain note" in md
    assert f"[link]({colab}/chapters/02_y.ipynb#sec)" in md
    assert "[file](https://github.com/emoser-course/emoser/blob/main/README.md)" in md
    assert ("<details><summary><b>Show the answer</b></summary>\n\n```python\nprint(1)\n```"
            "\n\n</details>") in md
    assert "> **Exercise: Try it**\n>\n> Change the seed." in md
    assert "<details><summary><b>Solution</b></summary>\n\nIt moves by one recording." in md
    assert "% a comment" not in md and "(sec-x)=" not in md
    assert "$$\na = b\n$$" in md
    later = "".join(next(c for c in nb["cells"] if c["id"] == "later")["source"])
    assert later == "## Later section\n"
    kept = [c["id"] for c in nb["cells"]]  # the remove-cell glue cell is kept (see the tool)
    assert kept == ["colab-origin", "setup", "colab-drive-note", "colab-drive", "glue", "text",
                    "later"]


def test_converter_refuses_what_it_cannot_render(tmp_path):
    chapter = _book(tmp_path, "```{mermaid}\ngraph TD\n```", [])
    with pytest.raises(cn.ColabError, match=r"01_x.ipynb, cell 2 .*\{mermaid\}"):
        cn.colab_copy(chapter, tmp_path)
    chapter.unlink()
    chapter = _book(tmp_path, "{glue:text}`missing`", [])
    with pytest.raises(cn.ColabError, match="no glued value named 'missing'"):
        cn.colab_copy(chapter, tmp_path)


def test_chapter7s_key_result_reads_as_numbers_in_its_copy():
    nb = json.loads((ROOT / "colab/chapters/07_evaluation.ipynb").read_text(encoding="utf-8"))
    md = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert re.search(r"Over five seeds the test accuracy is \*\*\d+\.\d\d % ± \d+\.\d\d %\*\*", md)


# --------------------------------------------------------------------------- Drive (item 3)

def test_keep_download_on_drive_mounts_and_points_the_data_layer_there(tmp_path, monkeypatch,
                                                                      capsys):
    import emoser.course
    from emoser.data import ENV_TESS_ARCHIVE

    mounted = []

    def mount(point):
        mounted.append(point)
        (Path(point) / "MyDrive").mkdir(parents=True)

    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=mount)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.delenv(ENV_TESS_ARCHIVE, raising=False)
    archive = emoser.course.keep_download_on_drive(mount_point=str(tmp_path / "drive"))
    assert mounted == [str(tmp_path / "drive")]
    assert archive == tmp_path / "drive" / "MyDrive" / "emoser" / "tess.zip"
    assert archive.parent.is_dir() and "not there yet" in capsys.readouterr().out
    import os
    assert os.environ[ENV_TESS_ARCHIVE] == str(archive)


def test_keep_download_on_drive_refused_is_one_warning_not_a_crash(tmp_path, monkeypatch,
                                                                  capsys):
    import os

    import emoser.course
    from emoser.data import ENV_TESS_ARCHIVE

    def mount(point):
        raise RuntimeError("credential propagation was unsuccessful")

    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=mount)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.delenv(ENV_TESS_ARCHIVE, raising=False)
    assert emoser.course.keep_download_on_drive(mount_point=str(tmp_path / "d")) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("WARNING: Google Drive not used")
    assert ENV_TESS_ARCHIVE not in os.environ
