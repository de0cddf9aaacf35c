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
