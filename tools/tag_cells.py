"""Hide the chapters' bookkeeping from the reader: glue and checks go into hidden cells.

Usage (from the repository root)::

    python tools/tag_cells.py --write            # every chapter in _toc.yml, in place
    python tools/tag_cells.py --check            # exit 1 and list what --write would change
    python tools/tag_cells.py --write 01 10      # chapters whose names start with these

The chapters keep their checks (``assert``, nbval's output comparison) and the numbers the prose
quotes (``glue``) next to the code they belong to, but the built book and Colab show only the
code a reader learns from. The rules, applied to each code cell (statements are the cell's
top-level Python statements, read with :mod:`ast`):

1. **Bookkeeping statements**: an ``assert``; a call of ``glue(...)`` (any ``x.glue(...)``)
   as a statement or assigned to ``_``; an ``if`` or ``for`` whose body (and ``else``) holds
   bookkeeping statements and assignments that call nothing visible, where no code after it
   reads what those assign. **Helpers**: assignments, imports and ``def`` that call nothing
   visible (no ``print``, ``display``, plotting) and bind names used only by bookkeeping
   statements and other helpers, in this cell and every later one. In a cell that keeps some
   teaching code, only helpers after the last statement that stays count as such (moving
   anything else would change the order in which the visible code runs).
2. A cell made only of bookkeeping statements and helpers is tagged ``remove-cell`` when it
   shows nothing but glue outputs, ``remove-input`` when it prints something (its output is
   what the reader sees).
3. A cell that mixes teaching code and bookkeeping is **split**: the bookkeeping statements
   (with the comment lines just above them) and their helpers move, in order, into a new cell
   right after it, tagged ``remove-cell``. A statement moves only if no statement that stays
   after it rebinds a name it reads or reads a name it binds, so the moved checks see the same
   values and the code that stays sees what it saw. The stored
   outputs follow the code: glue outputs (and the cell's value, when the last statement moved)
   go to the new cell, everything else stays; execution counts are renumbered 1, 2, 3, ...
   (the order of execution is unchanged). The new cell also gets ``nbval-check-output`` when
   the old one had it, so nbval keeps comparing the same outputs.
   ``name = glue(key, value)`` is first rewritten as ``name = value`` and ``glue(key, name)``.
4. nbval's comment markers (``# NBVAL_CHECK_OUTPUT`` etc.) become the equivalent cell tags
   (``nbval-check-output``, which nbval reads the same way), so the reader never sees them.
5. **No stray values**: a hidden bookkeeping cell whose last statement returns a value ends with
   ``;`` and its stored value is dropped. A visible cell must not store a bare number as its
   value (``execute_result`` whose only text is a number): ``--check`` lists it unless the cell
   is in :data:`VALUE_IS_THE_POINT`.
6. :data:`DECISIONS` tags a few cells by hand, each with its reason (a check whose code says
   nothing new but whose printed verdict is worth seeing: ``remove-input``).

``--check`` also fails when a visible cell still holds bookkeeping that rule 3 cannot move (an
``assert`` inside a loop that also prints, say): such a cell needs a small edit by hand, and the
message names it. ``--write`` is idempotent: a second run changes nothing.
"""
from __future__ import annotations

import argparse
import ast
import copy
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from execute_chapters import ROOT, chapters_from_command_line  # noqa: E402

# hide-cell: folded in the book (a solution's numbers and checks, chapters 1-5): the reader opens
# it on purpose, so it is left as it is
HIDE_TAGS = ("remove-cell", "remove-input", "hide-cell")
LINE_LENGTH = 100  # ruff's limit for the chapters' code
#: nbval's comment markers and the cell tags nbval reads the same way.
NBVAL_MARKERS = {"NBVAL_CHECK_OUTPUT": "nbval-check-output",
                 "NBVAL_IGNORE_OUTPUT": "nbval-ignore-output",
                 "NBVAL_SKIP": "nbval-skip",
                 "NBVAL_RAISES_EXCEPTION": "nbval-raises-exception"}
#: Calls whose output a reader would see; a helper statement never makes one.
VISIBLE_CALLS = {"print", "display", "show", "plot", "imshow", "bar", "barh", "hist", "scatter",
                 "listen", "interact", "subplots", "figure"}
