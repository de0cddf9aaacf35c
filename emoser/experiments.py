"""One experiment in one call: split, normalize, frame, build AudioNet, train, test.

:func:`run_protocol` strings together what the earlier chapters built piece by piece:

1. a split into training and test indices (stratified at random with the run's seed,
   or given explicitly, e.g. by speaker);
2. optionally a validation set carved out of the training indices (stratified), for
   monitoring only;
3. normalization statistics from the training waveforms only (or per utterance);
4. :class:`~emoser.frames.FrameDataset` for each set;
5. a fresh :class:`~emoser.model.AudioNet`, trained by :func:`emoser.train.fit` with a
   :class:`Recipe`, and measured by :func:`emoser.train.evaluate` on the test set.

One seed fixes everything random in a run: the split, the initial weights and the order
of the batches. :func:`run_seeds` repeats a run for several seeds and reports the spread.

Chapter: chapters/07_evaluation.ipynb
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .frames import FrameDataset, Normalizer
from .model import AudioNet
from .splits import stratified_split
from .train import Evaluation, History, SeedRuns, _call_callback, adam, evaluate, fit, set_seed

__all__ = [
    "Recipe", "RECIPE", "ORIGINAL_RECIPE", "init_forget_bias", "PerUtteranceNormalizer", "make_normalizer",
    "fit_with_recipe", "Run", "run_protocol", "run_seeds", "seed_table", "misclassified",
]

NORMALIZATIONS = ("global", "per_utterance", "none")


# --------------------------------------------------------------------------- recipe
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
        amsgrad (bool): use Adam's AMSGrad variant: the denominator of its step
            never shrinks, so once the gradients have become small, a rare large
            gradient cannot cause a large step that knocks a trained model back.
        bucket (bool | int): group batches by length (see :func:`emoser.train.fit`).
            Off by default: where length predicts the class (sad TESS recordings are
            longer than happy ones), length-sorted batches hold mostly one class,
            which makes training unstable.

    Chapter: chapters/06_training.ipynb
    """

    epochs: int = 8
    lr: float = 1e-3
    batch_size: int = 10
    clip_grad_norm: float | None = 1.0
    schedule: str = "cosine"
    weight_decay: float = 0.0
    forget_bias: float | None = 1.0
    amsgrad: bool = False
    bucket: bool | int = False

    def __post_init__(self):
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"Recipe.schedule must be 'constant' or 'cosine', got {self.schedule!r}")
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
#: values); chapter 7 checks it on five seeds: mean test accuracy >= 99 %, none below 97 %.
RECIPE = Recipe()


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
        raise ValueError(f"{type(model).__name__} has no LSTM forget gate (no `forget_gate` linear layer)")
    with torch.no_grad():
        for gate in gates:
            if gate.bias is None:
                raise ValueError("a forget gate has no bias to initialize")
            gate.bias.fill_(float(value))
    return len(gates)


#: The original exercise's settings: Adam, lr 1e-4, batches of 10, 20 epochs, no clipping,
#: PyTorch's default initialization.
ORIGINAL_RECIPE = Recipe(epochs=20, lr=1e-4, batch_size=10, clip_grad_norm=None, schedule="constant",
                         forget_bias=None, amsgrad=False, bucket=False)


# --------------------------------------------------------------------------- normalization
@dataclass(frozen=True)
class PerUtteranceNormalizer:
    """Standardize every waveform with its own mean and standard deviation.

    Needs no training statistics at all, so it cannot leak anything from the test
    set; it also removes loudness differences between recordings (which may or
    may not carry emotion).

    Chapter: chapters/10_speaker_independent.ipynb
    """

    eps: float = 1e-8

    def apply(self, wave):
        """Standardize one waveform by its own statistics (float64 inside, dtype kept).

        Chapter: chapters/10_speaker_independent.ipynb
        """
        w = np.asarray(wave)
        dtype = w.dtype if np.issubdtype(w.dtype, np.floating) else np.float32
        w64 = w.astype(np.float64)
        return ((w64 - w64.mean()) / max(float(w64.std()), self.eps)).astype(dtype)

    __call__ = apply


def make_normalizer(mode: str, train_waves: Sequence) -> Normalizer | PerUtteranceNormalizer | None:
    """Build the normalizer for a run.

    Args:
        mode (str): ``"global"``: one scalar mean and std from the training waveforms
            only (:class:`~emoser.frames.Normalizer`); ``"per_utterance"``: each
            waveform by its own statistics; ``"none"``: no normalization.
        train_waves (sequence of arrays): the training waveforms (used by ``"global"``).

    Returns:
        Normalizer | PerUtteranceNormalizer | None

    Chapter: chapters/06_training.ipynb
    """
    if mode == "global":
        return Normalizer.fit(list(train_waves))
    if mode == "per_utterance":
        return PerUtteranceNormalizer()
    if mode == "none":
        return None
    raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {mode!r}")


