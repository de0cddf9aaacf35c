"""The Colab copies of the chapters: ``colab/chapters/NN_name.ipynb``, made from ``chapters/``.

Colab shows a notebook's Markdown as CommonMark with math: MyST's roles and directives, which
the book renders, would show as raw text there (``{glue:text}`ch7_mean:.2f` %``). So the
book's Colab launch buttons open generated copies (``_config.yml``: ``repository.path_to_book:
colab``, the copies mirror the chapters' paths below it) in which

- every glue role is replaced by the value the chapter stored (MyST-NB's glue keeps it in the
  output of the cell that glued it; a format spec such as ``:.2f`` is applied as MyST-NB does);
- admonitions (``{admonition}``, ``{note}``, ``{tip}``, ``{warning}``, ...; backtick or colon
  fences) become a blockquote with a bold title, dropdowns (``{dropdown}`` or ``:class:
  dropdown``) and solutions a ``<details>`` block, exercises a titled blockquote;
- cross-references (``{ref}``, ``{numref}``, ``{doc}``, ``{eq}``, ``{cite}``, ``{download}``)
  become plain text or links, links to other chapters open their Colab copies, links to other
  files of the repository open them on GitHub; ``(label)=`` targets and ``%`` comments go;
- math stays as Colab renders it (``$...$``, ``$$...$$``; ``\\[...\\]`` blocks become ``$$``);
- a code cell's ``colab`` metadata is kept (a solution cell with ``cellView: form`` shows
  folded, as its ``hide-input`` tag folds it in the book);
- outputs are left out (the reader runs the cells); every code cell is kept, the bookkeeping
  cells tagged ``remove-cell``/``remove-input`` too, because later cells may use what they
  compute, and the copy runs exactly the code that nbval checks in the chapter;
- one note at the top says where the copy comes from, and one optional cell after the set-up
  cell keeps the downloaded TESS archive on the reader's Google Drive (off by default; see
  ``emoser.course.colab``).

A construct the tool has no Colab form for stops it with an error naming the chapter and cell.
``tests/test_colab.py`` runs ``--check`` and fails when a copy contains a MyST-only construct
(:data:`MYST_ONLY`). See chapters/intro.md for how the course is opened in Colab.

    python tools/colab_notebooks.py --write   # (re)write colab/chapters/*.ipynb
    python tools/colab_notebooks.py --check   # exit 1 when a copy differs from what --write makes
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The folder that mirrors the repository for Colab (``_config.yml``'s ``path_to_book``).
COLAB_DIR = "colab"
COLAB_URL = "https://colab.research.google.com"

#: Patterns that only MyST renders: none may remain in a Colab copy's Markdown.
MYST_ONLY = {
    "role": r"\{[A-Za-z][\w:.+-]*\}`",
    "directive": r"(?m)^[ \t>]*(?:`{3,}|~{3,}|:{3,})[ \t]*\{[\w:.+-]+\}",
    "directive option": r"(?m)^[ \t>]*:(?:class|name|label|open|nosubmit|width|align|"
                        r"alt|caption|icon|color|margin|figclass)[ \t]*:",
    "target": r"(?m)^[ \t]*\([\w.:/-]+\)=[ \t]*$",
    "MyST comment": r"(?m)^%[^\n]*$",
    "block break": r"(?m)^\+\+\+",
    "equation label": r"\$\$[ \t]*\([\w.:-]+\)[ \t]*$",
    "substitution": r"\{\{[ \t]*[\w.]+[ \t]*\}\}",
}

_ADMONITION_TITLES = {
    "note": "Note", "tip": "Tip", "hint": "Hint", "important": "Important",
    "warning": "Warning", "caution": "Caution", "attention": "Attention", "danger": "Danger",
    "error": "Error", "seealso": "See also", "margin": "", "sidebar": "", "topic": "",
    "admonition": "", "dropdown": "", "exercise": "Exercise", "solution": "Solution",
}
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,}|:{3,})[ \t]*"
                    r"(?:\{(?P<name>[\w:.+-]+)\})?[ \t]*(?P<arg>.*?)[ \t]*$")
_ROLE = re.compile(r"\{(?P<name>[A-Za-z][\w:.+-]*)\}`(?P<content>[^`]*)`")
_TITLED = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)


class ColabError(ValueError):
    """A chapter uses a construct that has no Colab form (the message names chapter and cell)."""


# ------------------------------------------------------------------------------ glue values

def format_plain_text(text: str, fmt_spec: str) -> str:
    """Format a glued ``text/plain`` value with ``fmt_spec`` exactly as MyST-NB 1.x does."""
    try:
        value = ast.literal_eval(text)
    except (SyntaxError, ValueError):
        value = text
    if fmt_spec == "":
        return str(value)
    kind = fmt_spec[-1]
    if kind == "s":
        value = str(value)
    elif kind in "bcdoxX":
        value = int(value)
    elif kind in "eEfFgGn%":
        value = float(value)
    return format(value, fmt_spec)


def glue_values(nb: dict) -> dict[str, dict]:
    """Name -> the MIME bundle that ``glue(name, value)`` stored in the notebook's outputs."""
    values = {}
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            record = out.get("metadata", {}).get("scrapbook")
            if record:
                cut = len(record.get("mime_prefix", ""))
                values[record["name"]] = {k[cut:]: v for k, v in out.get("data", {}).items()}
    return values