#: Cells tagged by judgement (chapter file name -> cell id -> (tag, reason)).
DECISIONS: dict[str, dict[str, tuple[str, str]]] = {
    "03_lstm_cell.ipynb": {
        "aaa133eb": ("remove-input", "re-prints the errors of the cell before as True/False "
                                     "so that nbval compares them; the verdict is worth seeing"),
    },
    "07_evaluation.ipynb": {
        "55aef4e0": ("remove-input", "the regression check against the seed sweep; it prints "
                                     "its verdict (or the stand-in notice)"),
    },
    "11_seven_emotions.ipynb": {
        "5c0d601d-check": ("remove-input", "the regression check against the seed sweep; on "
                                           "the stand-in corpus it prints a notice"),
    },
}
#: Visible cells whose stored value (a bare number) is what the reader should see.
VALUE_IS_THE_POINT: dict[str, set[str]] = {}

_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


# --------------------------------------------------------------------------- classification

def _call_name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            return func.id
        if isinstance(func, ast.Attribute):
            return func.attr
    return None


def is_glue_call(node: ast.AST) -> bool:
    """True for ``glue(...)`` and ``anything.glue(...)``."""
    return _call_name(node) == "glue"


def is_bookkeeping(stmt: ast.stmt) -> bool:
    """True for an assert, a glue call, or an if/for holding only those (and quiet assignments)."""
    if isinstance(stmt, ast.Assert):
        return True
    if isinstance(stmt, ast.Expr) and is_glue_call(stmt.value):
        return True
    if (isinstance(stmt, ast.Assign) and is_glue_call(stmt.value)
            and all(isinstance(t, ast.Name) and t.id == "_" for t in stmt.targets)):
        return True  # _ = glue(...): a glue call that hides its value
    if isinstance(stmt, (ast.If, ast.For)):
        body = stmt.body + stmt.orelse
        if isinstance(stmt, ast.For) and stmt.orelse:
            return False
        book = [s for s in body if is_bookkeeping(s)]
        return bool(book) and all(s in book or _is_quiet_assignment(s) for s in body)
    return False


def _is_quiet_assignment(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign))
            and not _makes_visible_call(stmt))


def inner_assigned(stmt: ast.stmt) -> set[str]:
    """Names assigned inside an if/for block (not its loop target)."""
    if not isinstance(stmt, (ast.If, ast.For)):
        return set()
    names: set[str] = set()
    for inner in stmt.body + stmt.orelse:
        names |= bound_names(inner) if _is_quiet_assignment(inner) else inner_assigned(inner)
    return names


def contains_bookkeeping(stmt: ast.stmt) -> bool:
    """True when ``stmt`` or any statement nested in it is bookkeeping."""
    return any(isinstance(node, ast.stmt) and is_bookkeeping(node) for node in ast.walk(stmt))


def _makes_visible_call(stmt: ast.stmt) -> bool:
    return any(_call_name(node) in VISIBLE_CALLS or is_glue_call(node)
               for node in ast.walk(stmt))


def bound_names(stmt: ast.stmt) -> set[str]:
    """Names a top-level statement binds (targets, imports, def, for, with; not a def's locals)."""
    names: set[str] = set()

    def visit(node: ast.AST, top: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            if not top:
                return
            for child in node.decorator_list:
                visit(child, False)
            return
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp,
                             ast.GeneratorExp)):
            return  # their names are their own
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child, False)

    visit(stmt, True)
    return names


def loaded_names(stmt: ast.stmt) -> set[str]:
    """Names a statement reads from its cell (``x += 1`` included, comprehension variables not)."""
    local = {node.id for comp in ast.walk(stmt) if isinstance(comp, ast.comprehension)
             for node in ast.walk(comp.target) if isinstance(node, ast.Name)}
    names = {node.id for node in ast.walk(stmt)
             if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)} - local
    return names | {node.target.id for node in ast.walk(stmt)
                    if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name)}


def _is_helper_kind(stmt: ast.stmt) -> bool:
    return (isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Import,
                              ast.ImportFrom, ast.FunctionDef))
            and not _makes_visible_call(stmt))


def parse_cell(source: str) -> list[ast.stmt] | None:
    """The cell's top-level statements, or None when it is not plain Python (magics)."""
    try:
        return ast.parse(source).body
    except SyntaxError:
        return None


