"""Where and how reproducibly a run computes: seeds, devices and CPU threads.

A run is a function of its seed, its data, its recipe and its engine. On a CPU the engine
includes the number of threads: matrix products split their sums among the threads, so 1 and 2
threads add the same numbers in a different order and, after thousands of steps, train
different weights. The course's runs therefore train on a fixed number of threads,
:data:`TRAINING_THREADS`, whatever the machine has (:func:`fixed_threads`). One thread: the
same on every machine, and never waiting for a second core that is busy with something else
(measured on a 2-core machine with the other core busy: 200 products of 512 × 512 matrices
took 3.2 s on 2 threads, 0.55 s on 1).

Chapter: chapters/06_training.ipynb
"""
from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

__all__ = ["set_seed", "device", "describe_device", "TRAINING_THREADS", "training_threads",
           "fixed_threads"]

#: CPU threads of every training run of the course (``EMOSER_TRAINING_THREADS`` overrides):
#: one, so that a reader's numbers match the book's on any machine.
TRAINING_THREADS = 1


def set_seed(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and PyTorch (CPU and every GPU).

    Args:
        seed (int): the seed.
        deterministic (bool): also make cuDNN pick deterministic algorithms and
            switch off its benchmark mode (default True). False restores the fast,
            non-reproducible defaults.

    Chapter: chapters/06_training.ipynb
    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds every CUDA device as well
    if deterministic:
        # Needed by cuBLAS for reproducible matrix products on a GPU; harmless on a CPU.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = bool(deterministic)
    torch.backends.cudnn.benchmark = not deterministic
    if torch.cuda.is_available():  # deterministic kernels where CUDA has them (warn elsewhere)
        torch.use_deterministic_algorithms(bool(deterministic), warn_only=True)


def training_threads() -> int:
    """CPU threads for training: ``$EMOSER_TRAINING_THREADS`` or :data:`TRAINING_THREADS`.

    Chapter: chapters/07_evaluation.ipynb
    """
    env = os.environ.get("EMOSER_TRAINING_THREADS", "").strip()
    if not env:
        return TRAINING_THREADS
    if not env.isdigit() or int(env) < 1:
        raise ValueError(f"EMOSER_TRAINING_THREADS must be a whole number >= 1, got {env!r}")
    return int(env)


@contextlib.contextmanager
def fixed_threads(n: int | None):
    """Run a block on ``n`` CPU threads (None: leave the setting), then restore it.

    Chapter: chapters/07_evaluation.ipynb
    """
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def device(name: str | torch.device | None = None) -> torch.device:
    """Pick the device to compute on.

    ``name`` wins, then the environment variable ``EMOSER_DEVICE``, then
    ``"cuda"`` when a GPU is available, else ``"cpu"``.

    Args:
        name (str | torch.device | None): e.g. ``"cpu"``, ``"cuda"``, ``"cuda:1"``.

    Returns:
        torch.device: the device.

    Raises:
        RuntimeError: a CUDA device was asked for but none is available.

    Chapter: chapters/06_training.ipynb
    """
    if name is None:
        name = os.environ.get("EMOSER_DEVICE", "").strip() or None
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {str(name)!r} was asked for (argument or EMOSER_DEVICE) "
                           "but PyTorch sees no CUDA GPU; use 'cpu' or switch on a GPU "
                           "(Colab: Runtime > Change runtime type > GPU)")
    return dev



def describe_device(dev: str | torch.device | None = None) -> str:
    """Describe a device in a few words, e.g. ``"cpu (2 threads)"``.

    Args:
        dev (str | torch.device | None): the device; None means :func:`device`.

    Returns:
        str: for a GPU its name, e.g. ``"cuda:0 (NVIDIA H100 80GB HBM3)"``.

    Chapter: chapters/06_training.ipynb
    """
    dev = device(dev)
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    if dev.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({n} thread{'s' if n != 1 else ''})"
    return str(dev)
