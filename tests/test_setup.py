"""A newcomer's set-up (issue 20): what README.md tells them to run works as written.

The hint for a CPU build of torch names PyTorch's CPU wheel index, not a version that only this
machine has as a CPU wheel.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def test_the_cpu_torch_hint_names_pytorchs_cpu_index():
    """``pip install torch==2.13.0`` is a CPU build only where a CPU wheel lies on disk (as on
    the course's CI machine); anywhere else PyPI gives a CUDA build."""
    readme = README.read_text()
    setup = readme[:readme.index("## ")]
    assert f"pip install torch --index-url {CPU_INDEX}" in setup
    assert "torch==" not in setup
    assert "pip install torch==2.13.0" in (ROOT / ".ci" / "run").read_text()  # CI keeps its pin