@dataclass
class CellPlan:
    """What the rules say about one code cell."""

    book: list[int] = field(default_factory=list)      # indices of bookkeeping statements
    helpers: list[int] = field(default_factory=list)   # indices of helper statements
    statements: list[ast.stmt] = field(default_factory=list)
    nested: bool = False           # bookkeeping nested in teaching code: needs a hand edit
    unsafe: str = ""               # why the split is not safe ("" when it is)

    @property
    def pure(self) -> bool:
        return bool(self.book) and len(self.book) + len(self.helpers) == len(self.statements)

    @property
    def moved(self) -> list[int]:
        return sorted(self.book + self.helpers)


def plan_cells(sources: list[str | None]) -> list[CellPlan | None]:
    """Classify every code cell of a notebook (None: a markdown cell or non-Python code).

    ``sources`` holds one entry per cell in order (None for markdown cells), so a helper's
    names can be looked up in every later cell.
    """
    parsed = [parse_cell(s) if s is not None else None for s in sources]
    plans: list[CellPlan | None] = []
    # names read by teaching (non-bookkeeping) statements from each cell on
    teaching_loads: list[set[str]] = [set() for _ in parsed]
    later: set[str] = set()
    for k in range(len(parsed) - 1, -1, -1):
        if parsed[k]:
            later |= set().union(*(loaded_names(s) for s in parsed[k] if not is_bookkeeping(s)))
        teaching_loads[k] = set(later)
    for k, stmts in enumerate(parsed):
        if stmts is None:
            plans.append(None)
            continue
        plan = CellPlan(statements=stmts)
        after = teaching_loads[k + 1] if k + 1 < len(parsed) else set()
        # a block that assigns names code after it reads is not bookkeeping: it defines them
        plan.book = [i for i, s in enumerate(stmts) if is_bookkeeping(s) and not (
            inner_assigned(s) & (after | set().union(set(), *(
                loaded_names(t) for t in stmts[i + 1:] if not is_bookkeeping(t)))))]
        plan.nested = any(contains_bookkeeping(s) for i, s in enumerate(stmts)
                          if i not in plan.book)
        # helpers: a fixed point, since one helper may feed another
        candidates = {i for i, s in enumerate(stmts) if _is_helper_kind(s)}
        changed = True
        while changed:
            changed = False
            for i in sorted(candidates):
                names = bound_names(stmts[i])
                readers = [j for j, s in enumerate(stmts) if j != i and j not in plan.book
                           and j not in candidates
                           and names & (loaded_names(s) | bound_names(s))]
                if not names or readers or names & after or not plan.book:
                    candidates.discard(i)
                    changed = True
        if plan.book and len(plan.book) + len(candidates) < len(stmts):
            # a mixed cell: a helper moves only from after the last statement that stays, so
            # that nothing the reader sees runs in another order (a timer, a training run)
            stays = [i for i in range(len(stmts)) if i not in plan.book and i not in candidates]
            candidates = {i for i in candidates if i > max(stays)}
        plan.helpers = sorted(candidates)
        if plan.book and not plan.pure:
            moved = set(plan.moved)
            for i in plan.moved:
                kept_after = [stmts[j] for j in range(i + 1, len(stmts)) if j not in moved]
                later_stores = set().union(set(), *map(bound_names, kept_after))
                later_loads = set().union(set(), *map(loaded_names, kept_after))
                clash = loaded_names(stmts[i]) & later_stores
                if clash:
                    plan.unsafe = (f"line {stmts[i].lineno} reads {', '.join(sorted(clash))}, "
                                   "which code after it rebinds")
                    break
                clash = bound_names(stmts[i]) & later_loads
                if clash:
                    plan.unsafe = (f"line {stmts[i].lineno} binds {', '.join(sorted(clash))}, "
                                   "which code after it reads")
                    break
            lines = [s.lineno for s in stmts]
            if len(set(lines)) != len(lines):
                plan.unsafe = "two statements share a line"
        plans.append(plan)
    return plans


# --------------------------------------------------------------------------- notebooks

def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _add_tag(cell: dict, tag: str) -> bool:
    tags = cell.setdefault("metadata", {}).setdefault("tags", [])
    if tag in tags:
        return False
    tags.append(tag)
    return True


