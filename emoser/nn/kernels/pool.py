"""ReLU followed by max pooling 2/2 in one step, with a leaner backward pass.

Chapter: chapters/08_speed.ipynb
"""
from __future__ import annotations

import torch

__all__ = ["relu_max_pool2"]


class _ReluMaxPool2(torch.autograd.Function):
    """``max_pool1d(relu(y), 2, 2)`` whose backward keeps two boolean masks, not int64 indices."""

    @staticmethod
    def forward(ctx, y):
        half = y.shape[-1] // 2  # an odd last sample is dropped, as max pooling does
        left, right = y[..., 0:2 * half:2], y[..., 1:2 * half:2]
        take_left = left >= right  # ties go to the first element, as in max_pool1d
        out = torch.where(take_left, left, right).clamp_min_(0)  # ReLU commutes with max
        ctx.save_for_backward(take_left, out > 0)
        ctx.length = y.shape[-1]
        return out

    @staticmethod
    def backward(ctx, grad):
        take_left, positive = ctx.saved_tensors
        grad = grad * positive  # the ReLU's gradient: 0 where the output is 0
        half = grad.shape[-1]
        grad_y = grad.new_zeros(grad.shape[:-1] + (ctx.length,))
        grad_y[..., 0:2 * half:2] = grad * take_left
        grad_y[..., 1:2 * half:2] = grad * ~take_left
        return grad_y


def relu_max_pool2(y: torch.Tensor) -> torch.Tensor:
    """ReLU, then max pooling 2/2 over the last axis: ``F.max_pool1d(F.relu(y), 2, 2)``.

    The same values and the same gradients (ties go to the first element, as in
    ``max_pool1d``), computed faster: the forward takes the larger of each pair, the backward
    routes the gradient with two boolean masks instead of the int64 indices that
    ``max_pool1d`` stores and scatters. Chapter 8 measures what this saves in training.

    Chapter: chapters/08_speed.ipynb

    Args:
        y (torch.Tensor): ``... × L`` (e.g. ``M × C × L`` convolution outputs).

    Returns:
        torch.Tensor: ``... × ⌊L/2⌋``.
    """
    if y.shape[-1] < 2:
        raise ValueError("relu_max_pool2 needs at least 2 samples on the last axis, "
                         f"got {tuple(y.shape)}")
    return _ReluMaxPool2.apply(y)
