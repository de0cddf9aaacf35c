"""The code written on the chapters' pages is the package's code, and it is what they run.

A code cell whose first line reads ``# emoser.<module>.<name> — the package's code, ...``
defines that object on the page (as d2l's ``#@save`` cells define its library). Such a cell
must hold exactly one definition, and it must be the same code as the package's object:
both are parsed and their syntax trees compared with the docstrings removed (so comments,
docstrings and line breaks may differ; every name, operation, argument and default must not).
"""
from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from emoser.nn import AudioNet, LstmCell

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"
MARKER = re.compile(r"^# (emoser(?:\.\w+)+) — the package's code")

#: What the core chapters must write out on the page (more may be marked anywhere).
TAUGHT = {
    "02_framing.ipynb": {"emoser.prep.framing.count_frames", "emoser.prep.framing.frame_signal",
                         "emoser.prep.normalize.Normalizer"},
    "03_lstm_cell.ipynb": {"emoser.nn.lstm.LstmCell"},
    "04_lstm_layer.ipynb": {"emoser.nn.lstm.LstmLayer"},
    "05_audionet.ipynb": {"emoser.nn.audionet.AudioNet"},
    "06_training.ipynb": {"emoser.training.loop.train_epoch"},
    "07_evaluation.ipynb": {"emoser.training.evaluation.evaluate"},
}


def marked_cells() -> list[tuple[str, str, str, str]]:
    """``(chapter, cell id, object name, source)`` of every marked cell of every chapter."""
    found = []
    for path in sorted(CHAPTERS.glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            source = "".join(cell["source"])
            match = MARKER.match(source)
            if cell["cell_type"] == "code" and match:
                found.append((path.name, cell.get("id", "?"), match.group(1), source))
    return found


def package_object(dotted: str):
    module_name, _, attr = dotted.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                node.body = body[1:] or [ast.Pass()]
    return tree


def code_of(source: str) -> str:
    """The syntax tree of one definition, docstrings removed, as a comparable string."""
    tree = without_docstrings(ast.parse(source))
    definitions = [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))]
    if len(tree.body) != 1 or len(definitions) != 1:
        raise ValueError("a marked cell holds exactly one class or function definition, "
                         f"got {[type(n).__name__ for n in tree.body]}")
    return ast.dump(definitions[0], include_attributes=False)


def test_the_core_chapters_write_the_taught_code_on_the_page():
    marked = {}
    for chapter, _, name, _ in marked_cells():
        marked.setdefault(chapter, set()).add(name)
    for chapter, names in TAUGHT.items():
        assert names <= marked.get(chapter, set()), (chapter, names - marked.get(chapter, set()))


@pytest.mark.parametrize("chapter, cell_id, name, source", marked_cells(),
                         ids=lambda v: v if isinstance(v, str) and len(v) < 40 else "")
def test_a_marked_cell_is_the_package_code(chapter, cell_id, name, source):
    obj = package_object(name)
    tree = ast.parse(source)
    assert [getattr(n, "name", type(n).__name__) for n in tree.body] == [name.rpartition(".")[2]], \
        f"{chapter} cell {cell_id} must define {name} and nothing else"
    assert code_of(source) == code_of(inspect.getsource(obj)), (
        f"{chapter} cell {cell_id} differs from {name} in {inspect.getsourcefile(obj)}: "
        "copy the package's code onto the page (or the page's into the package)")


def _lstm_cell_on_page() -> str:
    (source,) = [s for c, _, n, s in marked_cells()
                 if c == "03_lstm_cell.ipynb" and n == "emoser.nn.lstm.LstmCell"]
    return source


def test_the_comparison_fails_when_either_side_changes():
    page = _lstm_cell_on_page()
    package = inspect.getsource(LstmCell)
    assert code_of(page) == code_of(package)
    no_forget = ("c = f * c + i * g", "c = c + i * g")
    assert no_forget[0] in page and no_forget[0] in package
    assert code_of(page.replace(*no_forget)) != code_of(package)  # the page changed
    assert code_of(page) != code_of(package.replace(*no_forget))  # the package changed
    renamed = page.replace("self.candidate", "self.cand")
    assert code_of(renamed) != code_of(package)
    # comments and docstrings are free: they are not code
    assert code_of(page.replace("# emoser", "# the cell of emoser")) == code_of(package)
    documented = package.replace('"""One LSTM step', '"""A different docstring. One LSTM step')
    assert code_of(documented) == code_of(package)
    with pytest.raises(ValueError, match="exactly one"):
        code_of(page + "\nx = 1\n")


def _page_cell_class(source: str):
    namespace = {"torch": torch, "nn": nn}
    exec(compile(source, "<chapter 3 cell>", "exec"), namespace)  # noqa: S102
    return namespace["LstmCell"]


def _train(cell) -> tuple[float, torch.Tensor]:
    """Ten Adam steps of a small AudioNet on its taught engine, synthetic data, float64."""
    torch.manual_seed(0)
    model = AudioNet(inDim=254, convOutNum=4, hiddenSize=6, engine="taught", cell=cell).double()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8, 7, 254, generator=gen, dtype=torch.float64)
    lengths = torch.tensor([7, 3, 5, 6, 2, 7, 4, 1])
    y = torch.tensor([0, 1, 0, 1, 1, 0, 0, 1])
    x[:, :, :10] += 0.5 * y.view(8, 1, 1)  # something to learn
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(10):
        opt.zero_grad()
        loss = F.cross_entropy(model(x, lengths), y)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(F.cross_entropy(model(x, lengths), y)), model(x, lengths)


def test_the_cell_on_the_page_is_what_trains():
    """Chapter 3's cell, executed as written, trains exactly as the package's cell; the same
    cell without its forget gate (f = 1, one edit on the page) trains to another result."""
    page = _lstm_cell_on_page()
    page_cell = _page_cell_class(page)
    no_forget = _page_cell_class(page.replace("c = f * c + i * g", "c = c + i * g"))
    assert page_cell is not LstmCell
    loss_package, logits_package = _train(LstmCell)
    loss_page, logits_page = _train(page_cell)
    loss_edited, logits_edited = _train(no_forget)
    assert loss_page == loss_package and torch.equal(logits_page, logits_package)
    assert abs(loss_edited - loss_package) > 1e-4, (loss_edited, loss_package)
    assert (logits_edited - logits_package).abs().max() > 1e-3