def _lines(text) -> list[str]:
    """Text as nbformat stores it: a list of lines, each but the last ending in a newline."""
    return text.splitlines(keepends=True) if isinstance(text, str) else text


def normalize(cell: dict) -> None:
    """Store sources and stream texts as lists of lines; drop an empty tag list."""
    cell["source"] = _lines(cell.get("source", ""))
    for out in cell.get("outputs", []):
        if "text" in out:
            out["text"] = _lines(out["text"])
    if not cell.get("metadata", {}).get("tags", True):
        del cell["metadata"]["tags"]


def hidden(cell: dict) -> bool:
    return any(t in cell.get("metadata", {}).get("tags", []) for t in HIDE_TAGS)


def is_glue_output(out: dict) -> bool:
    """A display output that MyST-NB's glue made (it carries the ``scrapbook`` metadata)."""
    return out.get("output_type") == "display_data" and "scrapbook" in out.get("metadata", {})


def shows_something(out: dict) -> bool:
    """True for an output a reader would see (text, figure, value), glue outputs excluded."""
    if is_glue_output(out):
        return False
    if out.get("output_type") == "stream":
        return bool("".join(out.get("text", "")).strip())
    return True


def unwrap_assigned_glue(cell: dict) -> bool:
    """Rewrite ``name = glue(key, value)`` as ``name = value`` then ``glue(key, name)``.

    The value stays in the code the reader sees; the glue call becomes a statement of its own,
    which the split then moves into the hidden cell.
    """
    source = _source(cell)
    stmts = parse_cell(source)
    if not stmts:
        return False
    lines = source.splitlines(keepends=True)
    changed = False
    for stmt in reversed(stmts):
        call = getattr(stmt, "value", None)
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id != "_"
                and is_glue_call(call) and len(call.args) == 2 and not call.keywords):
            continue
        name = stmt.targets[0].id
        func, key, value = (ast.get_source_segment(source, node)
                            for node in (call.func, call.args[0], call.args[1]))
        end = lines[stmt.end_lineno - 1]
        newline = "\n" if end.endswith("\n") else ""
        lines[stmt.lineno - 1:stmt.end_lineno] = [f"{name} = {value}\n",
                                                   f"{func}({key}, {name}){newline}"]
        changed = True
    if changed:
        cell["source"] = "".join(lines)
    return changed


def markers_to_tags(cell: dict) -> bool:
    """Turn nbval comment lines (``# NBVAL_CHECK_OUTPUT``) into the equivalent cell tags."""
    lines = _source(cell).splitlines(keepends=True)
    kept, changed = [], False
    for line in lines:
        marker = line.strip().lstrip("#").strip()
        if line.strip().startswith("#") and marker in NBVAL_MARKERS:
            _add_tag(cell, NBVAL_MARKERS[marker])
            changed = True
        else:
            kept.append(line)
    if changed:
        cell["source"] = "".join(kept).strip("\n")
    return changed


def _chunks(source: str, stmts: list[ast.stmt]) -> tuple[list[str], str]:
    """Split ``source`` into one text chunk per statement (with the lines just above it)."""
    lines = source.splitlines(keepends=True)
    chunks, start = [], 0
    for stmt in stmts:
        end = stmt.end_lineno
        chunks.append("".join(lines[start:end]))
        start = end
    return chunks, "".join(lines[start:])


def _join(chunks: list[str]) -> str:
    text = "".join(chunks).strip("\n")
    return re.sub(r"\n{3,}", "\n\n", text)


def _merge_streams(outputs: list[dict]) -> list[dict]:
    merged: list[dict] = []
    for out in outputs:
        if (merged and out.get("output_type") == "stream"
                and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == out.get("name")):
            merged[-1]["text"] = "".join(merged[-1]["text"]) + "".join(out["text"])
        else:
            merged.append(out)
    return merged


def _new_id(base: str, taken: set[str]) -> str:
    candidate, n = f"{base}-book"[:64], 2
    while candidate in taken:
        candidate, n = f"{base}-book{n}"[:64], n + 1
    return candidate


