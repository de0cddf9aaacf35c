"""Tests of the repository's own tooling: packaging metadata, CI script, tools/*.py."""
from __future__ import annotations

import importlib.util
import os
import re
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _load_tool(name: str):
    """Import tools/<name>.py (tools/ is not a package)."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        spec = importlib.util.spec_from_file_location(f"_tool_{name}",
                                                      ROOT / "tools" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "tools"))
    return module


ex = _load_tool("execute_chapters")
cb = _load_tool("check_book")

EXPECTED_CHAPTERS = [
    "chapters/01_data", "chapters/02_framing", "chapters/03_lstm_cell", "chapters/04_lstm_layer",
    "chapters/05_audionet", "chapters/06_training", "chapters/07_evaluation", "chapters/08_speed",
    "chapters/09_what_went_wrong", "chapters/10_speaker_independent",
    "chapters/11_seven_emotions", "chapters/12_your_voice", "chapters/13_under_the_hood",
    "chapters/references",
]
PNG = bytes.fromhex("89504e470d0a1a0a") + b"not really a png, but not empty"


# --------------------------------------------------------------------------- packaging

def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_dependencies_are_ranges_that_keep_colabs_torch():
    deps = [Requirement(d) for d in _pyproject()["project"]["dependencies"]]
    assert deps, "no dependencies declared"
    for req in deps:
        assert "==" not in str(req.specifier) and "===" not in str(req.specifier), str(req)
    torch = next(r for r in deps if r.name == "torch")
    assert torch.specifier.contains(Version("2.13.0"))
    assert torch.specifier.contains(Version("2.1.0"))
    assert not torch.specifier.contains(Version("3.0.0"))


def test_requirements_cover_the_package_dependencies_without_pins():
    lines = [line.split("#")[0].strip()
             for line in (ROOT / "requirements.txt").read_text().splitlines()]
    reqs = {Requirement(line).name.lower(): Requirement(line) for line in lines if line}
    assert not any(line.startswith("-e") for line in lines)
    for req in reqs.values():
        assert "==" not in str(req.specifier), f"exact pin in requirements.txt: {req}"
    for dep in _pyproject()["project"]["dependencies"]:
        req = Requirement(dep)
        assert req.name.lower() in reqs, f"{req.name} missing from requirements.txt"
        assert reqs[req.name.lower()].specifier == req.specifier, f"{req.name}: ranges differ"
    for tool in ("jupyter-book", "myst-nb", "nbval", "pytest", "ipywidgets", "ipykernel",
                 "nbclient", "nbformat", "websocket-client", "jupyterlab", "nbconvert"):
        assert tool in reqs, f"{tool} missing from requirements.txt"
    assert not reqs["jupyter-book"].specifier.contains(Version("2.0.0"))
    # the "notebook" extra (a front end for the chapters) is part of requirements.txt
    extra = [Requirement(d) for d in _pyproject()["project"]["optional-dependencies"]["notebook"]]
    assert {r.name for r in extra} >= {"jupyterlab", "nbconvert"}
    for req in extra:
        assert "==" not in str(req.specifier), str(req)
        assert reqs[req.name.lower()].specifier == req.specifier, f"{req.name}: ranges differ"


def test_checksums_ship_as_package_data():
    data = _pyproject()["tool"]["setuptools"]["package-data"]["emoser.data"]
    assert "tess-sha256.tsv" in data
    rows = (ROOT / "emoser" / "data" / "tess-sha256.tsv").read_text().splitlines()
    assert rows[0].split("\t")[:3] == ["folder", "file", "sha256"]
    assert len(rows) == 2801  # header + all 2800 published files


def test_pytest_markers_are_declared():
    markers = " ".join(_pyproject()["tool"]["pytest"]["ini_options"]["markers"])
    assert "gpu:" in markers and "tess:" in markers


# --------------------------------------------------------------------------- book config

def test_toc_lists_the_chapters_in_order_and_config_builds_from_stored_outputs():
    assert ex.toc_files(ROOT) == ["chapters/intro"] + EXPECTED_CHAPTERS
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["only_build_toc_files"] is True
    assert "sphinx_thebe" not in config["sphinx"]["config"]["extensions"]
    for folder in ("_build", ".venv", ".cache", ".pytest_cache", "tests", "tools", "benchmarks"):
        assert folder in config["exclude_patterns"], folder


def test_repository_url_is_configured_once_and_every_mention_agrees():
    url = cb.repository_url(ROOT)
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), url
    owner_repo = url.removeprefix("https://github.com/")
    mention = re.compile(r"github\.com/[\w.-]+/emoser\b")
    files = [ROOT / "README.md", ROOT / "pyproject.toml", ROOT / "chapters" / "intro.md",
             *sorted((ROOT / "chapters").glob("*.ipynb")), *sorted((ROOT / "emoser").rglob("*.py"))]
    for path in files:
        for found in mention.findall(path.read_text(encoding="utf-8")):
            assert found == f"github.com/{owner_repo}", f"{path.name} mentions {found}, not {url}"
    assert (ROOT / "_config.yml").read_text().count(url) == 1


def test_readme_opens_with_the_commands_that_ci_runs():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    assert blocks[0].strip() == ("pip install -r requirements.txt -e . && "
                                 "jupyter-book build . -W -n --keep-going")
    assert blocks[1].strip() == "python -m pytest --nbval-lax tests chapters"
    assert readme.index(blocks[1]) < readme.index("## "), "the commands must come first"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pytest --nbval-lax tests chapters" in ci
    assert "jupyter-book build . -W -n --keep-going" in ci
    assert "pip install torch==2.13.0" in ci
    assert ci.index("pip install torch==2.13.0") < ci.index("pip install -r requirements.txt")
    assert 'EMOSER_CACHE_DIR="$ROOT/.cache/emoser"' in ci
    assert "tools/check_book.py _build/html" in ci


def test_ci_script_is_strict_bash():
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in ci
    assert re.search(r'"\$rc" -eq 5 \]; then.*?exit 1', ci, re.S), "pytest's 'no tests' must fail"


def test_gitignore_keeps_recordings_and_builds_out():
    ignored = (ROOT / ".gitignore").read_text().split()
    for pattern in (".venv/", "_build/", ".cache/", "*.wav", "*.aif", "*.aiff", "*.flac",
                    "*.egg-info/"):
        assert pattern in ignored, pattern


# --------------------------------------------------------------------------- execute_chapters

def _audio_notebook():
    nb = new_notebook()
    keep = new_output("stream", name="stdout", text="hello\n")
    wav = new_output("display_data", data={"audio/wav": "UklGRg==", "text/plain": "<Audio>"})
    player = new_output("execute_result", execution_count=2,
                        data={"text/html": '<AUDIO controls="controls"><source src="data:audio/wav;'
                                           'base64,UklGRg==" type="audio/wav"/></AUDIO>',
                              "text/plain": "<IPython.lib.display.Audio object>"})
    picture = new_output("display_data",
                         data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    tagged = new_code_cell("listen(wave, rate)", metadata={"tags": ["remove-output"]},
                           outputs=[new_output("stream", name="stdout", text="secret\n")],
                           execution_count=3)
    widget = new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "x", "version_major": 2,
                                                     "version_minor": 0},
        "text/plain": "HBox(children=(FloatProgress(value=0.0),))"})
    widget_html = new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "y", "version_major": 2,
                                                     "version_minor": 0},
        "text/html": "<b>fallback</b>", "text/plain": "W"})
    nb.cells = [
        new_markdown_cell("# Title"),
        new_code_cell("print('hello'); Audio(...)", outputs=[keep, wav, player], execution_count=1),
        new_code_cell("plt.show()", outputs=[picture], execution_count=2),
        tagged,
        new_code_cell("   \n", execution_count=None),
        new_code_cell("for _ in tqdm(...): pass", outputs=[widget, widget_html], execution_count=4),
    ]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


def test_strip_audio_removes_players_and_keeps_everything_else():
    nb = _audio_notebook()
    assert ex.strip_audio(nb) == 2
    assert [o["output_type"] for o in nb.cells[1].outputs] == ["stream"]
    assert "image/png" in nb.cells[2].outputs[0]["data"]
    assert ex.strip_audio(nb) == 0


def test_clean_notebook_clears_tagged_outputs_widgets_and_empty_cells():
    nb = _audio_notebook()
    report = ex.clean_notebook(nb)
    assert report == {"audio outputs removed": 2, "remove-output cells cleared": 1,
                      "widget outputs dropped": 2, "empty code cells deleted": 1}
    assert "widgets" not in nb.metadata
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [1, 2, 3, 4]
    assert code[2].outputs == []
    assert [list(o["data"]) for o in code[3].outputs] == [["text/html", "text/plain"]]
    text = nbformat.writes(nb)
    assert "audio/wav" not in text and "<audio" not in text.lower() and "secret" not in text
    nbformat.validate(nbformat.reads(text, as_version=4))


def _tiny_book(tmp_path: Path, notebooks: dict[str, object]) -> Path:
    (tmp_path / "chapters").mkdir()
    toc = {"format": "jb-book", "root": "chapters/intro",
           "parts": [{"caption": "A", "chapters": [{"file": f"chapters/{n}"} for n in notebooks]}]}
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump(toc))
    (tmp_path / "chapters" / "intro.md").write_text("# Intro\n")
    for name, nb in notebooks.items():
        nbformat.write(nb, tmp_path / "chapters" / f"{name}.ipynb")
    return tmp_path


def test_select_chapters_by_name_prefix_and_path(tmp_path):
    root = _tiny_book(tmp_path, {"01_data": new_notebook(), "02_framing": new_notebook(),
                                 "12_your_voice": new_notebook()})
    assert ([p.stem for p in ex.chapter_notebooks(root)]
            == ["01_data", "02_framing", "12_your_voice"])
    assert ([p.stem for p in ex.select_chapters(["02", "01_data"], root)]
            == ["02_framing", "01_data"])
    assert ([p.stem for p in ex.select_chapters(["chapters/12_your_voice.ipynb"], root)]
            == ["12_your_voice"])
    with pytest.raises(FileNotFoundError, match="no chapter notebook matches '99'"):
        ex.select_chapters(["99"], root)


def test_main_refuses_an_unknown_chapter(capsys):
    assert ex.main(["no_such_chapter_anywhere"]) == 2
    assert "no chapter notebook matches" in capsys.readouterr().err


def test_kernel_environment_is_headless_but_keeps_figures():
    before = dict(os.environ)
    with ex.kernel_environment({"EMOSER_TEST_VALUE": "1"}):
        assert os.environ["TQDM_DISABLE"] == "1"
        assert os.environ["MPLBACKEND"] == "module://matplotlib_inline.backend_inline"
        assert os.environ["EMOSER_TEST_VALUE"] == "1"
    assert dict(os.environ) == before


def test_execute_notebook_runs_in_the_chapter_folder_and_captures_figures(tmp_path):
    from nbclient.exceptions import CellExecutionError

    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [new_code_cell("import os, matplotlib.pyplot as plt\n"
                              "print(os.path.basename(os.getcwd()))"),
                new_code_cell("plt.plot([0, 1]); plt.show()"),
                new_code_cell("print(os.environ['TQDM_DISABLE'])")]
    folder = tmp_path / "chapters"
    folder.mkdir()
    nbformat.write(nb, folder / "ok.ipynb")
    done = ex.execute_notebook(folder / "ok.ipynb", timeout=120)
    assert done.cells[0].outputs[0]["text"].strip() == "chapters"
    assert "image/png" in done.cells[1].outputs[0]["data"], (
        "figures must be captured (no Agg in kernels)")
    assert done.cells[2].outputs[0]["text"].strip() == "1"
    assert [c.execution_count for c in done.cells] == [1, 2, 3]

    nb.cells = [new_code_cell("raise ValueError('broken chapter')")]
    nbformat.write(nb, folder / "bad.ipynb")
    with pytest.raises(CellExecutionError, match="broken chapter"):
        ex.execute_notebook(folder / "bad.ipynb", timeout=120)


# --------------------------------------------------------------------------- check_book

def test_image_sources_parses_every_img():
    html = ('<p><img alt="a" src="../_images/a.png"><IMG SRC="b.png" />'
            '<img alt="no source"><img src="data:image/png;base64,AAAA"></p>')
    assert cb.image_sources(html) == ["../_images/a.png", "b.png", "", "data:image/png;base64,AAAA"]


def test_local_file_resolves_relative_and_quoted_paths(tmp_path):
    assert (cb.local_file(tmp_path, "chapters/a.html", "../_images/x%20y.png?v=1")
            == tmp_path / "_images" / "x y.png")
    assert (cb.local_file(tmp_path, "index.html", "_static/logo.png")
            == tmp_path / "_static" / "logo.png")
    assert cb.local_file(tmp_path, "chapters/a.html", "https://example.org/x.png") is None
    assert cb.local_file(tmp_path, "chapters/a.html", "data:image/png;base64,AAAA") is None


def test_check_files_finds_missing_and_empty_images_and_pages(tmp_path):
    html = tmp_path / "html"
    (html / "chapters").mkdir(parents=True)
    (html / "_images").mkdir()
    (html / "_static").mkdir()
    (html / "_images" / "good.png").write_bytes(PNG)
    (html / "_images" / "empty.png").write_bytes(b"")
    (html / "_static" / "logo.png").write_bytes(PNG)
    (html / "index.html").write_text(
        '<meta http-equiv="Refresh" content="0; url=chapters/a.html" />')
    (html / "chapters" / "a.html").write_text(
        '<img src="../_static/logo.png"><img src="../_images/good.png">'
        '<img src="../_images/missing.png"><img src="../_images/empty.png">'
        '<img src="https://example.org/remote.png"><img src="data:image/png;base64,">')
    (html / "chapters" / "b.html").write_text('<img src="../_static/logo.png"><p>no figure</p>')
    pages = ["index.html", "chapters/a.html", "chapters/b.html", "chapters/c.html"]
    problems = cb.check_files(html, pages, {"chapters/a.html", "chapters/b.html"})
    assert problems == [
        "chapters/a.html: image ../_images/missing.png not found in the build",
        "chapters/a.html: image ../_images/empty.png is empty (0 bytes)",
        "chapters/a.html: empty inline image",
        "chapters/b.html: its notebook stores figures but the page shows no image from _images/",
        "chapters/c.html: page missing from the build",
    ]
    assert cb.check_files(html, ["index.html", "chapters/b.html"], set()) == []


def test_figure_pages_are_the_notebooks_with_visible_image_outputs(tmp_path):
    with_figure = new_notebook(cells=[new_code_cell("plot()", execution_count=1, outputs=[
        new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})])])
    hidden = new_notebook(cells=[new_code_cell(
        "plot()", execution_count=1, metadata={"tags": ["remove-output"]},
        outputs=[new_output("display_data", data={"image/png": "iVBO"})])])
    text_only = new_notebook(cells=[new_code_cell("1", execution_count=1, outputs=[
        new_output("execute_result", execution_count=1, data={"text/plain": "1"})])])
    root = _tiny_book(tmp_path, {"01_fig": with_figure, "02_hidden": hidden, "03_text": text_only})
    assert cb.figure_pages(root) == {"chapters/01_fig.html"}
    assert cb.book_pages(root) == ["index.html", "chapters/intro.html", "chapters/01_fig.html",
                                   "chapters/02_hidden.html", "chapters/03_text.html"]
    assert cb.screenshot_name("chapters/01_fig.html") == "chapters__01_fig.png"


def test_classify_events_separates_book_errors_from_other_hosts():
    base = "http://127.0.0.1:8000/"
    s = "S1"
    events = [
        {"sessionId": s, "method": "Runtime.consoleAPICalled", "params": {
            "type": "error", "args": [{"type": "string", "value": "boom"}],
            "stackTrace": {"callFrames": [{"url": base + "_static/x.js"}]}}},
        {"sessionId": s, "method": "Runtime.consoleAPICalled", "params": {
            "type": "log", "args": [{"type": "string", "value": "just a log"}]}},
        {"sessionId": s, "method": "Runtime.exceptionThrown", "params": {"exceptionDetails": {
            "text": "Uncaught", "url": base + "chapters/a.html",
            "exception": {
                "description": "SyntaxError: Identifier 'X' has already been declared"}}}},
        {"sessionId": s, "method": "Network.requestWillBeSent",
         "params": {"requestId": "1", "request": {"url": "https://cdn.example.org/mathjax.js"}}},
        {"sessionId": s, "method": "Network.loadingFailed",
         "params": {"requestId": "1", "errorText": "net::ERR_NAME_NOT_RESOLVED"}},
        {"sessionId": s, "method": "Network.responseReceived",
         "params": {"response": {"url": base + "_images/gone.png", "status": 404}}},
        {"sessionId": s, "method": "Network.responseReceived",
         "params": {"response": {"url": base + "favicon.ico", "status": 404}}},
        {"sessionId": s, "method": "Log.entryAdded", "params": {"entry": {
            "level": "error", "source": "network", "text": "Failed to load resource",
            "url": base + "_images/gone.png"}}},
        {"sessionId": "other tab", "method": "Runtime.exceptionThrown",
         "params": {"exceptionDetails": {"text": "elsewhere", "url": base}}},
    ]
    report = cb.classify_events(events, s, base)
    assert report.errors == [
        "console error: boom",
        "uncaught exception: SyntaxError: Identifier 'X' has already been declared",
        f"HTTP 404 for {base}_images/gone.png",
    ]
    assert report.external == [
        "request failed: https://cdn.example.org/mathjax.js (net::ERR_NAME_NOT_RESOLVED)",
    ]


def test_server_serves_the_folder_on_loopback(tmp_path):
    (tmp_path / "index.html").write_text("<p>hi</p>")
    with cb.Server(tmp_path) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        assert cb.http_status(server.base_url + "index.html") == 200
        assert cb.http_status(server.base_url + "missing.html") == 404


def test_scaffolding_in_code_names_glue_asserts_and_nbval_markers():
    blocks = ["x = 1\nprint(x)", "emoser.course.glue('x', x)", "# NBVAL_CHECK_OUTPUT\nprint(2)",
              "y = 2\nassert y == 2, y", "assert_allclose(a, b)  # a function, not a check"]
    assert cb.scaffolding_in_code(blocks) == [
        "1 code block(s) show 'glue(', e.g. \"emoser.course.glue('x', x)\"",
        "1 code block(s) show 'assert ', e.g. 'assert y == 2, y'",
        "1 code block(s) show 'NBVAL_', e.g. '# NBVAL_CHECK_OUTPUT'",
    ]
    assert cb.scaffolding_in_code(blocks[:1] + blocks[4:]) == []


def test_check_book_refuses_a_missing_build(tmp_path, capsys):
    assert cb.main([str(tmp_path / "nothing")]) == 2
    assert "build the book first" in capsys.readouterr().err


# --------------------------------------------------------------------------- licences and the book

def test_code_and_content_licences_are_present_and_name_tess_apart():
    code = (ROOT / "LICENSE").read_text()
    content = (ROOT / "LICENSE-CONTENT.md").read_text()
    assert code.startswith("MIT License") and "Permission is hereby granted" in code
    assert "CC BY 4.0" in content and "creativecommons.org/licenses/by/4.0" in content
    assert "CC BY-NC-ND 4.0" in content and "TESS" in content  # TESS keeps its own licence
    assert "LICENSE-CONTENT.md" in (ROOT / "README.md").read_text()


def test_chapters_are_numbered_one_to_thirteen_across_the_parts():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    numbered = [part for part in toc["parts"] if part.get("numbered") is True]
    # every part is numbered except the references page at the end
    assert [part["caption"] for part in toc["parts"] if part not in numbered] == ["References"]
    assert toc["parts"][-1]["chapters"] == [{"file": "chapters/references"}]
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["html"]["use_multitoc_numbering"] is True  # one count over all parts
    files = [c["file"] for part in numbered for c in part["chapters"]]
    # core 1-8, beyond the exercise 9-12, the appendix 13
    assert [int(Path(f).name[:2]) for f in files] == list(range(1, 14))


def test_the_bibliography_is_configured_and_every_citation_has_an_entry():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert "sphinxcontrib.bibtex" in config["sphinx"]["config"]["extensions"]
    bib = (ROOT / config["bibtex_bibfiles"][0]).read_text()
    keys = set(re.findall(r"^@\w+\{([^,]+),", bib, re.M))
    assert {"dupuis2010tess", "hochreiter1997lstm", "gers2000forget"} <= keys
    assert "{bibliography}" in (ROOT / "chapters" / "references.md").read_text()
    cited = set()
    for path in sorted((ROOT / "chapters").glob("*.ipynb")) + [ROOT / "chapters" / "intro.md"]:
        for group in re.findall(r"\{cite\}`([^`]+)`", path.read_text()):
            cited.update(key.strip() for key in group.split(","))
    assert cited, "no chapter cites anything"
    assert cited <= keys, f"cited without a bibliography entry: {sorted(cited - keys)}"
