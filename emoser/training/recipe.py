"""How the course trains AudioNet: the recipe (optimizer, schedule, clipping, forget bias).

Chapter: chapters/06_training.ipynb
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .history import History
from .loop import adam, call_callback, fit

__all__ = ["Recipe", "RECIPE", "SEVEN_RECIPE", "ORIGINAL_RECIPE", "init_forget_bias",
           "fit_with_recipe", "warm_up"]


@dataclass(frozen=True)
class Recipe:
    """How to train: the optimizer's settings, the schedule and the number of epochs.

    Attributes:
        epochs (int): passes over the training set.
        lr (float): Adam's peak learning rate.
        batch_size (int): examples per batch.
        clip_grad_norm (float | None): rescale each batch's gradient to at most this
            norm (None: no clipping).
        schedule (str): ``"constant"`` (the learning rate never changes) or ``"cosine"``
            (it falls from ``lr`` towards 0 along half a cosine, once per epoch).
        weight_decay (float): Adam's weight decay.
        forget_bias (float | None): initial bias of every LSTM forget gate (None:
            leave PyTorch's default initialization). A positive value starts the
            cell remembering, the classic remedy for an LSTM that learns slowly
            at first (Gers et al., 2000; Jozefowicz et al., 2015); the
            architecture does not change.
        amsgrad (bool): use Adam's AMSGrad variant (Reddi et al., 2018; on by default):
            the denominator of its step never shrinks, so once the gradients have become
            small, a rare large gradient cannot cause a large step that knocks a trained
            model back. Plain Adam (``amsgrad=False``) let seeds collapse: in the seed sweep
            (``benchmarks/seed_sweep.py``) chapter 7's seed 3 on the hand-built engine ended
            at 92.5 % and chapter 11's seed 6 at 51.7 %; chapter 11 shows the measurement.
        bucket (bool | int): group batches by length (see :func:`emoser.train.fit`).
            Off by default: where length predicts the class (sad TESS recordings are
            longer than happy ones), length-sorted batches hold mostly one class,
            which makes training unstable.
        warmup_steps (int): raise the learning rate linearly from ``lr / warmup_steps`` to
            the schedule's value over the first ``warmup_steps`` optimizer steps (0: no
            warm-up). Adam's first steps move every weight by about ``lr`` whatever the
            gradient's size (clipping does not bound them), so a high peak rate can push a
            fresh network where it never recovers (the seed sweep's ``ch11-adam-lr3e-3``).

    Chapter: chapters/06_training.ipynb
    """

    epochs: int = 8
    lr: float = 1e-3
    batch_size: int = 10
    clip_grad_norm: float | None = 1.0
    schedule: str = "cosine"
    weight_decay: float = 0.0
    forget_bias: float | None = 1.0
    amsgrad: bool = True
    bucket: bool | int = False
    warmup_steps: int = 0

    def __post_init__(self):
        if self.schedule not in ("constant", "cosine"):
            raise ValueError("Recipe.schedule must be 'constant' or 'cosine', "
                             f"got {self.schedule!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"Recipe needs warmup_steps >= 0, got {self.warmup_steps}")
        if self.epochs < 0 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError(f"Recipe needs epochs >= 0, batch_size >= 1 and lr > 0, got "
                             f"epochs={self.epochs}, batch_size={self.batch_size}, lr={self.lr}")

    def lr_at(self, epoch: int) -> float:
        """Learning rate used in ``epoch`` (counting from 1).

        Chapter: chapters/06_training.ipynb
        """
        if self.schedule == "constant" or self.epochs < 1:
            return self.lr
        done = min(max(int(epoch) - 1, 0), self.epochs)
        return self.lr * 0.5 * (1.0 + math.cos(math.pi * done / self.epochs))

    def warmup_factor(self, step: int) -> float:
        """The warm-up's factor on the learning rate of optimizer step ``step`` (from 0).

        Chapter: chapters/06_training.ipynb
        """
        if self.warmup_steps <= 0 or step >= self.warmup_steps:
            return 1.0
        return (int(step) + 1) / self.warmup_steps

    def scheduler(self, optimizer: torch.optim.Optimizer):
        """The learning-rate scheduler for ``optimizer`` (None for a constant rate).

        Step it once after every epoch; the cosine schedule is
        ``torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)``.

        Chapter: chapters/06_training.ipynb
        """
        if self.schedule == "constant" or self.epochs < 1:
            return None
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.epochs)

    def replace(self, **changes) -> Recipe:
        """A copy with some settings changed, e.g. ``RECIPE.replace(epochs=20)``.

        Chapter: chapters/06_training.ipynb
        """
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        """The settings as a plain dict (for a checkpoint or a table).

        Chapter: chapters/06_training.ipynb
        """
        return dataclasses.asdict(self)


#: The course's training recipe for AudioNet on raw TESS frames (see :class:`Recipe` for the
#: values). The seed sweep (``benchmarks/seed_sweep.py``, issue 19) checks it on 20 seeds of
#: chapter 7's protocol on every engine and on 10 seeds of chapter 11's seven emotions
#: (:data:`SEVEN_RECIPE`); the chapters take their thresholds from that sweep.
RECIPE = Recipe()

#: Chapter 11's recipe for YAF's seven emotions: :data:`RECIPE` for 16 epochs, with the rate
#: ramped up over the first 98 steps (one epoch: 979 training recordings in batches of 10). In
#: the seed sweep, without the warm-up seed 6 sat at chance for nine epochs and ended at 53 %.
SEVEN_RECIPE = RECIPE.replace(epochs=16, warmup_steps=98)


def init_forget_bias(model: torch.nn.Module, value: float) -> int:
    """Set the bias of every LSTM forget gate in ``model`` to ``value``.

    Looks for modules with a ``forget_gate`` linear layer (as in
    :class:`emoser.lstm.LstmCell`).

    Args:
        model (nn.Module): e.g. an :class:`~emoser.model.AudioNet`.
        value (float): the bias (1.0 is the usual choice).

    Returns:
        int: the number of forget gates changed.

    Raises:
        ValueError: the model has no forget gate.

    Chapter: chapters/06_training.ipynb
    """
    gates = [m.forget_gate for m in model.modules()
             if isinstance(getattr(m, "forget_gate", None), torch.nn.Linear)]
    if not gates:
        raise ValueError(f"{type(model).__name__} has no LSTM forget gate "
                         "(no `forget_gate` linear layer)")
    with torch.no_grad():
        for gate in gates:
            if gate.bias is None:
                raise ValueError("a forget gate has no bias to initialize")
            gate.bias.fill_(float(value))
    return len(gates)


#: The original exercise's settings: Adam, lr 1e-4, batches of 10, 20 epochs, no clipping,
#: PyTorch's default initialization.
ORIGINAL_RECIPE = Recipe(epochs=20, lr=1e-4, batch_size=10, clip_grad_norm=None,
                         schedule="constant", forget_bias=None, amsgrad=False, bucket=False)


def fit_with_recipe(model: torch.nn.Module, train_set, val_set=None, *, recipe: Recipe = RECIPE,
                    seed: int = 0, device: str | torch.device | None = None,
                    log: Callable[[str], Any] | None = print, progress: bool = False,
                    callback: Callable | None = None, shuffle: bool = True) -> History:
    """Train with a :class:`Recipe`: Adam, gradient clipping and the recipe's schedule.

    The same as calling :func:`emoser.train.fit` with the recipe's batch size,
    clipping and bucketing, an Adam optimizer and, for the cosine schedule,
    ``torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=recipe.epochs)``
    stepped after every epoch (chapter 6 writes these lines out). The forget-gate
    bias is *not* set here: that belongs to building the model (see :func:`run_protocol`).

    Args:
        model (nn.Module): the model (moved to ``device``).
        train_set, val_set: data sets as for :func:`emoser.train.fit`.
        recipe (Recipe): the settings (default :data:`RECIPE`).
        seed (int): seed of the batch order.
        device, log, progress: as for :func:`emoser.train.fit`.
        callback (callable | None): called after every epoch, after the schedule's step.
        shuffle (bool): shuffle every epoch (default True). False keeps the data set's
            order, never bucketed, for the defect of chapter 9.

    Returns:
        History: one record per epoch (``params`` also holds the schedule).

    Chapter: chapters/06_training.ipynb
    """
    optimizer = adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay,
                     amsgrad=recipe.amsgrad)
    # with a warm-up, the hook sets every step's rate itself (closed form: lr_at x warm-up)
    hook = warm_up(optimizer, recipe) if recipe.warmup_steps > 0 else None
    scheduler = recipe.scheduler(optimizer) if hook is None else None

    def on_epoch(record, trained):
        if scheduler is not None:
            scheduler.step()  # the rate for the next epoch
        if hook is not None:
            hook.epoch_ended()
        if callback is not None:
            return call_callback(callback, record, trained)
        return None

    history = fit(model, train_set, val_set, epochs=recipe.epochs, lr=recipe.lr,
                  batch_size=recipe.batch_size, seed=seed, progress=progress, device=device,
                  shuffle=shuffle, bucket=recipe.bucket if shuffle else False, log=log,
                  optimizer=optimizer, weight_decay=recipe.weight_decay,
                  clip_grad_norm=recipe.clip_grad_norm, callback=on_epoch)
    if hook is not None:
        hook.remove()
    history.params["schedule"] = recipe.schedule
    return history


class warm_up:  # noqa: N801 - used like a function: ``hook = warm_up(optimizer, recipe)``
    """Scale the learning rate of the first ``recipe.warmup_steps`` optimizer steps.

    Before every step, each parameter group's rate is set to the epoch's rate
    (:meth:`Recipe.lr_at`, the schedule in closed form) times :meth:`Recipe.warmup_factor`, so
    no epoch scheduler is needed beside it. Call :meth:`epoch_ended` after every epoch and
    :meth:`remove` at the end.

    Chapter: chapters/06_training.ipynb
    """

    def __init__(self, optimizer: torch.optim.Optimizer, recipe: Recipe):
        self.recipe, self.step, self.epoch = recipe, 0, 1
        self._handle = optimizer.register_step_pre_hook(self._before_step)

    def _before_step(self, optimizer, args, kwargs):
        rate = self.recipe.lr_at(self.epoch) * self.recipe.warmup_factor(self.step)
        for group in optimizer.param_groups:
            group["lr"] = rate
        self.step += 1

    def epoch_ended(self):
        """Count an epoch (the schedule's rate for the next one is :meth:`Recipe.lr_at`).

        Chapter: chapters/06_training.ipynb
        """
        self.epoch += 1

    def remove(self):
        """Detach the hook from the optimizer.

        Chapter: chapters/06_training.ipynb
        """
        self._handle.remove()