def _end_quietly(cell: dict) -> bool:
    """Make a hidden cell's last statement show no value: end it with ``;``, drop the value."""
    stmts = parse_cell(_source(cell))
    changed = False
    if stmts and isinstance(stmts[-1], ast.Expr):
        lines = _source(cell).splitlines()
        last, col = stmts[-1].end_lineno - 1, stmts[-1].end_col_offset
        code = lines[last]
        if "nbval-check-output" in _tags(cell):
            # nbval's kernel shows a value despite a ';' (it runs cells without history, and
            # IPython reads the ';' from the history): assign the value instead
            first = stmts[-1].lineno - 1
            start = stmts[-1].col_offset
            lines[first] = lines[first][:start] + "_ = " + lines[first][start:]
            cell["source"] = "\n".join(lines)
            changed = True
        elif not code[col:].lstrip().startswith(";"):
            lines[last] = code[:col] + ";" + code[col:]
            call = stmts[-1].value
            if (len(lines[last]) > LINE_LENGTH and stmts[-1].lineno == stmts[-1].end_lineno
                    and isinstance(call, ast.Call) and len(call.args) >= 2):
                # too long with the ';': the arguments after the first go on a line of their own
                cut, indent = call.args[1].col_offset, call.func.end_col_offset + 1
                lines[last] = (lines[last][:cut].rstrip() + "\n" + " " * indent
                               + lines[last][cut:])
            cell["source"] = "\n".join(lines)
            changed = True
    outputs = [o for o in cell.get("outputs", []) if o.get("output_type") != "execute_result"]
    if len(outputs) != len(cell.get("outputs", [])):
        cell["outputs"] = outputs
        changed = True
    return changed


def stray_value(cell: dict) -> str | None:
    """The bare number a cell stores as its value, or None."""
    for out in cell.get("outputs", []):
        if out.get("output_type") != "execute_result":
            continue
        data = out.get("data", {})
        text = "".join(data.get("text/plain", "")).strip()
        if set(data) == {"text/plain"} and _NUMBER.match(text):
            return text
    return None


@dataclass
class Report:
    """What processing one notebook did (``--write``) or found (``--check``)."""

    changes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def process(nb: dict, name: str) -> Report:
    """Apply the rules to ``nb`` in place; return what changed and what still needs a hand."""
    report = Report()
    cells = nb["cells"]
    for cell in cells:
        if cell.get("cell_type") == "code" and markers_to_tags(cell):
            report.changes.append(f"{cell.get('id')}: nbval comment -> tag")
        if cell.get("cell_type") == "code" and not hidden(cell) and unwrap_assigned_glue(cell):
            report.changes.append(f"{cell.get('id')}: name = glue(key, value) unwrapped")
    decisions = DECISIONS.get(name, {})
    plans = plan_cells([_source(c) if c.get("cell_type") == "code" else None for c in cells])
    taken = {c.get("id") for c in cells}
    out_cells: list[dict] = []
    for cell, plan in zip(cells, plans):
        out_cells.append(cell)
        cid = cell.get("id")
        if cell.get("cell_type") != "code":
            continue
        if cid in decisions:
            if _add_tag(cell, decisions[cid][0]):
                report.changes.append(f"{cid}: {decisions[cid][0]} ({decisions[cid][1]})")
            continue
        if plan is None or not plan.book or hidden(cell):
            continue
        if plan.pure:
            shown = [o for o in cell.get("outputs", [])
                     if o.get("output_type") != "execute_result"]  # a value: see rule 5
            tag = "remove-input" if any(map(shows_something, shown)) else "remove-cell"
            _add_tag(cell, tag)
            report.changes.append(f"{cid}: {tag} (bookkeeping only)")
            continue
        if plan.unsafe:
            continue  # listed by check()
        chunks, tail = _chunks(_source(cell), plan.statements)
        moved = set(plan.moved)
        keep_src = _join([c for i, c in enumerate(chunks) if i not in moved] + [tail])
        book_src = _join([c for i, c in enumerate(chunks) if i in moved])
        last_moved = len(plan.statements) - 1 in moved
        keep_out, book_out = [], []
        for out in cell.get("outputs", []):
            goes = is_glue_output(out) or (last_moved and out.get("output_type")
                                           == "execute_result")
            (book_out if goes else keep_out).append(out)
        new = {"cell_type": "code", "execution_count": cell.get("execution_count"),
               "id": _new_id(cid or "cell", taken),
               "metadata": {"tags": ["remove-cell"]}, "outputs": book_out, "source": book_src}
        if "nbval-check-output" in _tags(cell):
            new["metadata"]["tags"].append("nbval-check-output")
        taken.add(new["id"])
        cell["source"] = keep_src
        cell["outputs"] = _merge_streams(keep_out)
        out_cells.append(new)
        report.changes.append(f"{cid}: {len(moved)} bookkeeping statement(s) moved to a hidden "
                              f"cell {new['id']}")
    nb["cells"] = out_cells
    for cell in out_cells:
        if cell.get("cell_type") == "code" and {"remove-cell", "hide-cell"} & set(_tags(cell)) \
                and _end_quietly(cell):
            report.changes.append(f"{cell.get('id')}: hidden cell ends with ';', value dropped")
        normalize(cell)
    counts = [c.get("execution_count") for c in out_cells if c.get("cell_type") == "code"]
    if None not in counts and counts != list(range(1, len(counts) + 1)):
        n = 0
        for cell in out_cells:
            if cell.get("cell_type") == "code":
                n += 1
                cell["execution_count"] = n
                for out in cell.get("outputs", []):
                    if out.get("output_type") == "execute_result":
                        out["execution_count"] = n
        report.changes.append("execution counts renumbered")
    report.problems = check(nb, name)
    return report


