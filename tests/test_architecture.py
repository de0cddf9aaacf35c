"""The package's architecture: layers that import one way, small modules named for what they do."""
from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "emoser"

#: The layers, lowest first: a module may import from its own layer and the ones before it.
LAYERS = ["common", "data", "prep", "nn", "training", "experiments", "cli", "course"]
#: Module names that said which chapter, not what (replaced in the restructuring).
GONE = {"speed", "beyond", "ablation", "inspect_tools", "explore", "frames", "train", "plots"}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _layer(dotted: str) -> int:
    top = dotted.split(".")[1] if dotted.count(".") >= 1 else ""
    top = "cli" if top == "__main__" else top  # python -m emoser runs the command line
    return LAYERS.index(top) if top in LAYERS else -1


def _imports(name: str, path: Path) -> list[tuple[str, list[str], int, bool]]:
    """(imported module, imported names, line, at module top) for every emoser import."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            target, names = "", [a.name for a in node.names]
            for a in node.names:
                if a.name.startswith("emoser"):
                    found.append((a.name, [], node.lineno, id(node) in top_level))
            continue
        else:
            continue
        if target == "emoser" or target.startswith("emoser."):
            # `from . import native`: the names may be modules themselves
            found.append((target, names, node.lineno, id(node) in top_level))
    return found


def _resolve(target: str, names: list[str]) -> list[str]:
    """The modules an import really reaches (a name that is a submodule counts as that module)."""
    out = []
    for n in names or [""]:
        sub = f"{target}.{n}" if n else target
        out.append(sub if sub in MODULES else target)
    return out


def test_no_module_is_named_after_a_chapter_or_is_a_grab_bag():
    stems = {p.stem for p in PACKAGE.rglob("*.py")}
    assert not stems & GONE, f"modules named for a chapter or a grab-bag: {sorted(stems & GONE)}"


def test_no_module_over_the_size_limit():
    sizes = {n: len(p.read_text().splitlines()) for n, p in MODULES.items()}
    big = {n: s for n, s in sizes.items() if s > MAX_LINES}
    # download.py keeps its whole fetch-verify-unpack sequence readable in one place
    assert set(big) <= {"emoser.data.download", "emoser.data.audio"}, big
    assert all(s <= MAX_LINES * 1.1 for s in big.values()), big


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_down_the_layers(name):
    own = _layer(name)
    for target, names, line, _ in _imports(name, MODULES[name]):
        for module in _resolve(target, names):
            if module == "emoser" or name == "emoser":
                continue
            assert _layer(module) <= own, (
                f"{name} (layer {LAYERS[own]}) imports {module} (layer "
                f"{LAYERS[_layer(module)]}) on line {line}: imports must point down the layers")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_private_names_imported_from_another_module(name):
    for target, names, line, _ in _imports(name, MODULES[name]):
        private = [n for n in names if n.startswith("_") and not n.startswith("__")
                   and f"{target}.{n}" not in MODULES]
        assert not private, f"{name}:{line} imports private {private} from {target}"


def test_module_level_imports_have_no_cycle():
    graph = {}
    for name, path in MODULES.items():
        deps = set()
        for target, names, _, top in _imports(name, path):
            if top:
                deps.update(m for m in _resolve(target, names) if m != name and m in MODULES)
        graph[name] = deps
    # a package importing its own submodules is the normal direction; a submodule importing
    # its package's __init__ back would be a cycle
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for dep in graph[node]:
            if dep.startswith(node + "."):
                continue
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack + [node, dep]))
            if dep not in state:
                visit(dep, stack + [node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def test_the_layer_checks_catch_a_wrong_import(tmp_path):
    """The checks above can fail: a low module importing a high one is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from ..experiments.pipeline import prepare\nfrom .framing import _x\n")
    found = _imports("emoser.prep.bad", bad)
    modules = [m for t, n, _, _ in found for m in _resolve(t, n)]
    assert "emoser.experiments.pipeline" in modules
    assert _layer("emoser.experiments.pipeline") > _layer("emoser.prep.bad")
    assert any(n == ["_x"] for _, n, _, _ in found)


def test_every_public_function_names_the_chapter_that_teaches_it():
    missing = []
    for name, path in MODULES.items():
        if any(part.startswith("_") and part != "__init__" for part in name.split(".")):
            continue  # private modules (emoser.data._espeak, __main__)
        tree = ast.parse(path.read_text())
        if "Chapter:" not in (ast.get_docstring(tree) or ""):
            missing.append(f"{name} (module docstring)")
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                if "Chapter:" not in (ast.get_docstring(node) or ""):
                    missing.append(f"{name}.{node.name}")
    assert not missing, f"no 'Chapter:' tag: {missing}"


def test_chapter_map_in_the_readme_is_generated_from_the_tags():
    spec = importlib.util.spec_from_file_location("chapter_map", ROOT / "tools" / "chapter_map.py")
    tool = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = tool
    spec.loader.exec_module(tool)
    table = tool.chapter_table(ROOT)
    readme = (ROOT / "README.md").read_text()
    assert table in readme, ("README's chapter map differs from the Chapter: tags; "
                             "run python tools/chapter_map.py --write")
    # every chapter appears, and every module that names a chapter
    for chapter in sorted((ROOT / "chapters").glob("*.ipynb")):
        assert f"`{chapter.name}`" in table