# --------------------------------------------------------------------------- training
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
    optimizer = adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay, amsgrad=recipe.amsgrad)
    scheduler = recipe.scheduler(optimizer)

    def on_epoch(record, trained):
        if scheduler is not None:
            scheduler.step()  # the rate for the next epoch
        if callback is not None:
            return _call_callback(callback, record, trained)
        return None

    history = fit(model, train_set, val_set, epochs=recipe.epochs, lr=recipe.lr,
                  batch_size=recipe.batch_size, seed=seed, progress=progress, device=device,
                  shuffle=shuffle, bucket=recipe.bucket if shuffle else False, log=log,
                  optimizer=optimizer, weight_decay=recipe.weight_decay,
                  clip_grad_norm=recipe.clip_grad_norm, callback=on_epoch)
    history.params["schedule"] = recipe.schedule
    return history


# --------------------------------------------------------------------------- one run
@dataclass
class Run:
    """Everything one :func:`run_protocol` call produced.

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

    def __iter__(self):
        return iter((self.model, self.history, self.evaluation))

    @property
    def accuracy(self) -> float:
        """Test accuracy (a fraction).

        Chapter: chapters/07_evaluation.ipynb
        """
        return float(self.evaluation.accuracy)

    def checkpoint_meta(self) -> dict:
        """Meta data worth saving next to the weights (for :func:`emoser.train.save_checkpoint`).

        Chapter: chapters/06_training.ipynb
        """
        meta = {"classes": list(self.classes), "frame_length": self.frame_length, "hop": self.hop,
                "seed": self.seed, "recipe": self.recipe.as_dict(), "history": self.history,
                "test_accuracy": self.accuracy}
        if isinstance(self.normalizer, Normalizer):
            meta["normalizer"] = {"mode": "global", "mean": self.normalizer.mean,
                                  "std": self.normalizer.std}
        elif isinstance(self.normalizer, PerUtteranceNormalizer):
            meta["normalizer"] = {"mode": "per_utterance"}
        else:
            meta["normalizer"] = {"mode": "none"}
        return meta


def _select_classes(labels: np.ndarray, all_classes: tuple, classes) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Indices of the examples of ``classes`` and their labels renumbered 0..k-1."""
    if classes is None:
        return np.arange(len(labels)), labels, tuple(all_classes)
    classes = tuple(classes)
    unknown = [c for c in classes if c not in all_classes]
    if unknown:
        raise ValueError(f"classes {unknown} are not in the data (its classes: {list(all_classes)})")
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


def run_protocol(data, seed: int = 0, *, recipe: Recipe = RECIPE, train_idx=None, test_idx=None,
                 test_size: float = 0.3, val_size: float | None = None, val_idx=None,
                 classes: Sequence[str] | None = None, frame_length: int = 500, hop: int | None = None,
                 normalization: str = "global", model_kwargs: dict | None = None,
                 model_factory: Callable[..., torch.nn.Module] | None = None,
                 device: str | torch.device | None = None, dtype: torch.dtype = torch.float32,
                 log: Callable[[str], Any] | None = None, progress: bool = False,
                 callback: Callable | None = None) -> Run:
    """Split, normalize on the training set only, frame, train AudioNet and test it.

    One ``seed`` fixes the run: the stratified split (when the indices are not
    given), the validation split, the initial weights (``set_seed(seed)`` just
    before the model is built) and the shuffling of the batches.

    Args:
        data: a :class:`emoser.data.TessData`, or any object with ``waves`` (list of
            1-D arrays) and ``labels`` (int array); ``classes`` (names) is optional.
        seed (int): the run's seed (default 0).
        recipe (Recipe): training settings (default :data:`RECIPE`).
        train_idx, test_idx (array-like | None): indices into ``data``; give both or
            neither. Neither: a stratified split with ``test_size`` and ``seed``.
        test_size (float): fraction of each class held out for testing (default 0.3).
        val_size (float | None): fraction of the *training* indices carved out
            (stratified, seeded) as a validation set, measured after every epoch
            for monitoring. None: no validation set (unless ``val_idx`` is given).
        val_idx (array-like | None): explicit validation indices (removed from training).
        classes (sequence of str | None): keep only these classes (names from
            ``data.classes``), relabelled 0..k-1 in the order given. Indices given
            in ``train_idx``/``test_idx``/``val_idx`` of other classes are dropped.
        frame_length (int): samples per frame (default 500).
        hop (int | None): samples between frame starts (None: ``frame_length``).
        normalization (str): ``"global"`` (scalar mean and std of the training
            waveforms), ``"per_utterance"`` or ``"none"``.
        model_kwargs (dict | None): extra AudioNet arguments; ``numClass`` and
            ``inDim`` default to the number of classes and ``frame_length``.
        model_factory (callable | None): builds the model from the keyword
            arguments instead of :class:`AudioNet`.
        device (str | torch.device | None): where to train (None: GPU if available).
        dtype (torch.dtype): dtype of frames and model (default float32).
        log (callable | None): receives one line per epoch (default None: silent).
        progress (bool): show a progress bar.
        callback (callable | None): passed on to :func:`emoser.train.fit`.

    Returns:
        Run: model, history, test evaluation, indices, normalizer and settings
        (``model, history, evaluation = run`` also works).

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
        raise ValueError(f"empty split: {train_idx.size} training and {test_idx.size} test examples")

    normalizer = make_normalizer(normalization, [waves[i] for i in train_idx])
    hop = int(frame_length if hop is None else hop)

    def dataset(idx):
        return FrameDataset([waves[i] for i in idx], labels[idx], frame_length, hop=hop,
                            normalizer=normalizer, dtype=dtype)

    train_set, test_set = dataset(train_idx), dataset(test_idx)
    val_set = dataset(val_idx) if val_idx.size else None

    kwargs = {"numClass": len(classes), "inDim": int(frame_length), **(model_kwargs or {})}
    set_seed(seed)
    model = (model_factory or AudioNet)(**kwargs).to(dtype)
    if recipe.forget_bias is not None:
        init_forget_bias(model, recipe.forget_bias)

    history = fit_with_recipe(model, train_set, val_set, recipe=recipe, seed=seed, device=device,
                              log=log, progress=progress, callback=callback)
    history.params.update({"normalization": normalization,
                           "frame_length": int(frame_length), "hop": hop})
    evaluation = evaluate(model, test_set, n_classes=len(classes))
    return Run(model=model, history=history, evaluation=evaluation, seed=seed,
               train_idx=np.sort(train_idx), val_idx=np.sort(val_idx), test_idx=test_idx,
               classes=tuple(classes), normalizer=normalizer, recipe=recipe,
               frame_length=int(frame_length), hop=hop, model_kwargs=kwargs)


# --------------------------------------------------------------------------- several seeds
def run_seeds(data, seeds: Iterable[int] = range(5), *, log: Callable[[str], Any] | None = print,
              **kwargs) -> SeedRuns:
    """Repeat :func:`run_protocol` once per seed; summarise the test accuracies.

    Each seed changes the split (unless indices are given), the initial weights
    and the batch order together.

    Args:
        data: as for :func:`run_protocol`.
        seeds (iterable of int): the seeds (default 0 … 4).
        log (callable | None): receives one line per finished seed (default ``print``).
        **kwargs: passed on to :func:`run_protocol`.

    Returns:
        SeedRuns: ``results`` holds the :class:`Run` of each seed; ``mean`` and
        ``std`` (sample standard deviation) are over the test accuracies.

    Chapter: chapters/07_evaluation.ipynb
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("run_seeds needs at least one seed")
    runs = []
    for s in seeds:
        run = run_protocol(data, s, **kwargs)
        runs.append(run)
        if log is not None:
            log(f"seed {s}: test accuracy {100 * run.accuracy:.2f}%  "
                f"({run.history.total_seconds:.0f} s of training)")
    return SeedRuns.of_runs(seeds, runs)


