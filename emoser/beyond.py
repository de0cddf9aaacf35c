"""Beyond the exercise: speaker-independent evaluation, honest model selection, more classes.

The earlier chapters split the recordings of one actress at random. This module holds what
the "beyond the exercise" chapters add on top of :func:`emoser.experiments.run_protocol`:

* :func:`speaker_indices` and :func:`random_indices`: training, validation and test indices
  where the validation set holds out whole *words* of the training data only, so model
  selection never looks at the test set (nor at the test speaker);
* :class:`KeepBest`: a training callback that remembers the weights of the best validation
  epoch and puts them back after the last epoch (best-epoch selection);
* :func:`run_split_seeds`: one :func:`~emoser.experiments.run_protocol` per seed with such
  indices and best-epoch selection;
* :func:`speaker_normalized` and :func:`retest_per_speaker`: per-speaker normalization (each
  voice standardized with its own statistics), for a data set or for already trained runs;
* :func:`spectral_centroid`, :func:`group_means`: simple acoustic statistics per speaker and
  emotion, to see *why* a model trained on one voice struggles with another;
* :func:`pooled_confusion`, :func:`recall_table`, :func:`spread_table`, :func:`confused_pairs`:
  results over seeds.

Chapter: chapters/10_speaker_independent.ipynb and chapters/11_seven_emotions.ipynb
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .splits import speaker_split, stratified_split, word_disjoint_split
from .train import SeedRuns

__all__ = [
    "speaker_indices", "random_indices", "speaker_normalized", "retest_per_speaker", "KeepBest", "run_split_seeds",
    "spectral_centroid", "group_means", "pooled_confusion", "recall_table", "spread_table",
    "confused_pairs",
]


def _records_field(data, name: str) -> np.ndarray:
    records = getattr(data, "records", None)
    if records is None or len(records) != len(data.labels):
        raise ValueError(f"data needs one record (with a `{name}`) per example, e.g. a TessData")
    return np.asarray([getattr(r, name) for r in records])


# --------------------------------------------------------------------------- indices
def speaker_indices(data, train_speaker: str | Sequence[str], test_speaker: str | Sequence[str],
                    val_size: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train on some voices, validate on held-out words of the same voices, test on others.

    The validation set is carved out of the *training* speaker's recordings by
    :func:`emoser.splits.word_disjoint_split` (no word on both sides, every class on
    both sides), so nothing about the test speaker is used before the final test.

    Args:
        data: a :class:`emoser.data.TessData` (needs ``labels`` and ``records`` with
            ``speaker`` and ``word``).
        train_speaker (str | sequence of str): speaker(s) to train on, e.g. ``"YAF"``.
        test_speaker (str | sequence of str): speaker(s) to test on, e.g. ``"OAF"``.
        val_size (float): fraction of the training speaker's examples held out (whole words).
        seed (int): which words are held out.

    Returns:
        tuple[np.ndarray, np.ndarray, np.ndarray]: ``(train_idx, val_idx, test_idx)``,
        sorted and disjoint.

    Raises:
        ValueError: a speaker on both sides or missing, or a class missing on one side.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    speakers = _records_field(data, "speaker")
    words = _records_field(data, "word")
    labels = np.asarray(data.labels)
    train, test = speaker_split(speakers, train_speaker, test_speaker)
    tr, va = word_disjoint_split(words[train], labels[train], val_size=val_size, seed=seed)
    return train[tr], train[va], test


def random_indices(data, test_size: float = 0.3, val_size: float = 0.2,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A stratified random test split, then a word-disjoint validation set from the training part.

    Args:
        data: a :class:`emoser.data.TessData` (needs ``labels`` and ``records`` with ``word``).
        test_size (float): fraction of each class held out for testing (stratified, seeded).
        val_size (float): fraction of the training examples held out for validation (whole words).
        seed (int): seed of both splits.

    Returns:
        tuple[np.ndarray, np.ndarray, np.ndarray]: ``(train_idx, val_idx, test_idx)``,
        sorted and disjoint.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    words = _records_field(data, "word")
    labels = np.asarray(data.labels)
    train, test = stratified_split(labels, test_size=test_size, seed=seed)
    tr, va = word_disjoint_split(words[train], labels[train], val_size=val_size, seed=seed)
    return train[tr], train[va], test


# --------------------------------------------------------------------------- per-speaker normalization
def speaker_normalized(data, speakers: Sequence[str] | None = None):
    """A copy of ``data`` in which every speaker's waveforms are standardized with that speaker's statistics.

    For each speaker, one scalar mean and standard deviation are computed over the
    concatenation of all of that speaker's waveforms (a :class:`emoser.frames.Normalizer`)
    and applied to them. A loud and a quiet voice end up at the same average level, while
    the differences *within* a voice (a happy utterance louder than a sad one) stay.

    No label is used, but the statistics of a test speaker come from that speaker's
    recordings: in practice this needs a batch of (unlabelled) recordings of every new
    voice, and their mix of emotions shifts the statistics a little.

    Args:
        data: a :class:`emoser.data.TessData` (or any object with ``waves`` and
            ``records`` with ``speaker``; it is copied with :func:`copy.copy`).
        speakers (sequence of str | None): normalize only these speakers (default all).

    Returns:
        the same type as ``data``, with new ``waves`` (float32) and an extra attribute
        ``speaker_stats``: ``{speaker: Normalizer}``.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    from .frames import Normalizer

    spk = _records_field(data, "speaker")
    chosen = sorted(set(spk.tolist())) if speakers is None else list(speakers)
    missing = [s for s in chosen if s not in set(spk.tolist())]
    if missing:
        raise ValueError(f"speakers {missing} are not in the data (present: {sorted(set(spk.tolist()))})")
    waves = list(data.waves)
    stats = {}
    for s in chosen:
        idx = np.flatnonzero(spk == s)
        norm = Normalizer.fit([waves[i] for i in idx])
        stats[s] = norm
        for i in idx:
            waves[i] = np.asarray(norm.apply(np.asarray(waves[i], dtype=np.float64)), dtype=np.float32)
    out = copy.copy(data)
    out.waves = waves
    out.speaker_stats = stats
    return out


