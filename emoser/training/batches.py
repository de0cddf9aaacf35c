"""Batches for training and evaluation: a new random order every epoch, one pass over them.

Chapter: chapters/06_training.ipynb
"""
from __future__ import annotations

import math
import os

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ..prep.framing import collate_frames

__all__ = ["dataset_lengths", "EpochBatches", "make_loader", "eval_loader", "run_batches",
           "model_device", "progress_bar"]


def dataset_lengths(dataset) -> np.ndarray:
    """Sequence length (number of frames) of every example, without padding anything.

    Chapter: chapters/06_training.ipynb
    """
    lengths = getattr(dataset, "lengths", None)
    if lengths is not None:
        return np.asarray(lengths, dtype=np.int64)
    if isinstance(dataset, torch.utils.data.Subset):
        return dataset_lengths(dataset.dataset)[np.asarray(dataset.indices, dtype=np.int64)]
    return np.array([len(dataset[i][0]) for i in range(len(dataset))], dtype=np.int64)


class EpochBatches:
    """Batch sampler: a fresh random batch order every epoch, optionally bucketed by length.

    Bucketing: the shuffled indices are cut into pools of ``pool_batches`` batches
    (at most a quarter of the data each); each pool is sorted by sequence length and
    cut into batches, and the batches of all pools are shuffled. Batches then hold
    sequences of similar length (little padding) while their composition still
    changes from epoch to epoch.

    Chapter: chapters/06_training.ipynb
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, generator: torch.Generator | None,
                 shuffle: bool = True, pool_batches: int = 0):
        self.lengths = np.asarray(lengths)
        self.batch_size = int(batch_size)
        self.generator = generator
        self.shuffle = shuffle
        self.pool_batches = int(pool_batches)

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def batches(self) -> list[list[int]]:
        n, bs = len(self.lengths), self.batch_size
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).numpy()
        else:
            order = np.arange(n)
        if self.pool_batches <= 0:
            return [order[i:i + bs].tolist() for i in range(0, n, bs)]
        # at least four pools, so that small data sets still get new batches every epoch
        pool = max(bs, min(bs * self.pool_batches, n // 4))
        batches = []
        for start in range(0, n, pool):
            chunk = order[start:start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batches += [chunk[i:i + bs].tolist() for i in range(0, len(chunk), bs)]
        if self.shuffle:
            perm = torch.randperm(len(batches), generator=self.generator).tolist()
            batches = [batches[i] for i in perm]
        return batches

    def __iter__(self):
        return iter(self.batches())


def make_loader(dataset, sampler, dev: torch.device) -> DataLoader:
    """A DataLoader over ``dataset`` with these batches, collated by ``collate_frames``.

    Chapter: chapters/06_training.ipynb
    """
    # The data are tensors already in memory: worker processes would only add overhead.
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_frames, num_workers=0,
                      pin_memory=dev.type == "cuda")


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's parameters (the CPU for a model without any).

    Chapter: chapters/06_training.ipynb
    """
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def run_batches(model: nn.Module, loader: DataLoader, dev: torch.device, *,
                keep_outputs: bool = False):
    """One pass over ``loader`` that only measures: mean loss, accuracy (and the logits).

    The caller sets evaluation mode and ``torch.no_grad()``; training passes are
    :func:`emoser.training.loop.train_epoch`. Sums stay on the device and are read once at
    the end: no GPU synchronisation per batch.

    Chapter: chapters/07_evaluation.ipynb
    """
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    total_loss = torch.zeros((), dtype=torch.float64, device=dev)
    correct = torch.zeros((), dtype=torch.int64, device=dev)
    count = 0
    outputs = []
    for x, lengths, y in loader:
        x = x.to(dev, non_blocking=True)
        y = y.to(dev, non_blocking=True)
        lengths = lengths.to(dev, non_blocking=True)  # indexes the last valid step, next to x
        logits = model(x, lengths)
        total_loss += loss_fn(logits, y).double()
        correct += (logits.argmax(dim=1) == y).sum()
        count += y.numel()
        if keep_outputs:
            outputs.append(logits)
    if count == 0:
        raise ValueError("the data set is empty")
    return total_loss.item() / count, correct.item() / count, outputs


def progress_bar(total: int, enabled: bool, desc: str):
    """A tqdm progress bar, or None when disabled (also by ``TQDM_DISABLE``).

    Chapter: chapters/06_training.ipynb
    """
    env_off = os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false", "no")
    if not enabled or env_off:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="batch", leave=False)

def eval_loader(dataset, batch_size: int, dev: torch.device):
    """Batches in order of length (little padding); returns the loader and the order used.

    Chapter: chapters/06_training.ipynb
    """
    lengths = dataset_lengths(dataset)
    order = np.argsort(lengths, kind="stable")
    batches = [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    return make_loader(dataset, batches, dev), order