# ------------------------------------------------------------------------------ conversion

class Converter:
    """Turns one chapter's MyST Markdown cells into Markdown that Colab renders."""

    def __init__(self, root: Path, chapter: Path, repository_url: str, branch: str):
        self.root, self.chapter = root, chapter
        self.repo = repository_url.rstrip("/")
        self.branch = branch
        self.glue = {"": glue_values(_read(chapter))}
        self.where = chapter.name
        self.labels = _labels(root)

    # links -------------------------------------------------------------------------------
    def colab_link(self, rel_repo: str) -> str:
        """The Colab address of the copy of a repository notebook (``chapters/NN.ipynb``)."""
        org_repo = self.repo.removeprefix("https://github.com/")
        return f"{COLAB_URL}/github/{org_repo}/blob/{self.branch}/{COLAB_DIR}/{rel_repo}"

    def github_link(self, rel_repo: str) -> str:
        return f"{self.repo}/blob/{self.branch}/{rel_repo}"

    def resolve_link(self, target: str) -> str:
        """A link of the chapter, as it must read in its Colab copy."""
        if re.match(r"^(?:[a-z][\w+.-]*:|#|/)", target):
            return target  # absolute address, anchor, site-absolute
        path, _, anchor = target.partition("#")
        rel = (self.chapter.parent / path).resolve().relative_to(self.root.resolve()).as_posix()
        anchor = f"#{anchor}" if anchor else ""
        if rel.startswith("chapters/") and rel.endswith(".ipynb"):
            return self.colab_link(rel) + anchor
        if rel.startswith("chapters/") and rel.endswith(".md"):  # a page of the book only
            return self.github_link(rel) + anchor
        return self.github_link(rel) + anchor

    # roles -------------------------------------------------------------------------------
    def glued(self, key: str) -> dict:
        doc, sep, name = key.rpartition("::")
        if doc not in self.glue:
            self.glue[doc] = glue_values(_read((self.chapter.parent / doc).with_suffix(".ipynb")))
        if name not in self.glue[doc]:
            raise ColabError(f"{self.where}: no glued value named {name!r}"
                             + (f" in {doc}" if sep else ""))
        return self.glue[doc][name]

    def role(self, m: re.Match) -> str:
        name, content = m.group("name"), m.group("content")
        titled = _TITLED.match(content)
        text, target = (titled.group("text"), titled.group("target")) if titled else ("", content)
        if name == "glue:text":
            key, _, spec = content.rpartition(":") if ":" in content.replace("::", "") else (
                content, "", "s")
            key = key or content
            data = self.glued(key)
            if "text/plain" not in data:
                raise ColabError(f"{self.where}: glued {key!r} has no text/plain value")
            return format_plain_text(data["text/plain"], spec)
        if name in ("glue", "glue:", "glue:any"):
            data = self.glued(content)
            if "text/markdown" in data:
                return data["text/markdown"].strip()
            return data.get("text/plain", "")
        if name == "glue:md":
            key = re.sub(r":(commonmark|gfm|myst)$", "", content)
            return self.glued(key).get("text/markdown", "").strip()
        if name in ("ref", "numref"):
            return _ref_text(text) if text else self.labels.get(target, target.replace("-", " "))
        if name == "doc":
            rel = target if target.endswith((".ipynb", ".md")) else target + ".ipynb"
            if not (self.chapter.parent / rel).exists():
                rel = target + ".md"
            title = text or _title(self.chapter.parent / rel) or target
            return f"[{title}]({self.resolve_link(rel)})"
        if name == "download":
            return f"[{text or Path(target).name}]({self.resolve_link(target)})"
        if name == "eq":
            return f"({target})"
        if name.split(":")[0] == "cite":
            return "[" + ", ".join(k.strip() for k in content.split(",")) + "]"
        if name == "math":
            return f"${content}$"
        if name in ("term", "abbr", "index"):
            return re.sub(r"\s*\(.*\)$", "", text or target) if name == "abbr" else text or target
        if name in ("sub", "sup", "kbd"):
            return f"<{name}>{content}</{name}>"
        raise ColabError(f"{self.where}: role {{{name}}} has no Colab form; add it to "
                         "tools/colab_notebooks.py")

    def inline(self, line: str) -> str:
        """Convert the roles and links of one line, leaving code spans alone."""
        out, pos = [], 0
        for m in _ROLE_OR_CODE.finditer(line):
            out.append(self.links(line[pos:m.start()]))
            out.append(_ROLE.sub(self.role, m.group(0)) if m.group("role") else m.group(0))
            pos = m.end()
        out.append(self.links(line[pos:]))
        return "".join(out)

    def links(self, text: str) -> str:
        return _LINK.sub(lambda m: f"]({self.resolve_link(m.group(1))}{m.group(2) or ''})", text)

    # blocks ------------------------------------------------------------------------------
    def markdown(self, text: str) -> str:
        lines = text.split("\n")
        out: list[str] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            m = _FENCE.match(line)
            if m:
                end = _closing(lines, i, m.group("fence"))
                body = lines[i + 1:end]
                if m.group("name"):
                    out.extend(self.directive(m.group("name"), m.group("arg"), body,
                                              m.group("indent")))
                else:  # a plain code block: verbatim
                    out.extend(lines[i:end + 1])
                i = end + 1
                continue
            if re.match(r"^[ \t]*\([\w.:/-]+\)=[ \t]*$", line) or re.match(r"^(%|\+\+\+)", line):
                i += 1  # a target, a MyST comment, a block break: nothing to show
                continue
            if line.strip() == r"\[":  # display math in brackets: $$ renders in Colab
                end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == r"\]"),
                           None)
                if end is not None:
                    out.extend(["$$", *lines[i + 1:end], "$$"])
                    i = end + 1
                    continue
            line = re.sub(r"(\$\$)[ \t]*\([\w.:-]+\)[ \t]*$", r"\1", line)  # equation label
            out.append(self.inline(line))
            i += 1
        return "\n".join(out)

    def directive(self, name: str, arg: str, body: list[str], indent: str) -> list[str]:
        options, body = _options(body)
        content = self.markdown("\n".join(_dedent(body, indent))).strip("\n")
        if name in _ADMONITION_TITLES:
            title = self.inline(arg) if name not in ("solution",) else ""
            default = _ADMONITION_TITLES[name]
            if name == "exercise" and title:
                title = f"Exercise: {title}"
            title = title or default or name.capitalize()
            dropdown = (name in ("dropdown", "solution")
                        or "dropdown" in options.get("class", "").split())
            if dropdown:
                block = [f"<details><summary><b>{title}</b></summary>", "", content, "",
                         "</details>"]
            else:
                block = [f"**{title}**", "", content]
                block = [("> " + x) if x.strip() else ">" for x in "\n".join(block).split("\n")]
            return [indent + x if x else x for x in "\n".join(block).split("\n")]
        if name == "math":
            return [indent + "$$", *body, indent + "$$"]
        if name in ("code-block", "code", "sourcecode", "code-cell"):
            return [f"{indent}```{arg}", *_dedent(body, indent), f"{indent}```"]
        if name in ("figure", "image"):
            caption = content.strip() or options.get("alt", "")
            src = self.resolve_link(arg).replace("/blob/", "/raw/", 1)
            return [f"{indent}![{options.get('alt', caption)}]({src})"] + (
                [f"{indent}", f"{indent}*{caption}*"] if name == "figure" and caption else [])
        if name in ("glue:md", "glue", "glue:any"):
            data = self.glued(arg.split(":")[0] if name == "glue:md" else arg)
            return [data.get("text/markdown", data.get("text/plain", "")).strip()]
        if name == "glue:math":
            return ["$$", self.glued(arg)["text/latex"].strip().strip("$"), "$$"]
        raise ColabError(f"{self.where}: directive {{{name}}} has no Colab form; add it to "
                         "tools/colab_notebooks.py")


