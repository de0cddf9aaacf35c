"""Calling the fused C kernels: which library fits these tensors, pointers, status codes.

Chapter: chapters/13_under_the_hood.ipynb
"""
from __future__ import annotations

from . import native

__all__ = ["kernels_for", "pointer", "check_status"]


def kernels_for(*tensors):
    """The fused kernels (:mod:`emoser.nn.kernels.native`) for these tensors, or ``None``.

    They must all be contiguous, on the CPU, of one dtype (float32 or float64).

    Chapter: chapters/13_under_the_hood.ipynb
    """
    first = tensors[0]
    if first.device.type != "cpu" or any(t.dtype != first.dtype or not t.is_contiguous()
                                         for t in tensors):
        return None
    return native.kernels(first.dtype)


def pointer(t):
    """The address of a tensor's data for a C call (``None`` for ``None``).

    Chapter: chapters/13_under_the_hood.ipynb
    """
    return None if t is None else t.data_ptr()


def check_status(status: int, what: str) -> None:
    """Turn a kernel's status code into an exception (0: success, -1: out of memory).

    Chapter: chapters/13_under_the_hood.ipynb
    """
    if status == -1:
        raise MemoryError(f"emoser.native: {what} found no memory for its buffers")
    if status != 0:
        raise RuntimeError(f"emoser.native: {what} failed (status {status})")
