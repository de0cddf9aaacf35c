"""Switch on one defect of the original pipeline at a time, inside the fixed pipeline.

The fixed pipeline is :func:`emoser.experiments.prepare` then
:func:`~emoser.experiments.train_and_test`: a seeded stratified split, normalization statistics
from the training waveforms only, frames with their own lengths, shuffled batches.
:func:`run_with_defect` runs exactly that (same split, same initial weights, same batches) with
*one* of the original's result-changing defects put back between the two calls
(:func:`put_back`):

``"leaky_stats"``
    the scalar mean and standard deviation are computed over every waveform, test set included
    (the original; :func:`emoser.experiments.original.original_prepare` with
    ``leak_stats=True``);
``"class_ordered"``
    the training examples stay in loading order, all of one class and then all of the other,
    and are never shuffled, so every batch holds a single class (``class_ordered=True`` with
    ``shuffle=False``);
``"misaligned_lengths"``
    every example is told the length of the example at the same *position* of the unsplit data
    set (``misaligned_lengths=True``): its frames are cut off, or extended by zero frames, at
    that wrong length, exactly as the original read its LSTM state at the wrong step.

The test set is measured after every epoch (monitoring only: nothing is chosen on it), so the
curves of the conditions can be compared side by side
(:func:`emoser.course.plot_defect_curves`, :func:`defect_table`).

Chapter: chapters/09_what_went_wrong.ipynb
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..common import DEFAULT_FRAME_LENGTH, format_table
from ..prep.framing import FrameDataset
from ..prep.normalize import Normalizer
from ..training.recipe import RECIPE, Recipe
from .pipeline import Prepared, Run, prepare, train_and_test

__all__ = [
    "DEFECTS", "DEFECT_TITLES", "misaligned_lengths", "ToldLengths", "DefectRun", "put_back",
    "run_with_defect", "plateau_epochs", "first_epoch_at", "defect_table",
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
        raise ValueError(f"misaligned_lengths: {idx.size} indices but only {all_lengths.size} "
                         "lengths")
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
            raise ValueError(f"ToldLengths: {len(dataset)} examples but lengths of shape "
                             f"{lengths.shape}")
        if lengths.size and lengths.min() < 1:
            raise ValueError("ToldLengths: every told length must be >= 1, got "
                             f"{int(lengths.min())}")
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
class DefectRun(Run):
    """One run of :func:`run_with_defect`: a :class:`~emoser.experiments.Run` and its defect.

    The history's ``val_acc``/``val_loss`` hold the **test** set's accuracy and loss after
    every epoch (monitoring only); ``train_acc``/``train_loss`` were measured while
    training, as the original printed them. ``train_idx`` is sorted, as in every run.

    Attributes:
        defect (str | None): the defect switched on (None: the fixed pipeline).
        wrong_lengths (dict): ``{"train": n, "test": n}`` examples told a wrong length.

    Chapter: chapters/09_what_went_wrong.ipynb
    """

    defect: str | None = None
    wrong_lengths: dict = field(default_factory=dict)

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


def put_back(prepared: Prepared, defect: str | None) -> tuple[Prepared, dict]:
    """The prepared sets of the fixed pipeline with one defect of the original put back.

    Args:
        prepared (Prepared): from :func:`~emoser.experiments.prepare` (no validation set).
        defect (str | None): one of :data:`DEFECTS`, or None (nothing changes).

    Returns:
        tuple[Prepared, dict]: the changed copy, and ``{"train": n, "test": n}``: how many
        examples are told a wrong length.

    Chapter: chapters/09_what_went_wrong.ipynb
    """
    if defect is not None and defect not in DEFECTS:
        raise ValueError(f"unknown defect {defect!r}; choose one of {', '.join(DEFECTS)} or None")
    wrong = {"train": 0, "test": 0}
    if defect == "leaky_stats":  # statistics of every waveform, test set included
        leaky = Normalizer.fit(list(prepared.waves))
        return prepared.replace(normalizer=leaky,
                                train_set=prepared.frame_set(prepared.train_idx, leaky),
                                test_set=prepared.frame_set(prepared.test_idx, leaky)), wrong
    if defect == "class_ordered":  # loading order, grouped by class; never shuffled
        order = prepared.train_idx[np.argsort(prepared.labels[prepared.train_idx], kind="stable")]
        return prepared.replace(train_idx=order, train_set=prepared.frame_set(order),
                                shuffle=False), wrong
    if defect == "misaligned_lengths":
        step = prepared.hop  # frames = ceil(samples / hop) for hop = frame length
        all_lengths = np.array([max(1, -(-len(w) // step)) for w in prepared.waves], dtype=np.int64)
        train_set = ToldLengths(prepared.train_set,
                                misaligned_lengths(all_lengths, prepared.train_idx))
        test_set = ToldLengths(prepared.test_set,
                               misaligned_lengths(all_lengths, prepared.test_idx))
        wrong = {"train": train_set.n_wrong, "test": test_set.n_wrong}
        return prepared.replace(train_set=train_set, test_set=test_set), wrong
    return prepared, wrong


def run_with_defect(data, defect: str | None = None, seed: int = 0, *, recipe: Recipe = RECIPE,
                    test_size: float = 0.3, frame_length: int = DEFAULT_FRAME_LENGTH,
                    model_kwargs: dict | None = None, device: str | torch.device | None = None,
                    dtype: torch.dtype = torch.float32,
                    log: Callable[[str], Any] | None = None) -> DefectRun:
    """The course's pipeline with at most one defect of the original put back.

    ``prepare`` → :func:`put_back` → ``train_and_test``: with ``defect=None`` this is
    :func:`emoser.experiments.run_protocol` with the same ``seed`` and ``recipe`` (same split,
    weights and batches) by construction, and it also measures the test set after every epoch.

    Args:
        data: object with ``waves`` (list of 1-D arrays) and ``labels`` (int array), in
            loading order (for TESS: class by class, as the original loaded it).
        defect (str | None): one of :data:`DEFECTS`, or None.
        seed (int): seed of the split, the initial weights and the batch order.
        recipe (Recipe): the training settings.
        test_size (float): fraction of each class held out for testing.
        frame_length (int): samples per frame.
        model_kwargs (dict | None): extra :class:`~emoser.nn.AudioNet` arguments.
        device (str | torch.device | None): where to train (None: GPU if available).
        dtype (torch.dtype): dtype of frames and model.
        log (callable | None): receives one line per epoch.

    Returns:
        DefectRun: the run, with the test set after every epoch in the ``val_`` columns.

    Raises:
        ValueError: unknown defect, or waveforms and labels of different lengths.

    Chapter: chapters/09_what_went_wrong.ipynb
    """
    if defect is not None and defect not in DEFECTS:
        raise ValueError(f"unknown defect {defect!r}; choose one of {', '.join(DEFECTS)} or None")
    prepared = prepare(data, seed, test_size=test_size, frame_length=frame_length, dtype=dtype)
    prepared, wrong = put_back(prepared, defect)
    run = train_and_test(prepared, recipe=recipe, model_kwargs=model_kwargs, device=device,
                         log=log, monitor_test=True)
    run.history.params["defect"] = defect
    fields = {f.name: getattr(run, f.name) for f in dataclasses.fields(run)}
    return DefectRun(**fields, defect=defect, wrong_lengths=wrong)


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
                     f"{plateau_epochs(acc)} of {len(acc)}",
                     "never" if first is None else str(first)])
    return format_table(rows, header, align="l" + "r" * (len(header) - 1))
