"""Checkers for the coding exercises of chapters 6-7: call one with your function, read its line.

Every checker runs your function on a few inputs, compares it with the package's (or
PyTorch's) answer and prints one line: what is right, or what differs and a hint where to
look. It returns True when everything matches, so a notebook can also assert it.

Chapter: chapters/06_training.ipynb, chapters/07_evaluation.ipynb
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = ["check_clip_gradients", "check_cosine_lr", "check_macro_f1", "check_mean_std"]


def _say(ok: bool, message: str) -> bool:
    print(("✓ " if ok else "✗ ") + message)
    return ok


# --------------------------------------------------------------------------- chapters 6-7
# (training and evaluation; checkers of other chapters live in their own sections)

def check_clip_gradients(clip: Callable) -> bool:
    """Check ``clip(parameters, max_norm)`` against ``torch.nn.utils.clip_grad_norm_``.

    It must rescale all gradients together so that their joint (global) L2 norm is at most
    ``max_norm``, leave them alone when the norm is smaller, and return the norm before
    clipping.

    Chapter: chapters/06_training.ipynb
    """
    gen = torch.Generator().manual_seed(0)
    for max_norm, scale in ((1.0, 3.0), (1.0, 0.1), (0.5, 10.0)):
        mine = [torch.nn.Parameter(torch.zeros(s)) for s in ((4, 3), (5,), (2, 2, 2))]
        ref = [torch.nn.Parameter(torch.zeros(s)) for s in ((4, 3), (5,), (2, 2, 2))]
        for a, b in zip(mine, ref):
            g = scale * torch.randn(a.shape, generator=gen)
            a.grad, b.grad = g.clone(), g.clone()
        expected_norm = float(torch.nn.utils.clip_grad_norm_(ref, max_norm))
        returned = clip(mine, max_norm)
        worst = max(float((a.grad - b.grad).abs().max()) for a, b in zip(mine, ref))
        if worst > 1e-5:
            after = float(torch.sqrt(sum((p.grad ** 2).sum() for p in mine)))
            each = max(float(p.grad.norm()) for p in mine)
            if expected_norm <= max_norm:
                what = "gradients whose total norm is below max_norm must stay as they are"
            elif each <= max_norm + 1e-5 < after:
                what = ("you clipped each tensor on its own; scale all gradients together by "
                        "one factor, max_norm / (their joint norm)")
            else:
                what = (f"after clipping to {max_norm} the total norm should be "
                        f"{max_norm:.4f}, yours is {after:.4f}")
            return _say(False, f"gradients differ from clip_grad_norm_'s by up to {worst:.3g}: "
                               + what)
        if returned is None:
            return _say(False, "your function returns None: return the total norm before "
                               "clipping (a number), as clip_grad_norm_ does")
        if abs(float(returned) - expected_norm) > 1e-4 * max(1.0, expected_norm):
            return _say(False, f"you return a norm of {float(returned):.4f}, the gradients' "
                               f"total norm before clipping is {expected_norm:.4f}")
    return _say(True, "your clipping matches torch.nn.utils.clip_grad_norm_ (norm below, at "
                      "and above max_norm)")


def check_cosine_lr(cosine_lr: Callable) -> bool:
    """Check ``cosine_lr(epoch, epochs, lr)`` (epochs counted from 1) against the recipe's rate.

    Chapter: chapters/06_training.ipynb
    """
    from ...training.recipe import Recipe

    for epochs, lr in ((8, 1e-3), (5, 0.1)):
        recipe = Recipe(epochs=epochs, lr=lr)
        for epoch in range(1, epochs + 1):
            got, want = float(cosine_lr(epoch, epochs, lr)), recipe.lr_at(epoch)
            if abs(got - want) > 1e-9 * max(1.0, lr) + 1e-12:
                hint = ""
                if epoch == 1:
                    hint = (" -- the first epoch uses the full rate: count finished epochs, "
                            "epoch - 1")
                elif abs(got - recipe.lr_at(epoch + 1)) < 1e-12:
                    hint = " -- one epoch ahead: epoch 1 must give lr itself"
                return _say(False, f"epoch {epoch} of {epochs} (lr {lr}): you give {got:.6g}, "
                                   f"the recipe uses {want:.6g}{hint}")
    return _say(True, "your schedule gives the recipe's learning rate in every epoch")


def check_macro_f1(macro_f1: Callable) -> bool:
    """Check ``macro_f1(confusion)`` (rows: true class) against :meth:`Evaluation.macro_f1`.

    Chapter: chapters/07_evaluation.ipynb
    """
    from ...training.evaluation import Evaluation

    cases = [np.array([[50, 10], [5, 55]]), np.array([[60, 0], [0, 60]]),
             np.array([[30, 5, 5], [0, 40, 0], [10, 10, 20]]),
             np.array([[10, 0, 2], [0, 0, 0], [3, 0, 7]])]  # class 1 never true nor predicted
    for confusion in cases:
        n = len(confusion)
        want = Evaluation(0.0, 0.0, np.zeros(0), np.zeros(0), np.zeros((0, n)),
                          confusion).macro_f1()
        got = float(macro_f1(confusion))
        if abs(got - want) > 1e-9:
            accuracy = np.trace(confusion) / confusion.sum()
            hint = ""
            if abs(got - accuracy) < 1e-9:
                hint = " -- that is the accuracy; F1 is computed per class, then averaged"
            elif np.isnan(got) or (confusion.sum(axis=1) == 0).any():
                hint = (" -- skip classes that are never true nor predicted (0/0), as "
                        "Evaluation.macro_f1 does")
            return _say(False, f"for the confusion matrix {confusion.tolist()} you give "
                               f"{got:.4f}, the macro F1 is {want:.4f}{hint}")
    return _say(True, "your macro F1 matches Evaluation.macro_f1 on two, three and "
                      "absent classes")


def check_mean_std(mean_std: Callable) -> bool:
    """Check ``mean_std(accuracies)`` -> (mean, sample standard deviation), as ``seed_table``.

    Chapter: chapters/07_evaluation.ipynb
    """
    for values in ([1.0, 0.9917, 0.9917, 1.0, 1.0], [0.5, 0.7], [0.8, 0.9, 1.0]):
        v = np.asarray(values)
        got = mean_std(values)
        if not isinstance(got, tuple) or len(got) != 2:
            return _say(False, "return a pair: (mean, standard deviation)")
        mean, std = (float(x) for x in got)
        if abs(mean - v.mean()) > 1e-12:
            return _say(False, f"the mean of {values} is {v.mean():.6f}, you give {mean:.6f}")
        if abs(std - v.std(ddof=1)) > 1e-12:
            hint = (" -- that is the population std (np.std's default, ddof=0); over a few seeds "
                    "use the sample std, ddof=1" if abs(std - v.std()) < 1e-12 else "")
            return _say(False, f"the sample standard deviation of {values} is "
                               f"{v.std(ddof=1):.6f}, you give {std:.6f}{hint}")
    return _say(True, "mean and sample standard deviation as seed_table reports them")