def seed_table(spread: SeedRuns, seconds: bool = False) -> str:
    """Plain-text table of a :func:`run_seeds` result: one row per seed, then mean ± std.

    Args:
        spread (SeedRuns): from :func:`run_seeds`.
        seconds (bool): add the training time of each run (leave out where the
            output must not change between machines).

    Chapter: chapters/07_evaluation.ipynb
    """
    header = ["seed", "test acc", "test loss", "macro F1"] + (["train s"] if seconds else [])
    rows = []
    for s, run in zip(spread.seeds, spread.results):
        ev = run.evaluation
        row = [str(s), f"{100 * ev.accuracy:.2f}%", f"{ev.loss:.4f}", f"{ev.macro_f1():.3f}"]
        if seconds:
            row.append(f"{run.history.total_seconds:.0f}")
        rows.append(row)
    f1 = np.array([r.evaluation.macro_f1() for r in spread.results])
    rows.append(["mean", f"{100 * spread.mean:.2f}%", "", f"{f1.mean():.3f}"] + ([""] if seconds else []))
    rows.append(["std", f"{100 * spread.std:.2f}%", "", ""] + ([""] if seconds else []))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def misclassified(run: Run, records: Sequence | None = None) -> list[dict]:
    """The test examples a run got wrong.

    Args:
        run (Run): from :func:`run_protocol`.
        records (sequence | None): ``data.records`` (for the spoken word and the
            speaker); None gives indices only.

    Returns:
        list[dict]: one dict per error, ordered by index: ``index`` (into the
        data), ``word`` and ``speaker`` (when records are given), ``true`` and
        ``predicted`` (class names) and ``confidence`` (probability of the
        predicted class).

    Chapter: chapters/07_evaluation.ipynb
    """
    ev = run.evaluation
    wrong = np.flatnonzero(ev.predictions != ev.targets)
    out = []
    for k in wrong:
        i = int(run.test_idx[k])
        item = {"index": i}
        if records is not None:
            item["word"] = getattr(records[i], "word", None)
            item["speaker"] = getattr(records[i], "speaker", None)
        item.update(true=run.classes[int(ev.targets[k])], predicted=run.classes[int(ev.predictions[k])],
                    confidence=float(ev.probabilities[k, ev.predictions[k]]))
        out.append(item)
    return sorted(out, key=lambda d: d["index"])
