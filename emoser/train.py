"""Training and evaluation: seeds, devices, the training loop, metrics and checkpoints.

The loop fixes the defects of the original exercise: the training data are
shuffled every epoch (the original fed single-class batches, the cause of its long
50 % plateau), the model is in training mode while it learns and in evaluation
mode under ``torch.no_grad()`` while it is measured, every batch carries the true
lengths of its own sequences, and every run is seeded.

Chapter: chapters/06_training.ipynb
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .frames import collate_frames
from .splits import stratified_split

__all__ = [
    "set_seed", "device", "describe_device", "stratified_split",
    "History", "adam", "fit", "Evaluation", "evaluate",
    "save_checkpoint", "load_checkpoint", "SeedRuns", "multi_seed",
]

CHECKPOINT_FORMAT = "emoser-checkpoint"
CHECKPOINT_VERSION = 1


# --------------------------------------------------------------------------- seeds and devices
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


_resolve_device = device  # fit() and evaluate() have a parameter called `device`


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


# --------------------------------------------------------------------------- history
_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")


@dataclass
class History:
    """What :func:`fit` measured, one record per epoch.

    Attributes:
        epochs (list[dict]): records ``{epoch, train_loss, train_acc, val_loss,
            val_acc, seconds}`` (epochs count from 1; accuracies are fractions;
            the ``val_`` entries are None without a validation set; ``seconds``
            is the time for the epoch's training and validation).
        params (dict): the settings of the run (lr, batch size, seed, ...).

    ``history["val_acc"]`` gives one column as a list.

    Chapter: chapters/06_training.ipynb
    """

    epochs: list[dict] = field(default_factory=list)
    params: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.epochs)

    def __getitem__(self, column: str) -> list:
        if column not in _COLUMNS:
            raise KeyError(f"unknown column {column!r}; columns: {', '.join(_COLUMNS)}")
        return [record.get(column) for record in self.epochs]

    @property
    def has_validation(self) -> bool:
        """True when the epochs carry validation results.

        Chapter: chapters/06_training.ipynb
        """
        return any(r.get("val_acc") is not None for r in self.epochs)

    @property
    def best_epoch(self) -> int | None:
        """The epoch (counting from 1) with the best validation accuracy.

        Ties go to the lower validation loss, then to the earlier epoch. Without
        a validation set the training accuracy and loss decide. None when empty.

        Chapter: chapters/06_training.ipynb
        """
        if not self.epochs:
            return None
        acc, loss = ("val_acc", "val_loss") if self.has_validation else ("train_acc", "train_loss")
        best = min(self.epochs, key=lambda r: (-r[acc], r[loss], r["epoch"]))
        return best["epoch"]

    @property
    def total_seconds(self) -> float:
        """Seconds spent in all epochs together.

        Chapter: chapters/06_training.ipynb
        """
        return float(sum(r["seconds"] for r in self.epochs))

    def as_table(self, seconds: bool = True) -> str:
        """The history as an aligned plain-text table (accuracies in percent).

        Args:
            seconds (bool): include the time per epoch (leave it out where the
                output must not change between runs).

        Chapter: chapters/06_training.ipynb
        """
        val = self.has_validation
        header = ["epoch", "train loss", "train acc"] + (["val loss", "val acc"] if val else [])
        header += ["seconds"] if seconds else []
        rows = []
        for r in self.epochs:
            row = [str(r["epoch"]), f"{r['train_loss']:.4f}", f"{100 * r['train_acc']:.1f}%"]
            if val:
                row += ["-" if r["val_loss"] is None else f"{r['val_loss']:.4f}",
                        "-" if r["val_acc"] is None else f"{100 * r['val_acc']:.1f}%"]
            if seconds:
                row.append(f"{r['seconds']:.2f}")
            rows.append(row)
        widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h)
                  for i, h in enumerate(header)]
        lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
        lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Plain Python data (lists, dicts, floats) for JSON or a checkpoint.

        Chapter: chapters/06_training.ipynb
        """
        return {"epochs": [dict(r) for r in self.epochs], "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: dict) -> History:
        """Rebuild a History from :meth:`to_dict` output.

        Chapter: chapters/06_training.ipynb
        """
        return cls(epochs=[dict(r) for r in data.get("epochs", [])], params=dict(data.get("params", {})))

    def __str__(self) -> str:
        return self.as_table()


# --------------------------------------------------------------------------- batching
def _dataset_lengths(dataset) -> np.ndarray:
    """Sequence length (number of frames) of every example, without padding anything."""
    lengths = getattr(dataset, "lengths", None)
    if lengths is not None:
        return np.asarray(lengths, dtype=np.int64)
    if isinstance(dataset, torch.utils.data.Subset):
        return _dataset_lengths(dataset.dataset)[np.asarray(dataset.indices, dtype=np.int64)]
    return np.array([len(dataset[i][0]) for i in range(len(dataset))], dtype=np.int64)


class _EpochBatches:
    """Batch sampler: a fresh random batch order every epoch, optionally bucketed by length.

    Bucketing: the shuffled indices are cut into pools of ``pool_batches`` batches
    (at most a quarter of the data each); each pool is sorted by sequence length and
    cut into batches, and the batches of all pools are shuffled. Batches then hold
    sequences of similar length (little padding) while their composition still
    changes from epoch to epoch.
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


def _loader(dataset, sampler, dev: torch.device) -> DataLoader:
    # The data are tensors already in memory: worker processes would only add overhead.
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_frames, num_workers=0,
                      pin_memory=dev.type == "cuda")


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _run_batches(model: nn.Module, loader: DataLoader, dev: torch.device, *, optimizer=None,
                 clip_grad_norm: float | None = None, keep_outputs: bool = False, bar=None):
    """One pass over ``loader``; trains when ``optimizer`` is given.

    Sums stay on the device and are read once at the end: no GPU synchronisation per batch.
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
        loss = loss_fn(logits, y)
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
            (loss / y.numel()).backward()
            if clip_grad_norm is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
            optimizer.step()
        total_loss += loss.detach().double()
        correct += (logits.detach().argmax(dim=1) == y).sum()
        count += y.numel()
        if keep_outputs:
            outputs.append(logits.detach())
        if bar is not None:
            bar.update(1)
    if count == 0:
        raise ValueError("the data set is empty")
    return total_loss.item() / count, correct.item() / count, outputs


def _progress_bar(total: int, enabled: bool, desc: str):
    env_off = os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false", "no")
    if not enabled or env_off:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="batch", leave=False)


# --------------------------------------------------------------------------- fit
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
    dev = _resolve_device(device)
    model.to(dev)
    if optimizer is None:
        opt = adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    elif isinstance(optimizer, torch.optim.Optimizer):
        opt = optimizer
    else:
        opt = optimizer(model.parameters())
    pool_batches = 0 if not bucket else (8 if bucket is True else int(bucket))
    generator = torch.Generator().manual_seed(int(seed))
    sampler = _EpochBatches(_dataset_lengths(train_set), batch_size, generator, shuffle=shuffle,
                            pool_batches=pool_batches)
    train_loader = _loader(train_set, sampler, dev)
    val_loader = _eval_loader(val_set, max(batch_size, 32), dev)[0] if val_set is not None else None

    history = History(params={"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed,
                              "shuffle": shuffle, "bucket": pool_batches, "weight_decay": weight_decay,
                              "clip_grad_norm": clip_grad_norm,
                              "device": str(dev), "n_train": len(train_set),
                              "n_val": None if val_set is None else len(val_set)})
    bar = _progress_bar(epochs * len(sampler), progress, "training")
    say = log
    if bar is not None and log is print:
        say = bar.write  # keeps the bar intact in a terminal
    width = len(str(epochs))
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            if bar is not None:
                bar.set_description(f"epoch {epoch}/{epochs}")
            model.train()
            train_loss, train_acc, _ = _run_batches(model, train_loader, dev, optimizer=opt,
                                                    clip_grad_norm=clip_grad_norm, bar=bar)
            val_loss = val_acc = None
            model.eval()
            if val_loader is not None:
                with torch.no_grad():
                    val_loss, val_acc, _ = _run_batches(model, val_loader, dev)
            record = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
                      "val_loss": val_loss, "val_acc": val_acc, "seconds": time.perf_counter() - start}
            history.epochs.append(record)
            if say is not None:
                line = (f"epoch {epoch:>{width}}/{epochs}  train loss {train_loss:.4f}  "
                        f"acc {100 * train_acc:5.1f}%")
                if val_acc is not None:
                    line += f"  val loss {val_loss:.4f}  acc {100 * val_acc:5.1f}%"
                say(line + f"  ({record['seconds']:.1f} s)")
            if callback is not None:
                stop = _call_callback(callback, record, model)
                if stop is True:
                    break
    finally:
        if bar is not None:
            bar.close()
    model.eval()
    return history


