"""A newcomer's set-up (issue 20): what README.md tells them to run works as written.

The README's set-up installs a front end for the chapters (JupyterLab) and nbconvert; the
non-interactive command it documents runs a chapter (the shortest one, chapter 3: about 9 s on
a 2-core CPU) into a temporary folder, never over the stored notebook. The hint for a CPU build
of torch names PyTorch's CPU wheel index, not a version that only this machine has as a CPU
wheel.
"""
from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _bash_lines(text: str) -> list[str]:
    """The lines of the ```bash blocks of a Markdown text."""
    blocks = re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def _documented(prefix: str) -> str:
    """The one command in README.md's bash blocks that starts with ``prefix``; intro.md must
    give the same."""
    found = [line for line in _bash_lines(README.read_text()) if line.startswith(prefix)]
    assert len(found) == 1, f"README.md should document one '{prefix} ...' command: {found}"
    intro = _bash_lines((ROOT / "chapters" / "intro.md").read_text())
    assert found[0] in intro, f"chapters/intro.md does not give the README's command {found[0]!r}"
    return found[0]


def _jupyter() -> str:
    """The ``jupyter`` of this Python's environment (where requirements.txt installed it)."""
    here = Path(sys.executable).parent / "jupyter"
    found = str(here) if here.exists() else shutil.which("jupyter")
    assert found, "no jupyter command: requirements.txt should install JupyterLab and nbconvert"
    return found


def _env() -> dict:
    """The kernel imports this checkout's emoser, as after ``pip install -e .``."""
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}


def test_the_documented_front_end_is_installed():
    command = shlex.split(_documented("jupyter lab "))
    assert command[2].startswith("chapters/") and (ROOT / command[2]).is_file(), command
    proc = subprocess.run([_jupyter(), "lab", "--version"], capture_output=True, text=True,
                          timeout=120, env=_env(), check=False)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.strip().split(".")[0]) >= 4, proc.stdout


def test_the_documented_nbconvert_command_runs_a_chapter(tmp_path):
    """Exactly the README's command, only with its output folder in tmp_path."""
    command = shlex.split(_documented("jupyter nbconvert "))
    assert command[:5] == ["jupyter", "nbconvert", "--to", "notebook", "--execute"], command
    chapter = ROOT / command[5]
    at = command.index("--output-dir")
    assert command[at + 1].startswith("_build/"), "the executed copy must not go into chapters/"
    command[0], command[at + 1] = _jupyter(), str(tmp_path)
    stored = hashlib.sha256(chapter.read_bytes()).hexdigest()

    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=_env(), check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert hashlib.sha256(chapter.read_bytes()).hexdigest() == stored, "stored notebook changed"
    done = nbformat.read(tmp_path / chapter.name, as_version=4)
    code = [c for c in done.cells if c.cell_type == "code" and c.source.strip()]
    assert code and all(c.execution_count for c in code), "not every code cell ran"
    outputs = [o for c in code for o in c.outputs]
    assert outputs, "the executed chapter has no outputs"
    assert not [o for o in outputs if o.output_type == "error"]


def test_the_cpu_torch_hint_names_pytorchs_cpu_index():
    """``pip install torch==2.13.0`` is a CPU build only where a CPU wheel lies on disk (as on
    the course's CI machine); anywhere else PyPI gives a CUDA build."""
    readme = README.read_text()
    setup = readme[:readme.index("## ")]
    assert f"pip install torch --index-url {CPU_INDEX}" in setup
    assert "torch==" not in setup
    assert "pip install torch==2.13.0" in (ROOT / ".ci" / "run").read_text()  # CI keeps its pin
