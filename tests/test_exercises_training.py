"""Checkers of chapters 6-7's coding exercises: the solution passes, typical mistakes fail."""
from __future__ import annotations

import math

import numpy as np
import torch

from emoser.course import exercises


def clip_right(parameters, max_norm):
    grads = [p.grad for p in parameters if p.grad is not None]
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
    if norm > max_norm:
        for g in grads:
            g.mul_(max_norm / (norm + 1e-6))
    return norm


def clip_per_tensor(parameters, max_norm):
    for p in parameters:
        n = p.grad.norm()
        if n > max_norm:
            p.grad.mul_(max_norm / n)
    return max(p.grad.norm() for p in parameters)


def clip_always(parameters, max_norm):
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in parameters))
    for p in parameters:
        p.grad.mul_(max_norm / norm)
    return norm


def clip_no_return(parameters, max_norm):
    clip_right(parameters, max_norm)


def test_clip_checker(capsys):
    assert exercises.check_clip_gradients(clip_right)
    assert not exercises.check_clip_gradients(clip_per_tensor)
    assert "each tensor on its own" in capsys.readouterr().out
    assert not exercises.check_clip_gradients(clip_always)
    assert "must stay as they are" in capsys.readouterr().out
    assert not exercises.check_clip_gradients(clip_no_return)
    assert "returns None" in capsys.readouterr().out


def test_cosine_checker(capsys):
    def right(epoch, epochs, lr):
        return lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / epochs))

    def ahead(epoch, epochs, lr):
        return lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))

    assert exercises.check_cosine_lr(right)
    assert not exercises.check_cosine_lr(ahead)
    assert "epoch - 1" in capsys.readouterr().out


def test_macro_f1_checker(capsys):
    def right(confusion):
        tp = np.diag(confusion).astype(float)
        denom = 2 * tp + (confusion.sum(0) - tp) + (confusion.sum(1) - tp)
        return float(np.mean(2 * tp[denom > 0] / denom[denom > 0]))

    def accuracy(confusion):
        return np.trace(confusion) / confusion.sum()

    assert exercises.check_macro_f1(right)
    assert not exercises.check_macro_f1(accuracy)
    assert "that is the accuracy" in capsys.readouterr().out


def test_mean_std_checker(capsys):
    assert exercises.check_mean_std(lambda v: (float(np.mean(v)), float(np.std(v, ddof=1))))
    assert not exercises.check_mean_std(lambda v: (float(np.mean(v)), float(np.std(v))))
    assert "ddof=1" in capsys.readouterr().out
    assert not exercises.check_mean_std(lambda v: np.mean(v))