def _call_callback(callback, record, model):
    try:
        n = len([p for p in inspect.signature(callback).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])
    except (TypeError, ValueError):
        n = 1
    return callback(record, model) if n >= 2 else callback(record)


# --------------------------------------------------------------------------- evaluation
@dataclass
class Evaluation:
    """Results of :func:`evaluate` on one data set.

    Attributes:
        loss (float): mean cross-entropy.
        accuracy (float): fraction of correct predictions.
        predictions (np.ndarray): predicted class per example (data set order).
        targets (np.ndarray): true class per example.
        probabilities (np.ndarray): softmax outputs, ``N × C``.
        confusion (np.ndarray): ``C × C`` counts, rows = true class, columns = predicted.

    Chapter: chapters/07_evaluation.ipynb
    """

    loss: float
    accuracy: float
    predictions: np.ndarray
    targets: np.ndarray
    probabilities: np.ndarray
    confusion: np.ndarray

    def per_class_recall(self) -> np.ndarray:
        """Recall of each class (correct / true examples of the class); NaN for an absent class.

        Chapter: chapters/07_evaluation.ipynb
        """
        support = self.confusion.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(support > 0, np.diag(self.confusion) / np.maximum(support, 1), np.nan)

    def macro_f1(self) -> float:
        """Unweighted mean of the per-class F1 scores (classes never true nor predicted are skipped).

        Chapter: chapters/07_evaluation.ipynb
        """
        tp = np.diag(self.confusion).astype(float)
        fp = self.confusion.sum(axis=0) - tp
        fn = self.confusion.sum(axis=1) - tp
        denom = 2 * tp + fp + fn
        present = denom > 0
        return float(np.mean(2 * tp[present] / denom[present])) if present.any() else float("nan")

    def report(self, classes: Sequence[str] | None = None) -> str:
        """A short plain-text summary: accuracy, macro F1 and recall per class.

        Chapter: chapters/07_evaluation.ipynb
        """
        classes = list(classes) if classes is not None else [str(i) for i in range(len(self.confusion))]
        lines = [f"accuracy {100 * self.accuracy:.2f}%  loss {self.loss:.4f}  macro F1 {self.macro_f1():.3f}"]
        width = max(len(c) for c in classes)
        for name, recall, n in zip(classes, self.per_class_recall(), self.confusion.sum(axis=1)):
            lines.append(f"  {name:<{width}}  recall {100 * recall:5.1f}%  (n={n})")
        return "\n".join(lines)