_LINK = re.compile(r"\]\(([^)\s]+?)(\s+\"[^\"]*\")?\)")
_ROLE_OR_CODE = re.compile(r"(?P<role>\{[A-Za-z][\w:.+-]*\}`[^`]*`)"
                           r"|(?P<ticks>`+).*?(?<!`)(?P=ticks)(?!`)")


def _closing(lines: list[str], start: int, fence: str) -> int:
    """Index of the line that closes the fence opened at ``start`` (the last line if none)."""
    char, n = fence[0], len(fence)
    for j in range(start + 1, len(lines)):
        s = lines[j].strip()
        if s and set(s) == {char} and len(s) >= n:
            return j
    return len(lines) - 1


def _options(body: list[str]) -> tuple[dict[str, str], list[str]]:
    """A directive's ``:key: value`` options (or its ``---`` YAML block) and the rest."""
    options, i = {}, 0
    if body and body[0].strip() == "---":
        end = next((j for j in range(1, len(body)) if body[j].strip() == "---"), 0)
        for line in body[1:end]:
            key, _, value = line.partition(":")
            options[key.strip()] = value.strip()
        return options, body[end + 1:]
    while i < len(body) and re.match(r"^[ \t]*:[\w-]+:", body[i]):
        key, value = re.match(r"^[ \t]*:([\w-]+):[ \t]*(.*)$", body[i]).groups()
        options[key] = value
        i += 1
    return options, body[i:]