def check(nb: dict, name: str) -> list[str]:
    """What is still in the reader's view: bookkeeping, nbval markers, stray values."""
    problems = []
    plans = plan_cells([_source(c) if c.get("cell_type") == "code" else None
                        for c in nb["cells"]])
    allowed = VALUE_IS_THE_POINT.get(name, set())
    for cell, plan in zip(nb["cells"], plans):
        if cell.get("cell_type") != "code":
            continue
        cid, src = cell.get("id"), _source(cell)
        where = f"{name} cell {cid}"
        if "nbval-check-output" in _tags(cell) and src.rstrip().endswith(";"):
            problems.append(f"{where}: nbval compares this cell and its kernel shows the value "
                            "despite the ';' (assign it: _ = ...)")
        if "remove-cell" in _tags(cell) and any(map(shows_something, cell.get("outputs", []))):
            problems.append(f"{where}: tagged remove-cell but shows output (use remove-input)")
        value = stray_value(cell)
        if value is not None and cid not in allowed and "remove-cell" not in _tags(cell):
            problems.append(f"{where}: stray value {value} printed after the cell (end the "
                            "last line with ';', assign it, or print a labelled line)")
        if hidden(cell):
            continue
        for line in src.splitlines():
            marker = line.strip().lstrip("#").strip()
            if line.strip().startswith("#") and marker in NBVAL_MARKERS:
                problems.append(f"{where}: visible nbval marker '# {marker}'")
        if plan is None:
            if re.search(r"^\s*assert\b|glue\(", src, re.M):
                problems.append(f"{where}: not plain Python, but shows assert/glue")
            continue
        if plan.book and plan.unsafe:
            problems.append(f"{where}: bookkeeping cannot be moved out ({plan.unsafe}): "
                            "edit by hand")
        elif plan.book:
            problems.append(f"{where}: visible bookkeeping (run tools/tag_cells.py --write)")
        if plan.nested or (not plan.book and any(
                is_glue_call(node) for stmt in plan.statements for node in ast.walk(stmt))):
            problems.append(f"{where}: assert/glue nested in teaching code: move it into a "
                            "cell of its own by hand")
    return problems


# --------------------------------------------------------------------------- main

def dump(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="apply the rules in place")
    mode.add_argument("--check", action="store_true", help="change nothing, list problems")
    parser.add_argument("chapters", nargs="*", help="chapter names or prefixes (default: all)")
    args = parser.parse_args(argv)
    paths = chapters_from_command_line(args.chapters)
    if paths is None:
        return 2
    failed = False
    for path in paths:
        text = path.read_text(encoding="utf-8")
        nb = json.loads(text)
        result = copy.deepcopy(nb)
        report = process(result, path.name)
        rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        if args.write:
            if dump(result) != text:
                path.write_text(dump(result), encoding="utf-8")
            for change in report.changes:
                print(f"{rel}: {change}")
        elif report.changes:
            failed = True
            print(f"{rel}: {len(report.changes)} change(s) to make, e.g. {report.changes[0]} "
                  "(run python tools/tag_cells.py --write)")
        for problem in report.problems:
            failed = True
            print(f"problem: {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