def _eval_loader(dataset, batch_size: int, dev: torch.device):
    """Batches in order of length (little padding); returns the loader and the order used."""
    lengths = _dataset_lengths(dataset)
    order = np.argsort(lengths, kind="stable")
    batches = [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    return _loader(dataset, batches, dev), order


def evaluate(model: nn.Module, dataset: Dataset, batch_size: int = 32,
             device: str | torch.device | None = None, n_classes: int | None = None) -> Evaluation:
    """Measure ``model`` on ``dataset`` in evaluation mode, without gradients.

    Args:
        model (nn.Module): called as ``model(x, lengths)``.
        dataset (Dataset): yields ``(frames T × D, label)``.
        batch_size (int): examples per batch (default 32; does not change the results).
        device (str | torch.device | None): where to compute; None keeps the
            model where it is.
        n_classes (int | None): size of the confusion matrix; None: the model's
            number of outputs.

    Returns:
        Evaluation: loss, accuracy, predictions, targets, probabilities, confusion.

    Chapter: chapters/07_evaluation.ipynb
    """
    if len(dataset) == 0:
        raise ValueError("cannot evaluate on an empty data set")
    if device is None:
        dev = _model_device(model)
    else:
        dev = _resolve_device(device)
        model.to(dev)
    loader, order = _eval_loader(dataset, batch_size, dev)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            loss, accuracy, outputs = _run_batches(model, loader, dev, keep_outputs=True)
    finally:
        model.train(was_training)
    logits = torch.cat(outputs).float().cpu()
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    logits = logits[torch.from_numpy(inverse)]
    probabilities = torch.softmax(logits, dim=1).numpy()
    predictions = probabilities.argmax(axis=1).astype(np.int64)
    targets = np.array([int(dataset[i][1]) for i in range(len(dataset))], dtype=np.int64) \
        if not hasattr(dataset, "labels") else np.asarray(dataset.labels, dtype=np.int64)
    c = n_classes or probabilities.shape[1]
    confusion = np.zeros((c, c), dtype=np.int64)
    np.add.at(confusion, (targets, predictions), 1)
    return Evaluation(loss=loss, accuracy=accuracy, predictions=predictions, targets=targets,
                      probabilities=probabilities, confusion=confusion)


# --------------------------------------------------------------------------- checkpoints
def _plain(value):
    """Turn meta data into types that ``torch.load(weights_only=True)`` accepts."""
    if isinstance(value, History):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint; "
                    "use numbers, strings, lists, dicts, arrays or tensors")