def _dedent(lines: list[str], indent: str) -> list[str]:
    return [x[len(indent):] if x.startswith(indent) else x for x in lines]


def _ref_text(text: str) -> str:
    return re.sub(r"\s*(%s|\{number\}|\{name\})\s*", " ", text).strip() or text


def _read(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _title(path: Path) -> str:
    """The first heading of a notebook or Markdown page."""
    if not path.exists():
        return ""
    if path.suffix == ".ipynb":
        text = "\n".join("".join(c["source"]) for c in _read(path)["cells"]
                         if c["cell_type"] == "markdown")
    else:
        text = path.read_text(encoding="utf-8")
    m = re.search(r"(?m)^#\s+(.+)$", text)
    return m.group(1).strip() if m else ""


def _labels(root: Path) -> dict[str, str]:
    """``(label)=`` targets of the chapters -> the heading they label."""
    labels = {}
    for path in sorted((root / "chapters").glob("*.ipynb")):
        for cell in _read(path)["cells"]:
            if cell["cell_type"] != "markdown":
                continue
            lines = "".join(cell["source"]).split("\n")
            for k, line in enumerate(lines):
                m = re.match(r"^\(([\w.:/-]+)\)=\s*$", line)
                if m:
                    nxt = next((x for x in lines[k + 1:] if x.strip()), "")
                    labels[m.group(1)] = re.sub(r"^#+\s*", "", nxt).strip() or m.group(1)
    return labels


# ------------------------------------------------------------------------------ the copies

def _cell(cell_type: str, cell_id: str, source: str) -> dict:
    cell = {"cell_type": cell_type, "id": cell_id, "metadata": {}, "source": _lines(source)}
    if cell_type == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    return [x + "\n" for x in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


DRIVE_NOTE = (
    "**Optional, Colab only: keep the data on your Google Drive.** Each new Colab runtime "
    "starts with an empty disk and downloads the TESS archive (about 270 MB) again. Set "
    "`KEEP_ON_DRIVE = True` and run the next cell to keep the archive in `MyDrive/emoser/` "
    "(Colab asks for access to your Drive); later runtimes then install it from there. If the "
    "download fails, the chapter goes on with the generated stand-in corpus and says so in one "
    "warning line."
)
DRIVE_CELL = (
    "KEEP_ON_DRIVE = False  # True: keep the downloaded TESS archive on your Google Drive\n"
    "\n"
    "if KEEP_ON_DRIVE:\n"
    "    import emoser.course\n"
    "\n"
    "    emoser.course.keep_download_on_drive()"
)


def yaml_repository(root: Path = ROOT) -> dict:
    """The ``repository:`` settings of ``_config.yml`` (url, path_to_book, branch)."""
    import yaml

    return yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))["repository"]


