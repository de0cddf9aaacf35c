"""Switch on one defect of the original pipeline at a time, inside the fixed pipeline.

The fixed pipeline is :func:`emoser.experiments.run_protocol`: a seeded stratified split,
normalization statistics from the training waveforms only, frames with their own lengths,
shuffled batches. :func:`run_with_defect` runs exactly that (same split, same initial weights,
same batches) with *one* of the original's result-changing defects put back:

``"leaky_stats"``
    the scalar mean and standard deviation are computed over every waveform, test set included
    (the original; :func:`emoser.original.original_prepare` with ``leak_stats=True``);
``"class_ordered"``
    the training examples stay in loading order, all of one class and then all of the other,
    and are never shuffled, so every batch holds a single class (``class_ordered=True`` with
    ``shuffle=False``);
``"misaligned_lengths"``
    every example is told the length of the example at the same *position* of the unsplit data
    set (``misaligned_lengths=True``): its frames are cut off, or extended by zero frames, at
    that wrong length, exactly as the original read its LSTM state at the wrong step.

The test set is measured after every epoch (monitoring only: nothing is chosen on it), so the
curves of the conditions can be compared side by side (:func:`plot_defect_curves`,
:func:`defect_table`).

Chapter: chapters/09_what_went_wrong.ipynb
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .experiments import RECIPE, Recipe, fit_with_recipe, init_forget_bias
from .frames import FrameDataset, Normalizer
from .model import AudioNet
from .splits import stratified_split
from .train import Evaluation, History, evaluate, set_seed

__all__ = [
    "DEFECTS", "DEFECT_TITLES", "misaligned_lengths", "ToldLengths", "DefectRun", "run_with_defect",
    "plateau_epochs", "first_epoch_at", "defect_table", "plot_defect_curves", "autograd_saved_bytes",
]

#: The result-changing defects :func:`run_with_defect` can switch on (one at a time).
DEFECTS = ("leaky_stats", "class_ordered", "misaligned_lengths")

#: Short human-readable names of the conditions (``None`` is the fixed pipeline).
DEFECT_TITLES = {None: "fixed pipeline", "leaky_stats": "normalization leakage",
                 "class_ordered": "class-ordered, never shuffled",
                 "misaligned_lengths": "misaligned lengths"}


# --------------------------------------------------------------------------- misaligned lengths
def misaligned_lengths(all_lengths, idx) -> np.ndarray:
    """The lengths the original told the examples ``idx`` (in this order).

    The original built one length vector for the *unsplit* data set and indexed it by
    position: batch ``k`` of a split read ``lengths[10k:10k+10]``. So the example at position
    ``j`` of a split was told ``all_lengths[j]``, the length of example ``j`` of the whole
    data set, not its own ``all_lengths[idx[j]]``.

    Args:
        all_lengths (array-like of int): frames of every example of the unsplit data set.
        idx (array-like of int): the examples of one split, in the order they are fed.

    Returns:
        np.ndarray: ``all_lengths[:len(idx)]`` (int64).

    Chapter: chapters/09_what_went_wrong.ipynb
    """
    all_lengths = np.asarray(all_lengths, dtype=np.int64)
    idx = np.asarray(idx)
    if idx.size > all_lengths.size:
        raise ValueError(f"misaligned_lengths: {idx.size} indices but only {all_lengths.size} lengths")
    return all_lengths[: idx.size].copy()


class ToldLengths(Dataset):
    """A frame data set whose examples are told other lengths than their own.

    Example ``i`` yields its frames cut to ``lengths[i]`` frames, or extended by zero frames
    to ``lengths[i]``. For a model that reads its LSTM state at step ``length - 1`` this is
    exactly what a wrong length did in the original, whose every sequence was padded with zero
    frames (that went through the CNN) to the longest one of the data set.

    Args:
        dataset (FrameDataset): the real examples (``frames``, ``labels``, ``lengths``).
        lengths (array-like of int): the length told to each example (>= 1).

    Attributes:
        lengths (np.ndarray): the told lengths (batching and the model see these).
        true_lengths (np.ndarray): the examples' own lengths.
        labels (np.ndarray): the labels of ``dataset``.

    Chapter: chapters/09_what_went_wrong.ipynb
    """

    def __init__(self, dataset: FrameDataset, lengths):
        lengths = np.asarray(lengths, dtype=np.int64)
        if lengths.shape != (len(dataset),):
            raise ValueError(f"ToldLengths: {len(dataset)} examples but lengths of shape {lengths.shape}")
        if lengths.size and lengths.min() < 1:
            raise ValueError(f"ToldLengths: every told length must be >= 1, got {int(lengths.min())}")
        self.dataset = dataset
        self.lengths = lengths
        self.true_lengths = np.asarray(dataset.lengths, dtype=np.int64)
        self.labels = np.asarray(dataset.labels, dtype=np.int64)

    @property
    def n_wrong(self) -> int:
        """How many examples are told a length that is not their own.

        Chapter: chapters/09_what_went_wrong.ipynb
        """
        return int((self.lengths != self.true_lengths).sum())

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        frames, label = self.dataset[index]
        told = int(self.lengths[index])
        if told <= frames.shape[0]:
            return frames[:told], label
        pad = frames.new_zeros(told - frames.shape[0], frames.shape[1])
        return torch.cat([frames, pad]), label


# --------------------------------------------------------------------------- one run
@dataclass
class DefectRun:
    """One run of :func:`run_with_defect`.

    Attributes:
        defect (str | None): the defect switched on (None: the fixed pipeline).
        model (torch.nn.Module): the trained model.
        history (History): per epoch ``train_acc``/``train_loss`` (measured while training,
            as the original printed them) and ``val_acc``/``val_loss``, which hold the
            **test** set's accuracy and loss after the epoch.
        evaluation (Evaluation): the test set after the last epoch.
        seed (int): seed of split, initial weights and batch order.
        recipe (Recipe): the training settings.
        train_idx (np.ndarray): training examples, in the order they were fed (unshuffled runs).
        test_idx (np.ndarray): test examples.
        normalizer (Normalizer): the statistics used.
        wrong_lengths (dict): ``{"train": n, "test": n}`` examples told a wrong length.

    Chapter: chapters/09_what_went_wrong.ipynb
    """

    defect: str | None
    model: torch.nn.Module
    history: History
    evaluation: Evaluation
    seed: int
    recipe: Recipe
    train_idx: np.ndarray
    test_idx: np.ndarray
    normalizer: Normalizer
    wrong_lengths: dict

    @property
    def title(self) -> str:
        """Human-readable name of the condition.

        Chapter: chapters/09_what_went_wrong.ipynb
        """
        return DEFECT_TITLES.get(self.defect, str(self.defect))

    @property
    def train_acc(self) -> list[float]:
        """Training accuracy per epoch (fractions).

        Chapter: chapters/09_what_went_wrong.ipynb
        """
        return [float(a) for a in self.history["train_acc"]]

    @property
    def test_acc(self) -> list[float]:
        """Test accuracy after every epoch (fractions).

        Chapter: chapters/09_what_went_wrong.ipynb
        """
        return [float(a) for a in self.history["val_acc"]]

    @property
    def accuracy(self) -> float:
        """Test accuracy after the last epoch.

        Chapter: chapters/09_what_went_wrong.ipynb
        """
        return float(self.evaluation.accuracy)


def run_with_defect(data, defect: str | None = None, seed: int = 0, *, recipe: Recipe = RECIPE,
                    test_size: float = 0.3, frame_length: int = 500,
                    model_kwargs: dict | None = None, device: str | torch.device | None = None,
                    dtype: torch.dtype = torch.float32,
                    log: Callable[[str], Any] | None = None) -> DefectRun:
    """Run the fixed pipeline with at most one defect of the original switched on.

    With ``defect=None`` this trains the same model on the same batches as
    :func:`emoser.experiments.run_protocol` with the same ``seed`` and ``recipe`` (stratified
    split, training-set statistics, shuffled batches (bucketed only if the recipe says so), the
    recipe's forget-gate bias, Adam with the recipe's clipping and schedule), and in addition measures the test set
    after every epoch.

    Args:
        data: object with ``waves`` (list of 1-D arrays) and ``labels`` (int array), in
            loading order (for TESS: class by class, as the original loaded it).
        defect (str | None): one of :data:`DEFECTS`, or None.
        seed (int): seed of the split, the initial weights and the batch order.
        recipe (Recipe): the training settings.
        test_size (float): fraction of each class held out for testing.
        frame_length (int): samples per frame.
        model_kwargs (dict | None): extra :class:`~emoser.model.AudioNet` arguments.
        device (str | torch.device | None): where to train (None: GPU if available).
        dtype (torch.dtype): dtype of frames and model.
        log (callable | None): receives one line per epoch.

    Returns:
        DefectRun: the model, the per-epoch history (test set in the ``val_`` columns),
        the final test evaluation and what was switched on.

    Raises:
        ValueError: unknown defect, or waveforms and labels of different lengths.

    Chapter: chapters/09_what_went_wrong.ipynb
    """
    if defect is not None and defect not in DEFECTS:
        raise ValueError(f"unknown defect {defect!r}; choose one of {', '.join(DEFECTS)} or None")
    seed = int(seed)
    labels = np.asarray(data.labels, dtype=np.int64)
    waves = list(data.waves)
    if len(waves) != len(labels):
        raise ValueError(f"data has {len(waves)} waveforms but {len(labels)} labels")

    train_idx, test_idx = stratified_split(labels, test_size=test_size, seed=seed)  # both sorted
    shuffle = True
    if defect == "class_ordered":  # loading order, grouped by class; never shuffled
        train_idx = train_idx[np.argsort(labels[train_idx], kind="stable")]
        shuffle = False
    stats_from = waves if defect == "leaky_stats" else [waves[i] for i in train_idx]
    normalizer = Normalizer.fit(stats_from)

    def dataset(idx):
        return FrameDataset([waves[i] for i in idx], labels[idx], frame_length, normalizer=normalizer,
                            dtype=dtype)

    train_set, test_set = dataset(train_idx), dataset(test_idx)
    wrong = {"train": 0, "test": 0}
    if defect == "misaligned_lengths":
        step = frame_length  # hop = frame length: frames = ceil(samples / frame_length)
        all_lengths = np.array([max(1, -(-len(w) // step)) for w in waves], dtype=np.int64)
        train_set = ToldLengths(train_set, misaligned_lengths(all_lengths, train_idx))
        test_set = ToldLengths(test_set, misaligned_lengths(all_lengths, test_idx))
        wrong = {"train": train_set.n_wrong, "test": test_set.n_wrong}

    n_classes = int(labels.max()) + 1
    set_seed(seed)
    model = AudioNet(**{"numClass": n_classes, "inDim": int(frame_length), **(model_kwargs or {})}).to(dtype)
    if recipe.forget_bias is not None:
        init_forget_bias(model, recipe.forget_bias)
    history = fit_with_recipe(model, train_set, test_set, recipe=recipe, seed=seed, device=device,
                              log=log, progress=False, shuffle=shuffle)
    history.params.update({"defect": defect, "monitor": "test set"})
    evaluation = evaluate(model, test_set, n_classes=n_classes)
    return DefectRun(defect=defect, model=model, history=history, evaluation=evaluation, seed=seed,
                     recipe=recipe, train_idx=np.asarray(train_idx), test_idx=np.asarray(test_idx),
                     normalizer=normalizer, wrong_lengths=wrong)


# --------------------------------------------------------------------------- summaries
def plateau_epochs(accuracies: Sequence[float], level: float = 0.5, tol: float = 0.05) -> int:
    """How many epochs, from the first, the accuracy stays within ``level ± tol``.

    Args:
        accuracies (sequence of float): one accuracy (fraction) per epoch.
        level (float): the chance level (0.5 for two balanced classes).
        tol (float): how far from ``level`` still counts as the plateau.

    Returns:
        int: the length of the leading plateau (0 if the first epoch is already off it).

    Chapter: chapters/09_what_went_wrong.ipynb
    """
    n = 0
    for a in accuracies:
        if abs(float(a) - level) > tol:
            break
        n += 1
    return n


def first_epoch_at(accuracies: Sequence[float], threshold: float) -> int | None:
    """The first epoch (counting from 1) whose accuracy reaches ``threshold``; None if never.

    Chapter: chapters/09_what_went_wrong.ipynb
    """
    for epoch, a in enumerate(accuracies, start=1):
        if float(a) >= threshold:
            return epoch
    return None


def defect_table(runs: Sequence[DefectRun], threshold: float = 0.9) -> str:
    """Plain-text table of several :class:`DefectRun`: one row per condition.

    Columns: the condition, the final and the best test accuracy, the epochs spent on the
    50 % plateau (test accuracy within 50 ± 5 %, from epoch 1) and the first epoch whose
    test accuracy reaches ``threshold``.

    Chapter: chapters/09_what_went_wrong.ipynb
    """
    header = ["condition", "final test acc", "best test acc", "epochs at 50 %",
              f"first epoch >= {100 * threshold:.0f} %"]
    rows = []
    for run in runs:
        acc = run.test_acc
        first = first_epoch_at(acc, threshold)
        rows.append([run.title, f"{100 * run.accuracy:.1f}%", f"{100 * max(acc):.1f}%",
                     f"{plateau_epochs(acc)} of {len(acc)}", "never" if first is None else str(first)])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))]
    lines += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
              for r in rows]
    return "\n".join(lines)


def plot_defect_curves(runs: Sequence[DefectRun], title: str | None = None, ncols: int | None = None):
    """Training and test accuracy per epoch, one panel per condition, all on the same axes.

    Args:
        runs (sequence of DefectRun): the conditions to compare.
        title (str | None): a title over all panels.
        ncols (int | None): panels per row (default: all in one row up to 4).

    Returns:
        matplotlib.figure.Figure: the figure.

    Chapter: chapters/09_what_went_wrong.ipynb
    """
    import matplotlib.pyplot as plt

    runs = list(runs)
    if not runs:
        raise ValueError("plot_defect_curves needs at least one run")
    ncols = ncols or min(len(runs), 4)
    nrows = -(-len(runs) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 3.2 * nrows), sharex=True, sharey=True,
                             squeeze=False, constrained_layout=True)
    for ax, run in zip(axes.flat, runs):
        epochs = np.arange(1, len(run.history) + 1)
        ax.axhline(50, color="0.5", lw=0.8, ls=":", label="chance (50 %)")
        ax.plot(epochs, 100 * np.array(run.train_acc), "-o", ms=3, color="C0", label="training")
        ax.plot(epochs, 100 * np.array(run.test_acc), "--s", ms=3, color="C1", label="test")
        ax.set_title(run.title)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 102)
    for ax in list(axes.flat)[len(runs):]:
        ax.set_visible(False)
    axes.flat[0].legend(loc="lower right", fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- no_grad
def autograd_saved_bytes(fn: Callable[[], Any]) -> int:
    """Bytes of the tensors autograd keeps for the backward pass while ``fn()`` runs.

    Under ``torch.no_grad()`` nothing is kept; without it, every operation on tensors that
    require gradients saves its inputs or outputs until the result is freed. Storages shared
    by several saved tensors are counted once.

    Args:
        fn (callable): runs a forward pass, e.g. ``lambda: model(x, lengths)``.

    Returns:
        int: bytes of distinct storages saved for backward.

    Chapter: chapters/09_what_went_wrong.ipynb
    """
    seen: dict[int, int] = {}

    def pack(t):
        try:
            storage = t.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()
        except (RuntimeError, NotImplementedError):  # e.g. tensors without storage
            pass
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        result = fn()
    del result
    return int(sum(seen.values()))
