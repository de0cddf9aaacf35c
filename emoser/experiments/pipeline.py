"""The course's pipeline in two calls, with a visible seam between them.

:func:`prepare` does everything before training:

1. a split into training and test indices (stratified at random with the run's seed,
   or given explicitly, e.g. by speaker);
2. optionally a validation set carved out of the training indices (stratified), for
   monitoring and model selection only;
3. normalization statistics from the training waveforms only (or per utterance);
4. a :class:`~emoser.prep.FrameDataset` for each set.

:func:`train_and_test` builds a fresh :class:`~emoser.nn.AudioNet`, trains it with a
:class:`~emoser.training.Recipe` and measures it on the test set. Between the two calls
anything may change the prepared sets (chapter 9 puts the original's defects back there,
one at a time), and :func:`run_protocol` is simply both calls in a row. The command line
(``python -m emoser train``) and the speed benchmark call the same two functions.

One seed fixes everything random in a run: the split, the initial weights and the order
of the batches.

Chapter: chapters/07_evaluation.ipynb
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..common import DEFAULT_FRAME_LENGTH
from ..nn.audionet import AudioNet
from ..prep.framing import FrameDataset
from ..prep.normalize import Normalizer, PerUtteranceNormalizer, make_normalizer
from ..prep.splits import stratified_split
from ..training.checkpoints import save_checkpoint
from ..training.evaluation import Evaluation, evaluate
from ..training.history import History
from ..training.recipe import RECIPE, Recipe, fit_with_recipe, init_forget_bias
from ..training.runtime import fixed_threads, set_seed, training_threads

__all__ = ["Prepared", "prepare", "train_and_test", "Run", "run_protocol"]


# --------------------------------------------------------------------------- before training
@dataclass
class Prepared:
    """The frame sets of one split, ready to train on (what :func:`prepare` returns).

    Attributes:
        train_set, test_set (Dataset): frame sets (``val_set`` is None without validation).
        train_idx, val_idx, test_idx (np.ndarray): indices into the data (``train_idx`` in
            the order the examples are fed when ``shuffle`` is False).
        classes (tuple[str, ...]): class names, in label order.
        normalizer: what normalized the waveforms (None: nothing).
        normalization (str): its mode (``"global"``, ``"per_utterance"``, ``"none"``).
        frame_length (int), hop (int): framing.
        seed (int): the seed of the split (and later of weights and batch order).
        dtype (torch.dtype): dtype of the frames.
        shuffle (bool): shuffle the training batches every epoch (the course does).
        rate (int | None): sampling rate of the waveforms (Hz), when the data say.
        waves, labels: the data's waveforms and labels (-1 for classes left out), so that
            a step between :func:`prepare` and :func:`train_and_test` can rebuild a set.

    Chapter: chapters/07_evaluation.ipynb
    """

    train_set: Dataset
    val_set: Dataset | None
    test_set: Dataset
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    classes: tuple
    normalizer: Any
    normalization: str
    frame_length: int
    hop: int
    seed: int
    dtype: torch.dtype = torch.float32
    shuffle: bool = True
    rate: int | None = None
    waves: Sequence = field(default_factory=list, repr=False)
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)

    def frame_set(self, idx, normalizer=None) -> FrameDataset:
        """Frames of the examples ``idx`` (default: with this run's normalizer).

        Chapter: chapters/09_what_went_wrong.ipynb
        """
        norm = self.normalizer if normalizer is None else normalizer
        return FrameDataset([self.waves[i] for i in idx], self.labels[idx], self.frame_length,
                            hop=self.hop, normalizer=norm, dtype=self.dtype)

    def replace(self, **changes) -> Prepared:
        """A copy with some fields changed (``dataclasses.replace``).

        Chapter: chapters/09_what_went_wrong.ipynb
        """
        return dataclasses.replace(self, **changes)


def _select_classes(labels: np.ndarray, all_classes: tuple, classes):
    """Indices of the examples of ``classes`` and their labels renumbered 0..k-1."""
    if classes is None:
        return np.arange(len(labels)), labels, tuple(all_classes)
    classes = tuple(classes)
    unknown = [c for c in classes if c not in all_classes]
    if unknown:
        raise ValueError(f"classes {unknown} are not in the data (its classes: "
                         f"{list(all_classes)})")
    if len(set(classes)) != len(classes) or len(classes) < 2:
        raise ValueError(f"need at least two distinct classes, got {list(classes)}")
    old = [all_classes.index(c) for c in classes]
    keep = np.flatnonzero(np.isin(labels, old))
    remap = {o: k for k, o in enumerate(old)}
    return keep, np.array([remap[int(v)] for v in labels[keep]], dtype=np.int64), classes


def _as_index(idx, n: int, name: str) -> np.ndarray:
    idx = np.asarray(idx, dtype=np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise ValueError(f"{name} holds indices outside 0..{n - 1}")
    if np.unique(idx).size != idx.size:
        raise ValueError(f"{name} holds repeated indices")
    return idx


def _split(labels, keep, kept_labels, seed, train_idx, test_idx, test_size, val_idx, val_size):
    """Training, validation and test indices (see :func:`prepare`)."""
    n = len(labels)
    if (train_idx is None) != (test_idx is None):
        raise ValueError("give both train_idx and test_idx, or neither")
    if train_idx is None:
        tr, te = stratified_split(kept_labels, test_size=test_size, seed=seed)
        train_idx, test_idx = keep[tr], keep[te]
    else:
        train_idx = _as_index(train_idx, n, "train_idx")
        test_idx = _as_index(test_idx, n, "test_idx")
        train_idx = train_idx[labels[train_idx] >= 0]
        test_idx = test_idx[labels[test_idx] >= 0]
        if np.intersect1d(train_idx, test_idx).size:
            raise ValueError("train_idx and test_idx overlap: a test example would be trained on")
    if val_idx is not None:
        val_idx = _as_index(val_idx, n, "val_idx")
        val_idx = val_idx[labels[val_idx] >= 0]
        if np.intersect1d(val_idx, test_idx).size:
            raise ValueError("val_idx and test_idx overlap")
        train_idx = np.setdiff1d(train_idx, val_idx)
    elif val_size is not None:
        tr, va = stratified_split(labels[train_idx], test_size=val_size, seed=seed)
        train_idx, val_idx = train_idx[tr], train_idx[va]
    else:
        val_idx = np.zeros(0, dtype=np.int64)
    if train_idx.size == 0 or test_idx.size == 0:
        raise ValueError(f"empty split: {train_idx.size} training and {test_idx.size} test "
                         "examples")
    return train_idx, val_idx, test_idx


def prepare(data, seed: int = 0, *, train_idx=None, test_idx=None, test_size: float = 0.3,
            val_size: float | None = None, val_idx=None, classes: Sequence[str] | None = None,
            frame_length: int = DEFAULT_FRAME_LENGTH, hop: int | None = None,
            normalization: str = "global", dtype: torch.dtype = torch.float32) -> Prepared:
    """Split, normalize on the training set only, and frame: everything before training.

    Args:
        data: a :class:`emoser.data.TessData`, or any object with ``waves`` (list of
            1-D arrays) and ``labels`` (int array); ``classes`` (names) and ``rate`` are
            optional.
        seed (int): seed of the stratified split and of the validation split (default 0).
        train_idx, test_idx (array-like | None): indices into ``data``; give both or
            neither. Neither: a stratified split with ``test_size`` and ``seed``.
        test_size (float): fraction of each class held out for testing (default 0.3).
        val_size (float | None): fraction of the *training* indices carved out
            (stratified, seeded) as a validation set. None: no validation set (unless
            ``val_idx`` is given).
        val_idx (array-like | None): explicit validation indices (removed from training).
        classes (sequence of str | None): keep only these classes (names from
            ``data.classes``), relabelled 0..k-1 in the order given. Indices given
            in ``train_idx``/``test_idx``/``val_idx`` of other classes are dropped.
        frame_length (int): samples per frame (default :data:`emoser.common.DEFAULT_FRAME_LENGTH`).
        hop (int | None): samples between frame starts (None: ``frame_length``).
        normalization (str): ``"global"`` (scalar mean and std of the training
            waveforms), ``"per_utterance"`` or ``"none"``.
        dtype (torch.dtype): dtype of the frames (default float32).

    Returns:
        Prepared: the frame sets, indices, classes and normalizer.

    Raises:
        ValueError: inconsistent indices, unknown classes or normalization.

    Chapter: chapters/07_evaluation.ipynb
    """
    seed = int(seed)
    labels_all = np.asarray(data.labels, dtype=np.int64)
    waves = data.waves
    n = len(labels_all)
    if len(waves) != n:
        raise ValueError(f"data has {len(waves)} waveforms but {n} labels")
    all_classes = tuple(getattr(data, "classes", None) or
                        tuple(str(c) for c in range(int(labels_all.max()) + 1)))
    keep, kept_labels, classes = _select_classes(labels_all, all_classes, classes)
    labels = np.full(n, -1, dtype=np.int64)
    labels[keep] = kept_labels
    train_idx, val_idx, test_idx = _split(labels, keep, kept_labels, seed, train_idx, test_idx,
                                          test_size, val_idx, val_size)
    normalizer = make_normalizer(normalization, [waves[i] for i in train_idx])
    rate = getattr(data, "rate", None)
    prepared = Prepared(train_set=None, val_set=None, test_set=None, train_idx=train_idx,
                        val_idx=val_idx, test_idx=test_idx, classes=tuple(classes),
                        normalizer=normalizer, normalization=normalization,
                        frame_length=int(frame_length),
                        hop=int(frame_length if hop is None else hop), seed=seed, dtype=dtype,
                        rate=None if rate is None else int(rate), waves=waves, labels=labels)
    prepared.train_set = prepared.frame_set(train_idx)
    prepared.test_set = prepared.frame_set(test_idx)
    prepared.val_set = prepared.frame_set(val_idx) if val_idx.size else None
    return prepared


# --------------------------------------------------------------------------- training and test
@dataclass
class Run:
    """Everything one :func:`train_and_test` (or :func:`run_protocol`) call produced.

    ``model, history, evaluation = run`` unpacks the three main results.

    Attributes:
        model (AudioNet): the trained model (in evaluation mode, on the training device).
        history (History): per-epoch training (and validation) loss and accuracy.
        evaluation (Evaluation): results on the test set, in ``test_idx`` order.
        seed (int): the run's seed (split, initial weights, batch order).
        train_idx, val_idx, test_idx (np.ndarray): indices into the data (val_idx may be empty).
        classes (tuple[str, ...]): class names, in label order.
        normalizer: what normalized the waveforms (None: nothing).
        recipe (Recipe): how the model was trained.
        frame_length (int), hop (int): framing.
        model_kwargs (dict): the AudioNet constructor arguments.
        rate (int | None): sampling rate of the waveforms (Hz).

    Chapter: chapters/07_evaluation.ipynb
    """

    model: torch.nn.Module
    history: History
    evaluation: Evaluation
    seed: int
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    classes: tuple
    normalizer: Any
    recipe: Recipe
    frame_length: int
    hop: int
    model_kwargs: dict = field(default_factory=dict)
    rate: int | None = None

    def __iter__(self):
        return iter((self.model, self.history, self.evaluation))

    @property
    def accuracy(self) -> float:
        """Test accuracy (a fraction).

        Chapter: chapters/07_evaluation.ipynb
        """
        return float(self.evaluation.accuracy)

    def save(self, path, **extra) -> Path:
        """Save the trained model with everything ``predict`` needs (the one checkpoint format).

        ``extra`` adds meta data (e.g. where the data came from). Returns the path written.

        Chapter: chapters/06_training.ipynb
        """
        return save_checkpoint(path, self.model, **self.checkpoint_meta(), **extra)

    def checkpoint_meta(self) -> dict:
        """What a checkpoint keeps beside the weights (see :meth:`save`).

        Chapter: chapters/06_training.ipynb
        """
        meta = {"model_kwargs": dict(self.model_kwargs), "classes": list(self.classes),
                "rate": self.rate, "frame_length": self.frame_length, "hop": self.hop,
                "seed": self.seed, "recipe": self.recipe.as_dict(), "history": self.history,
                "test_accuracy": self.accuracy, "test_loss": float(self.evaluation.loss),
                "confusion": self.evaluation.confusion}
        if isinstance(self.normalizer, Normalizer):
            meta["normalizer"] = {"mode": "global", "mean": self.normalizer.mean,
                                  "std": self.normalizer.std}
        elif isinstance(self.normalizer, PerUtteranceNormalizer):
            meta["normalizer"] = {"mode": "per_utterance"}
        else:
            meta["normalizer"] = {"mode": "none"}
        return meta


def train_and_test(prepared: Prepared, *, recipe: Recipe = RECIPE, model_kwargs: dict | None = None,
                   model_factory: Callable[..., torch.nn.Module] | None = None,
                   device: str | torch.device | None = None,
                   log: Callable[[str], Any] | None = None, progress: bool = False,
                   callback: Callable | None = None, monitor_test: bool = False,
                   threads: int | None = None) -> Run:
    """Build a fresh AudioNet, train it on ``prepared`` with ``recipe``, and test it.

    ``set_seed(prepared.seed)`` comes just before the model is built, so the initial
    weights, like the split and the batch order, follow from the one seed. Training and
    testing run on a fixed number of CPU threads (:func:`emoser.training.training_threads`,
    1), so the result does not depend on how many cores the machine has.

    Args:
        prepared (Prepared): from :func:`prepare` (possibly changed in between).
        recipe (Recipe): training settings (default :data:`emoser.training.RECIPE`).
        model_kwargs (dict | None): extra AudioNet arguments; ``numClass`` and
            ``inDim`` default to the number of classes and the frame length.
        model_factory (callable | None): builds the model from the keyword
            arguments instead of :class:`~emoser.nn.AudioNet`.
        device (str | torch.device | None): where to train (None: GPU if available).
        log (callable | None): receives one line per epoch (default None: silent).
        progress (bool): show a progress bar.
        callback (callable | None): called after every epoch (see :func:`emoser.training.fit`).
        monitor_test (bool): measure the *test* set after every epoch, in the history's
            ``val_`` columns (monitoring only: chapter 9 compares curves this way; nothing
            is selected on it). Needs no validation set.
        threads (int | None): CPU threads (default :func:`emoser.training.training_threads`).

    Returns:
        Run: model, history, test evaluation, indices, normalizer and settings.

    Chapter: chapters/07_evaluation.ipynb
    """
    if monitor_test and prepared.val_set is not None:
        raise ValueError("monitor_test uses the validation columns: prepare without a validation "
                         "set")
    kwargs = {"numClass": len(prepared.classes), "inDim": int(prepared.frame_length),
              **(model_kwargs or {})}
    set_seed(prepared.seed)
    model = (model_factory or AudioNet)(**kwargs).to(prepared.dtype)
    if recipe.forget_bias is not None:
        init_forget_bias(model, recipe.forget_bias)
    watched = prepared.test_set if monitor_test else prepared.val_set
    threads = training_threads() if threads is None else int(threads)
    with fixed_threads(threads):
        history = fit_with_recipe(model, prepared.train_set, watched, recipe=recipe,
                                  seed=prepared.seed, device=device, log=log,
                                  progress=progress, callback=callback,
                                  shuffle=prepared.shuffle)
        evaluation = evaluate(model, prepared.test_set, n_classes=len(prepared.classes))
    history.params.update({"threads": threads, "normalization": prepared.normalization,
                           "frame_length": prepared.frame_length, "hop": prepared.hop})
    if monitor_test:
        history.params["monitor"] = "test set"
    return Run(model=model, history=history, evaluation=evaluation, seed=prepared.seed,
               train_idx=np.sort(prepared.train_idx), val_idx=np.sort(prepared.val_idx),
               test_idx=prepared.test_idx, classes=prepared.classes,
               normalizer=prepared.normalizer, recipe=recipe,
               frame_length=prepared.frame_length, hop=prepared.hop, model_kwargs=kwargs,
               rate=prepared.rate)


def run_protocol(data, seed: int = 0, *, recipe: Recipe = RECIPE, train_idx=None, test_idx=None,
                 test_size: float = 0.3, val_size: float | None = None, val_idx=None,
                 classes: Sequence[str] | None = None, frame_length: int = DEFAULT_FRAME_LENGTH,
                 hop: int | None = None, normalization: str = "global",
                 model_kwargs: dict | None = None,
                 model_factory: Callable[..., torch.nn.Module] | None = None,
                 device: str | torch.device | None = None, dtype: torch.dtype = torch.float32,
                 log: Callable[[str], Any] | None = None, progress: bool = False,
                 callback: Callable | None = None, threads: int | None = None) -> Run:
    """The whole protocol: :func:`prepare`, then :func:`train_and_test`.

    Takes the arguments of both (see there) and returns their :class:`Run`.

    Chapter: chapters/07_evaluation.ipynb
    """
    prepared = prepare(data, seed, train_idx=train_idx, test_idx=test_idx, test_size=test_size,
                       val_size=val_size, val_idx=val_idx, classes=classes,
                       frame_length=frame_length, hop=hop, normalization=normalization,
                       dtype=dtype)
    return train_and_test(prepared, recipe=recipe, model_kwargs=model_kwargs,
                          model_factory=model_factory, device=device, log=log,
                          progress=progress, callback=callback, threads=threads)