def retest_per_speaker(spread: SeedRuns, data) -> SeedRuns:
    """Test the same trained models again, each test speaker standardized with its own statistics.

    :func:`~emoser.experiments.run_protocol` with ``normalization="global"`` standardizes
    the test recordings with the mean and standard deviation of the *training* waveforms.
    Here every run's model is kept as it is and only the test input changes: the test
    recordings of each speaker are standardized with one scalar mean and standard deviation
    computed over that speaker's test recordings (a :class:`emoser.frames.Normalizer`,
    labels unused). The training speaker saw the same kind of normalization in training
    (its own statistics), so this is per-speaker normalization for a model trained with
    ``"global"`` on one speaker.

    Args:
        spread (SeedRuns): runs of :func:`run_split_seeds` or
            :func:`~emoser.experiments.run_seeds` (each a :class:`~emoser.experiments.Run`).
        data: the data the runs were trained on (``waves``, ``labels``, ``records`` with ``speaker``).

    Returns:
        SeedRuns: copies of the runs (same model objects) with the new ``evaluation``
        (in ``test_idx`` order) and ``normalizer`` set to ``{speaker: Normalizer}``.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    import dataclasses

    from .frames import FrameDataset, Normalizer
    from .train import evaluate

    spk = _records_field(data, "speaker")
    runs = []
    for run in spread.results:
        test_idx = np.asarray(run.test_idx)
        if run.classes and len(getattr(data, "classes", run.classes)) != len(run.classes):
            raise ValueError("retest_per_speaker needs runs trained on all classes of the data")
        norms = {s: Normalizer.fit([data.waves[i] for i in test_idx[spk[test_idx] == s]])
                 for s in dict.fromkeys(spk[test_idx].tolist())}
        waves = [norms[spk[i]].apply(np.asarray(data.waves[i], dtype=np.float64)) for i in test_idx]
        test_set = FrameDataset(waves, np.asarray(data.labels)[test_idx], run.frame_length, hop=run.hop,
                                dtype=next(run.model.parameters()).dtype)
        ev = evaluate(run.model, test_set, n_classes=len(run.classes))
        runs.append(dataclasses.replace(run, evaluation=ev, normalizer=norms))
    return SeedRuns.of_runs(spread.seeds, runs)


# --------------------------------------------------------------------------- best-epoch selection
class KeepBest:
    """Training callback: keep the weights of the best validation epoch, restore them at the end.

    Pass an instance as ``callback`` to :func:`emoser.train.fit` or
    :func:`emoser.experiments.run_protocol` (which trains with a validation set). After
    every epoch it compares the epoch's validation accuracy (ties: lower validation loss,
    then the earlier epoch, as :attr:`emoser.train.History.best_epoch`) with the best so far
    and copies the weights when they improved. After epoch ``epochs`` (or when
    ``patience`` epochs passed without improvement: early stopping) it loads the best
    weights back into the model, so what is tested afterwards is the selected model.

    Only the validation set decides; the test set is never looked at.

    Args:
        epochs (int): the last epoch of training (e.g. ``recipe.epochs``).
        patience (int | None): stop after this many epochs without improvement (None: never).

    Attributes:
        best_epoch (int | None): the selected epoch (counting from 1).
        best_val_acc, best_val_loss (float | None): its validation results.
        stopped_epoch (int | None): the epoch after which training stopped early.

    Chapter: chapters/10_speaker_independent.ipynb
    """

    def __init__(self, epochs: int, patience: int | None = None):
        if int(epochs) < 1:
            raise ValueError(f"KeepBest needs epochs >= 1, got {epochs}")
        if patience is not None and int(patience) < 1:
            raise ValueError(f"patience must be >= 1 or None, got {patience}")
        self.epochs = int(epochs)
        self.patience = None if patience is None else int(patience)
        self.best_epoch: int | None = None
        self.best_val_acc: float | None = None
        self.best_val_loss: float | None = None
        self.stopped_epoch: int | None = None
        self._state: dict | None = None

    def _better(self, acc: float, loss: float) -> bool:
        if self.best_epoch is None:
            return True
        return (acc, -loss) > (self.best_val_acc, -self.best_val_loss)

    def restore(self, model) -> None:
        """Load the best weights seen so far into ``model`` (nothing if none were kept).

        Chapter: chapters/10_speaker_independent.ipynb
        """
        if self._state is not None:
            model.load_state_dict(self._state)

    def __call__(self, record: Mapping, model) -> bool | None:
        acc, loss = record.get("val_acc"), record.get("val_loss")
        if acc is None or loss is None:
            raise ValueError("KeepBest needs a validation set: the epoch record has no val_acc/val_loss")
        epoch = int(record["epoch"])
        if self._better(float(acc), float(loss)):
            self.best_epoch, self.best_val_acc, self.best_val_loss = epoch, float(acc), float(loss)
            self._state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        stop = self.patience is not None and epoch - self.best_epoch >= self.patience
        if epoch >= self.epochs or stop:
            self.restore(model)
            if stop and epoch < self.epochs:
                self.stopped_epoch = epoch
                return True
        return None


# --------------------------------------------------------------------------- several seeds
def run_split_seeds(data, seeds: Iterable[int], indices: Callable[[int], tuple], *,
                    keep_best: bool = True, patience: int | None = None,
                    log: Callable[[str], Any] | None = print, label: str = "",
                    **kwargs) -> SeedRuns:
    """One :func:`~emoser.experiments.run_protocol` per seed with given train/validation/test indices.

    For each seed, ``indices(seed)`` gives ``(train_idx, val_idx, test_idx)`` (e.g.
    :func:`speaker_indices` or :func:`random_indices` with that seed); the run's seed also
    fixes the initial weights and the batch order. With ``keep_best`` the weights of the
    best *validation* epoch are restored before testing (:class:`KeepBest`); the selected
    epoch is stored in ``run.history.params["selected_epoch"]``.

    Args:
        data: as for :func:`~emoser.experiments.run_protocol`.
        seeds (iterable of int): the seeds.
        indices (callable): ``seed -> (train_idx, val_idx, test_idx)``.
        keep_best (bool): best-epoch selection on the validation set (default True).
        patience (int | None): early stopping patience for :class:`KeepBest`.
        log (callable | None): receives one line per finished seed.
        label (str): prefix of the log lines.
        **kwargs: passed on to :func:`~emoser.experiments.run_protocol` (``recipe``,
            ``normalization``, ...).

    Returns:
        SeedRuns: ``results`` holds each seed's :class:`~emoser.experiments.Run`;
        ``mean`` and ``std`` (sample) are over the test accuracies.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    from .experiments import RECIPE, run_protocol

    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("run_split_seeds needs at least one seed")
    if "callback" in kwargs:
        raise ValueError("run_split_seeds sets the callback itself (KeepBest); do not pass one")
    recipe = kwargs.get("recipe", RECIPE)
    runs = []
    for s in seeds:
        train_idx, val_idx, test_idx = indices(s)
        keeper = KeepBest(recipe.epochs, patience) if keep_best and recipe.epochs > 0 else None
        run = run_protocol(data, s, train_idx=train_idx, val_idx=val_idx, test_idx=test_idx,
                           callback=keeper, **kwargs)
        run.history.params["selected_epoch"] = keeper.best_epoch if keeper else len(run.history)
        runs.append(run)
        if log is not None:
            prefix = f"{label}: " if label else ""
            log(f"{prefix}seed {s}: test accuracy {100 * run.accuracy:.1f}% "
                f"(epoch {run.history.params['selected_epoch']} of {len(run.history)} selected, "
                f"validation accuracy {100 * (keeper.best_val_acc if keeper else np.nan):.1f}%)")
    return SeedRuns.of_runs(seeds, runs)


