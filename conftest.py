"""Repository-wide pytest set-up, for the unit tests and for ``pytest --nbval-lax chapters``.

nbval starts one Jupyter kernel per chapter, and kernels inherit this process's environment,
so it is set here, before any kernel starts:

- ``TQDM_DISABLE=1``: no progress bars in the test log or in outputs;
- ``MPLBACKEND``: this pytest process draws with Agg (never a window), but kernels get the
  inline backend. ``MPLBACKEND=Agg`` inside a kernel would make ``plt.show()`` show nothing
  and warn, which is not how a reader runs the chapters.

Nothing here skips or deselects tests.
"""
import os

import matplotlib

os.environ["TQDM_DISABLE"] = "1"
matplotlib.use("Agg")  # this process (unit tests); read once, at import time of pyplot users
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # inherited by kernels


# --------------------------------------------------------------------------- chapter times
# nbval reports one test per cell; CI's log should also say how long each chapter took.
_seconds_per_file: dict[str, float] = {}


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::", 1)[0]
    _seconds_per_file[path] = _seconds_per_file.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    chapters = {p: s for p, s in _seconds_per_file.items() if p.endswith(".ipynb")}
    if not chapters:
        return
    terminalreporter.section("execution time per chapter (nbval: set-up, cells, tear-down)")
    for path, seconds in sorted(chapters.items()):
        terminalreporter.write_line(f"{seconds:8.1f} s  {path}")
    terminalreporter.write_line(f"{sum(chapters.values()):8.1f} s  all {len(chapters)} chapters")
