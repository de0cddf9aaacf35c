"""The training loop: Adam, cross-entropy, shuffled batches, a validation pass per epoch.

The loop fixes the defects of the original exercise: the training data are
shuffled every epoch (the original fed single-class batches, the cause of its long
50 % plateau), the model is in training mode while it learns and in evaluation
mode under ``torch.no_grad()`` while it is measured, every batch carries the true
lengths of its own sequences, and every run is seeded.

Chapter: chapters/06_training.ipynb
"""
from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from . import distributed
from .batches import (
    EpochBatches,
    dataset_lengths,
    eval_loader,
    make_loader,
    progress_bar,
    run_batches,
)
from .history import History
from .runtime import device as resolve_device

__all__ = ["adam", "train_epoch", "fit", "call_callback", "TrainingDiverged"]


class TrainingDiverged(ValueError):
    """The training loss became NaN or inf: the weights are useless from there on.

    Chapter: chapters/06_training.ipynb
    """


def adam(params, **kwargs) -> torch.optim.Adam:
    """``torch.optim.Adam``, fused into one kernel per parameter where this torch can.

    The fused implementation does the same update with a few operations per parameter
    instead of about ten (on the CPU since torch 2.4): AudioNet's optimizer step drops from
    about 0.9 ms to 0.2 ms on 2 cores. Older torch versions get the plain Adam.

    Chapter: chapters/08_speed.ipynb

    Args:
        params: the parameters (or parameter groups) to optimize.
        **kwargs: Adam's settings (``lr``, ``weight_decay``, ``amsgrad`` ...).

    Returns:
        torch.optim.Adam: the optimizer.
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, fused=True, **kwargs)
    except (RuntimeError, ValueError, TypeError):  # a device or dtype this torch cannot fuse
        return torch.optim.Adam(params, **kwargs)


def train_epoch(model, loader, optimizer, device, clip_grad_norm=None, bar=None):
    """One epoch of training: for every batch forward, loss, backward, clipping, a step.

    Returns the mean loss and the accuracy over the epoch (measured while the weights changed).

    Chapter: chapters/06_training.ipynb
    """
    model.train()  # training mode: layers such as dropout would behave as in training
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total_loss = torch.zeros((), dtype=torch.float64, device=device)  # summed on the device:
    correct = torch.zeros((), dtype=torch.int64, device=device)       # no GPU sync per batch
    count = 0
    for x, lengths, y in loader:
        x = x.to(device, non_blocking=True)
        y = y.to(device, non_blocking=True)
        lengths = lengths.to(device, non_blocking=True)  # every batch brings its own lengths
        logits = model(x, lengths)                       # N × classes
        loss = loss_fn(logits, y)                        # summed over the batch
        optimizer.zero_grad(set_to_none=True)
        (loss / y.numel()).backward()                    # the gradient of the batch's mean loss
        if clip_grad_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        optimizer.step()
        total_loss += loss.detach().double()
        correct += (logits.detach().argmax(dim=1) == y).sum()
        count += y.numel()
        if bar is not None:
            bar.update(1)
    if count == 0:
        raise ValueError("the data set is empty")
    return total_loss.item() / count, correct.item() / count


def fit(model: nn.Module, train_set: Dataset, val_set: Dataset | None = None, *, epochs: int = 20,
        lr: float = 1e-3, batch_size: int = 10, seed: int = 0, progress: bool = True,
        device: str | torch.device | None = None, shuffle: bool = True, bucket: bool | int = False,
        log: Callable[[str], Any] | None = print, optimizer=None, weight_decay: float = 0.0,
        callback: Callable[[dict], Any] | None = None,
        clip_grad_norm: float | None = None) -> History:
    """Train ``model`` with Adam and cross-entropy; measure it after every epoch.

    Every epoch the training examples are shuffled with a generator seeded by
    ``seed`` (two runs with the same seed and the same initial weights give the
    same history). With ``bucket`` the shuffled examples are grouped into pools,
    sorted by length inside each pool and cut into batches, and the batches are
    shuffled: batches hold sequences of similar length, so less padding, but
    still change every epoch. Batches come from :func:`emoser.frames.collate_frames`
    as ``(x, lengths, y)``. The model trains in ``model.train()`` mode and is
    validated in ``model.eval()`` mode under ``torch.no_grad()``; it is left in
    evaluation mode.

    Under ``torchrun`` with several processes (a process group of more than one, see
    :mod:`emoser.training.distributed`) the model trains through ``DistributedDataParallel``:
    ``batch_size`` is the global batch, each process takes its shard of it, and the result
    equals one process's to rounding. Otherwise the loop is the single-process one.

    Args:
        model (nn.Module): called as ``model(x, lengths)``, returns logits ``N × C``.
        train_set (Dataset): yields ``(frames T × D, label)``, e.g. a
            :class:`emoser.frames.FrameDataset`.
        val_set (Dataset | None): measured after every epoch when given.
        epochs (int): number of passes over the training set (default 20).
        lr (float): Adam's learning rate (default 1e-3).
        batch_size (int): examples per batch (default 10).
        seed (int): seed of the shuffling generator (default 0).
        progress (bool): show a progress bar (tqdm; also off when ``TQDM_DISABLE`` is set).
        device (str | torch.device | None): where to train; the model is moved there.
            None means :func:`emoser.train.device` (``EMOSER_DEVICE``, else a GPU when available).
        shuffle (bool): shuffle every epoch (default True; False reproduces the
            original's fixed order, for the chapter that shows why it fails).
        bucket (bool | int): group batches by length (default False); an int sets how
            many batches form a pool (True means 8; a pool never holds more than a quarter
            of the data). Less padding, but where length predicts the class (sad TESS
            recordings are longer) most batches then hold one class (chapter 6).
        log (callable | None): receives one line per epoch (default ``print``; None: silent).
        optimizer (torch.optim.Optimizer | callable | None): an optimizer over the
            model's parameters, or a function ``params -> optimizer``; None means
            ``Adam(lr=lr, weight_decay=weight_decay)``.
        weight_decay (float): Adam's weight decay (default 0).
        clip_grad_norm (float | None): rescale each batch's gradient to at most this
            norm (default None: no clipping). An LSTM's gradient can explode now and
            then; clipping keeps one bad batch from wrecking the weights.
        callback (callable | None): called with each epoch's record (and the
            model: ``callback(record, model)`` when it takes two arguments);
            returning True stops training early.

    Returns:
        History: one record per epoch.

    Chapter: chapters/06_training.ipynb
    """
    if epochs < 0 or batch_size < 1:
        raise ValueError(f"need epochs >= 0 and batch_size >= 1, got epochs={epochs}, "
                         f"batch_size={batch_size}")
    if len(train_set) == 0:
        raise ValueError("the training set is empty")
    dev = resolve_device(device)
    model.to(dev)
    if optimizer is None:
        opt = adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    elif isinstance(optimizer, torch.optim.Optimizer):
        opt = optimizer
    else:
        opt = optimizer(model.parameters())
    pool_batches = 0 if not bucket else (8 if bucket is True else int(bucket))
    generator = torch.Generator().manual_seed(int(seed))
    sampler = EpochBatches(dataset_lengths(train_set), batch_size, generator, shuffle=shuffle,
                            pool_batches=pool_batches)
    train_loader = make_loader(train_set, sampler, dev)
    val_loader = eval_loader(val_set, max(batch_size, 32), dev)[0] if val_set is not None else None
    parallel = distributed.active()  # torchrun with several processes: see distributed.py
    if parallel:
        shards, ddp_model = _data_parallel(model, sampler, batch_size, dev)

    history = History(params={"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed,
                              "shuffle": shuffle, "bucket": pool_batches,
                              "weight_decay": weight_decay,
                              "clip_grad_norm": clip_grad_norm,
                              "device": str(dev), "n_train": len(train_set),
                              "n_val": None if val_set is None else len(val_set)})
    if parallel:
        history.params.update({"world_size": shards.world_size,
                               "batch_size_per_process": distributed.shard_size(batch_size,
                                                                                shards.world_size)})
        progress = progress and distributed.is_main()
        log = log if distributed.is_main() else None  # only rank 0 prints
    bar = progress_bar(epochs * len(sampler), progress, "training")
    say = log
    if bar is not None and log is print:
        say = bar.write  # keeps the bar intact in a terminal
    width = len(str(epochs))
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            if bar is not None:
                bar.set_description(f"epoch {epoch}/{epochs}")
            if parallel:
                model.train()
                train_loss, train_acc = distributed.run_sharded(
                    ddp_model, train_set, shards, dev, opt, clip_grad_norm=clip_grad_norm, bar=bar)
            else:
                train_loss, train_acc = train_epoch(model, train_loader, opt, dev,
                                                    clip_grad_norm=clip_grad_norm, bar=bar)
            if not math.isfinite(train_loss):
                raise TrainingDiverged(
                    f"training diverged in epoch {epoch}: the training loss is {train_loss} "
                    f"(lr={history.params['lr']}, clip_grad_norm={clip_grad_norm}, "
                    f"batch_size={batch_size}); nothing was saved")
            val_loss = val_acc = None
            model.eval()
            if val_loader is not None:
                with torch.no_grad():
                    val_loss, val_acc, _ = run_batches(model, val_loader, dev)
            record = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
                      "val_loss": val_loss, "val_acc": val_acc,
                      "seconds": time.perf_counter() - start}
            history.epochs.append(record)
            if say is not None:
                line = (f"epoch {epoch:>{width}}/{epochs}  train loss {train_loss:.4f}  "
                        f"acc {100 * train_acc:5.1f}%")
                if val_acc is not None:
                    line += f"  val loss {val_loss:.4f}  acc {100 * val_acc:5.1f}%"
                say(line + f"  ({record['seconds']:.1f} s)")
            if callback is not None:
                stop = call_callback(callback, record, model)
                if stop is True:
                    break
    finally:
        if bar is not None:
            bar.close()
    model.eval()
    return history


def _data_parallel(model: nn.Module, sampler: EpochBatches, batch_size: int, dev: torch.device):
    """This process's shards of the global batches and the model wrapped in DDP."""
    from torch.nn.parallel import DistributedDataParallel

    world = distributed.world_size()
    if batch_size < world:
        raise ValueError(f"the batch size ({batch_size}, the total over all processes) must be "
                         f"at least the number of processes ({world})")
    ddp_model = DistributedDataParallel(model, device_ids=[dev] if dev.type == "cuda" else None)
    return distributed.ShardedBatches(sampler, distributed.rank(), world), ddp_model


def call_callback(callback, record, model):
    """Call ``callback(record, model)``, or ``callback(record)`` when it takes one argument.

    Chapter: chapters/06_training.ipynb
    """
    try:
        n = len([p for p in inspect.signature(callback).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
    except (TypeError, ValueError):
        n = 1
    return callback(record, model) if n >= 2 else callback(record)