# --------------------------------------------------------------------------- acoustics
def spectral_centroid(waves: Sequence, rate: int) -> np.ndarray:
    """Spectral centroid of each waveform: the power-weighted mean frequency of its spectrum.

    ``sum_k f_k |X_k|² / sum_k |X_k|²`` over the one-sided spectrum of the whole waveform
    (mean removed). A brighter, more tense voice has a higher centroid.

    Args:
        waves (sequence of 1-D arrays): the waveforms.
        rate (int): sampling rate in Hz.

    Returns:
        np.ndarray: one centroid in Hz per waveform (NaN for a silent one).

    Raises:
        ValueError: no waveforms, or an empty one.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    from scipy.fft import next_fast_len

    if len(waves) == 0:
        raise ValueError("spectral_centroid needs at least one waveform")
    out = np.empty(len(waves))
    for k, w in enumerate(waves):
        w = np.asarray(w, dtype=np.float64).ravel()
        if w.size == 0:
            raise ValueError(f"waveform {k} is empty")
        n = next_fast_len(w.size, real=True)  # zero padding to a fast length: same centroid
        power = np.abs(np.fft.rfft(w - w.mean(), n=n)) ** 2
        freqs = np.fft.rfftfreq(n, d=1.0 / rate)
        total = power.sum()
        out[k] = float((freqs * power).sum() / total) if total > 0 else np.nan
    return out


def group_means(stats: Mapping[str, Sequence[float]], groups: Sequence) -> dict:
    """Mean and standard deviation of each statistic within each group.

    Args:
        stats (Mapping[str, array]): ``{name: one value per example}``.
        groups (sequence): one hashable group key per example, e.g. ``("YAF", "happy")``.

    Returns:
        dict: ``{group: {name: (mean, std, n)}}``, groups in order of first appearance;
        NaN values are ignored.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    keys = list(groups)
    order = list(dict.fromkeys(keys))
    out = {}
    for g in order:
        mask = np.array([k == g for k in keys])
        row = {}
        for name, values in stats.items():
            values = np.asarray(values, dtype=np.float64)
            if values.shape != mask.shape:
                raise ValueError(f"statistic {name!r} has {values.size} values for {mask.size} examples")
            v = values[mask & np.isfinite(values)]
            row[name] = (float(v.mean()) if v.size else np.nan,
                         float(v.std()) if v.size else np.nan, int(v.size))
        out[g] = row
    return out