def _constructor_kwargs(model: nn.Module) -> dict | None:
    """Constructor arguments read back from same-named attributes (as AudioNet keeps them), else None."""
    try:
        params = inspect.signature(type(model).__init__).parameters.values()
    except (TypeError, ValueError):
        return None
    kwargs = {}
    for p in params:
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        value = getattr(model, p.name, None)
        if value is None or not isinstance(value, (bool, int, float, str)):
            return None
        kwargs[p.name] = value
    return kwargs


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **meta) -> Path:
    """Save a model's weights, what is needed to rebuild it, and any meta data.

    The constructor arguments come from ``meta["model_kwargs"]``, else from
    ``model.config`` (a dict), else from attributes named like the constructor's
    parameters (AudioNet keeps ``numClass``, ``inDim``, ... that way). The file
    is written to a temporary name first and then renamed, so an interrupted
    save never leaves a broken checkpoint.

    Args:
        path (str | PathLike): the file to write (folders are created).
        model (nn.Module): the model.
        **meta: anything else to keep: classes, rate, frame_length, hop,
            normalizer, history, ... (numbers, strings, lists, dicts, arrays,
            dataclasses such as Normalizer, and History are accepted).

    Returns:
        Path: the path written.

    Raises:
        ValueError: the constructor arguments are unknown.

    Chapter: chapters/07_evaluation.ipynb
    """
    path = Path(path)
    kwargs = meta.pop("model_kwargs", None)
    if kwargs is None:
        kwargs = getattr(model, "config", None)
    if kwargs is None:
        kwargs = _constructor_kwargs(model)
    if not isinstance(kwargs, dict):
        raise ValueError(f"cannot tell how to rebuild {type(model).__name__}: it has no `config` dict and "
                         "does not keep every constructor argument as an attribute; "
                         "pass model_kwargs={...} (its constructor arguments)")
    cls = type(model)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_class": f"{cls.__module__}.{cls.__qualname__}",
        "model_kwargs": _plain(dict(kwargs)),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "meta": _plain(meta),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> tuple[nn.Module, dict]:
    """Rebuild a model saved by :func:`save_checkpoint`.

    Args:
        path (str | PathLike): the checkpoint file.
        map_location: where to put the weights (default ``"cpu"``).

    Returns:
        tuple[nn.Module, dict]: the model (in evaluation mode) and the meta data,
        which also holds ``model_class`` and ``model_kwargs``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not an emoser checkpoint.

    Chapter: chapters/07_evaluation.ipynb
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        raise ValueError(f"{path} is not a readable emoser checkpoint: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an emoser checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    module_name, _, class_name = payload["model_class"].rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{path}: model class {payload['model_class']} cannot be imported: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"{path}: {payload['model_class']} is not a torch.nn.Module")
    model = cls(**payload["model_kwargs"])
    model.load_state_dict(payload["state_dict"])
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)  # load_state_dict copied the weights into CPU parameters
    model.eval()
    meta = dict(payload["meta"])
    meta["model_class"] = payload["model_class"]
    meta["model_kwargs"] = dict(payload["model_kwargs"])
    return model, meta


# --------------------------------------------------------------------------- several seeds
@dataclass
class SeedRuns:
    """Results of the same experiment repeated with several seeds.

    Attributes:
        seeds (list[int]): the seeds.
        results (list): what the run returned for each seed.
        mean (float | dict): mean over seeds (per key when runs return dicts).
        std (float | dict): sample standard deviation over seeds (0 for one seed).

    Chapter: chapters/07_evaluation.ipynb
    """

    seeds: list
    results: list
    mean: Any
    std: Any

    def __str__(self) -> str:
        def fmt(m, s):
            return f"{m:.4f} ± {s:.4f}"
        if isinstance(self.mean, dict):
            body = ", ".join(f"{k} {fmt(self.mean[k], self.std[k])}" for k in self.mean)
        else:
            body = fmt(self.mean, self.std)
        return f"{body} (mean ± std over {len(self.seeds)} seeds)"

    @classmethod
    def of_runs(cls, seeds: Iterable[int], runs: Sequence) -> SeedRuns:
        """Summarise runs that have an ``accuracy``: mean and sample std of their accuracies.

        Chapter: chapters/07_evaluation.ipynb
        """
        mean, std = _mean_std([r.accuracy for r in runs])
        return cls(seeds=list(seeds), results=list(runs), mean=mean, std=std)


def _mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = np.asarray(values, dtype=float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def _score(result) -> float | dict:
    if isinstance(result, Evaluation):
        return float(result.accuracy)
    if isinstance(result, dict):
        return {k: float(v) for k, v in result.items()}
    return float(result)


def multi_seed(run_fn: Callable[[int], Any], seeds: Iterable[int]) -> SeedRuns:
    """Run ``run_fn(seed)`` for each seed and summarise the results.

    Args:
        run_fn (callable): takes a seed, returns a number, a dict of numbers or an
            :class:`Evaluation` (its accuracy is used).
        seeds (iterable of int): the seeds.

    Returns:
        SeedRuns: per-seed results with their mean and standard deviation.

    Chapter: chapters/07_evaluation.ipynb
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("multi_seed needs at least one seed")
    results = [run_fn(s) for s in seeds]
    scores = [_score(r) for r in results]

    if isinstance(scores[0], dict):
        keys = list(scores[0])
        pairs = {k: _mean_std([s[k] for s in scores]) for k in keys}
        mean = {k: p[0] for k, p in pairs.items()}
        std = {k: p[1] for k, p in pairs.items()}
    else:
        mean, std = _mean_std(scores)
    return SeedRuns(seeds=seeds, results=results, mean=mean, std=std)