def colab_copy(chapter: Path, root: Path = ROOT) -> dict:
    """The Colab copy of ``chapter`` (a notebook dict), as ``--write`` stores it."""
    repo = yaml_repository(root)
    conv = Converter(root, chapter, repo["url"], repo.get("branch", "main"))
    nb = _read(chapter)
    rel = chapter.resolve().relative_to(root.resolve()).as_posix()
    number = re.match(r"(\d+)_", chapter.name)
    title = _title(chapter)
    header = (
        f"> **Colab copy of {'chapter ' + str(int(number.group(1))) if number else 'the page'}"
        f" of the emoser course.** It is generated from [`{rel}`]({conv.github_link(rel)}) by "
        "`tools/colab_notebooks.py` (edit the chapter, not this copy). The numbers in the text "
        "are those of the run the book shows; run the cells to get your own."
    )
    cells = [_cell("markdown", "colab-origin", header)]
    first_code = True
    for k, cell in enumerate(nb["cells"]):
        conv.where = f"{chapter.name}, cell {k} ({cell.get('id', '?')})"
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            new = {"cell_type": "markdown", "id": cell["id"], "metadata": {},
                   "source": _lines(conv.markdown(source))}
            if "attachments" in cell:
                new["attachments"] = cell["attachments"]
            cells.append(new)
        elif cell["cell_type"] == "code":
            tags = cell.get("metadata", {}).get("tags", [])
            meta = {"tags": tags} if tags else {}
            if "colab" in cell.get("metadata", {}):  # e.g. a solution shown as a folded form
                meta["colab"] = cell["metadata"]["colab"]
            cells.append({"cell_type": "code", "execution_count": None, "id": cell["id"],
                          "metadata": meta, "outputs": [], "source": cell["source"]})
            if first_code:
                first_code = False
                cells.append(_cell("markdown", "colab-drive-note", DRIVE_NOTE))
                cells.append(_cell("code", "colab-drive", DRIVE_CELL))
        else:
            cells.append(dict(cell))
    meta = {k: v for k, v in nb.get("metadata", {}).items() if k in ("kernelspec",
                                                                     "language_info")}
    meta["colab"] = {"name": chapter.name, "provenance": []}
    if title:
        meta["title"] = title
    return {"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}


def chapters(root: Path = ROOT) -> list[Path]:
    """The chapter notebooks that get a Colab copy."""
    return sorted((root / "chapters").glob("*.ipynb"))


def copy_path(chapter: Path, root: Path = ROOT) -> Path:
    """Where the Colab copy of ``chapter`` lives: ``colab/<its path in the repository>``."""
    return root / COLAB_DIR / chapter.resolve().relative_to(root.resolve())


def render(nb: dict) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def myst_leftovers(nb: dict) -> list[str]:
    """``"<cell id>: <construct>: <text>"`` for every MyST-only construct in ``nb``'s Markdown."""
    found = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = _prose("".join(cell["source"]))
        for what, pattern in MYST_ONLY.items():
            for m in re.finditer(pattern, text):
                found.append(f"{cell.get('id')}: {what}: {m.group(0).strip()[:60]}")
    return found


def _prose(text: str) -> str:
    """``text`` without its code: plain fenced blocks and code spans are shown as written."""
    kept, fence = [], None
    for line in text.split("\n"):
        m = re.match(r"^[ \t>]*(`{3,}|~{3,})(?!.*\{)", line)
        if fence is None and m:
            fence = m.group(1)
        elif fence is not None:
            if line.strip().lstrip("> ").startswith(fence) and not line.strip().lstrip(
                    "> ").strip(fence[0]):
                fence = None
        else:
            kept.append(_ROLE_OR_CODE.sub(
                lambda m: m.group(0) if m.group("role") else "``", line))
    return "\n".join(kept)


def stale(root: Path = ROOT) -> list[str]:
    """The copies that differ from what ``--write`` makes, and copies of no chapter."""
    wanted = {copy_path(c, root): render(colab_copy(c, root)) for c in chapters(root)}
    problems = []
    for path, text in wanted.items():
        if not path.exists():
            problems.append(f"{path.relative_to(root)}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path.relative_to(root)}: differs from its chapter")
    for path in sorted((root / COLAB_DIR).rglob("*.ipynb")):
        if path not in wanted:
            problems.append(f"{path.relative_to(root)}: no chapter of that name")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help="write colab/chapters/*.ipynb")
    group.add_argument("--check", action="store_true",
                       help="exit 1 when a copy is missing, stale or holds MyST-only text")
    args = parser.parse_args(argv)
    try:
        if args.write:
            for chapter in chapters():
                path = copy_path(chapter)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(render(colab_copy(chapter)), encoding="utf-8")
                print(f"wrote {path.relative_to(ROOT)}")
            for path in sorted((ROOT / COLAB_DIR).rglob("*.ipynb")):
                if not (ROOT / path.relative_to(ROOT / COLAB_DIR)).exists():
                    path.unlink()
                    print(f"removed {path.relative_to(ROOT)} (its chapter is gone)")
            return 0
        problems = stale()
        for chapter in chapters():
            path = copy_path(chapter)
            if path.exists():
                problems += [f"{path.relative_to(ROOT)}: {x}"
                             for x in myst_leftovers(_read(path))]
    except ColabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print("run: python tools/colab_notebooks.py --write", file=sys.stderr)
        return 1
    print(f"{len(chapters())} Colab copies in step with their chapters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