# --------------------------------------------------------------------------- results over seeds
def pooled_confusion(spread: SeedRuns) -> np.ndarray:
    """Sum of the test confusion matrices of all seeds (rows = true class).

    Chapter: chapters/10_speaker_independent.ipynb
    """
    mats = [np.asarray(r.evaluation.confusion) for r in spread.results]
    if not mats:
        raise ValueError("no runs")
    return np.sum(mats, axis=0)


def recall_table(spread: SeedRuns, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-class recall over seeds: mean and sample standard deviation per class.

    Args:
        spread (SeedRuns): runs whose ``evaluation`` has ``per_class_recall()``.
        classes (sequence of str): the class names (for checking the size).

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(mean, std)``, one entry per class (std 0 for one seed).

    Chapter: chapters/11_seven_emotions.ipynb
    """
    rec = np.array([r.evaluation.per_class_recall() for r in spread.results], dtype=float)
    if rec.shape[1] != len(classes):
        raise ValueError(f"runs have {rec.shape[1]} classes, got {len(classes)} names")
    std = rec.std(axis=0, ddof=1) if len(rec) > 1 else np.zeros(rec.shape[1])
    return rec.mean(axis=0), std


def spread_table(spreads: Mapping[str, SeedRuns]) -> str:
    """Plain-text table: one row per setting, test accuracy per seed, mean ± std and macro F1.

    Args:
        spreads (Mapping[str, SeedRuns]): ``{setting name: runs over seeds}``.

    Returns:
        str: the table (accuracies in percent, one decimal).

    Chapter: chapters/10_speaker_independent.ipynb
    """
    rows = []
    for name, spread in spreads.items():
        accs = " ".join(f"{100 * r.accuracy:5.1f}" for r in spread.results)
        f1 = np.mean([r.evaluation.macro_f1() for r in spread.results])
        rows.append([name, accs, f"{100 * spread.mean:.1f} ± {100 * spread.std:.1f}", f"{f1:.3f}"])
    header = ["setting", "test acc per seed (%)", "mean ± std (%)", "macro F1"]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
              for r in rows]
    return "\n".join(lines)


def confused_pairs(confusion, classes: Sequence[str], k: int = 5) -> list[tuple[str, str, int, float]]:
    """The ``k`` largest off-diagonal cells of a confusion matrix: which class is taken for which.

    Args:
        confusion (array-like): ``C × C`` counts, rows = true class (e.g. :func:`pooled_confusion`).
        classes (sequence of str): the class names.
        k (int): how many pairs (default 5).

    Returns:
        list[tuple[str, str, int, float]]: ``(true, predicted, count, share)`` sorted by count
        (ties: by share, then by class order), where ``share`` is the fraction of the true
        class's examples that went to ``predicted``; cells with zero count are left out.

    Chapter: chapters/11_seven_emotions.ipynb
    """
    confusion = np.asarray(confusion)
    classes = list(classes)
    if confusion.ndim != 2 or confusion.shape != (len(classes), len(classes)):
        raise ValueError(f"confusion must be {len(classes)} × {len(classes)}, got shape {confusion.shape}")
    support = confusion.sum(axis=1)
    cells = []
    for i in range(len(classes)):
        for j in range(len(classes)):
            if i != j and confusion[i, j] > 0:
                share = float(confusion[i, j] / support[i])
                cells.append((-int(confusion[i, j]), -share, i, j))
    cells.sort()
    return [(classes[i], classes[j], -c, -s) for c, s, i, j in cells[:max(int(k), 0)]]
