"""The same experiment with several seeds: runs, their spread, and tables over seeds.

One seed fixes a run (split, initial weights, batch order); the spread over seeds says
how much of a result is luck. :func:`run_seeds` repeats :func:`~emoser.experiments.run_protocol`
with stratified splits; :func:`run_split_seeds` with given training, validation and test
indices (e.g. by speaker) and best-epoch selection on the validation set.

Chapter: chapters/07_evaluation.ipynb, chapters/10_speaker_independent.ipynb,
chapters/11_seven_emotions.ipynb
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..common import format_table
from ..prep.framing import FrameDataset
from ..prep.normalize import Normalizer
from ..prep.splits import record_field
from ..training.evaluation import Evaluation, evaluate
from ..training.recipe import RECIPE
from ..training.selection import KeepBest
from .pipeline import Run, run_protocol

__all__ = ["SeedRuns", "multi_seed", "run_seeds", "seed_table", "run_split_seeds",
           "retest_per_speaker", "pooled_confusion", "recall_table", "spread_table",
           "confused_pairs", "misclassified"]


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
    rows.append(["mean", f"{100 * spread.mean:.2f}%", "", f"{f1.mean():.3f}"]
                + ([""] if seconds else []))
    rows.append(["std", f"{100 * spread.std:.2f}%", "", ""] + ([""] if seconds else []))
    return format_table(rows, header, align="r" * len(header))


def run_split_seeds(data, seeds: Iterable[int], indices: Callable[[int], tuple], *,
                    keep_best: bool = True, patience: int | None = None,
                    log: Callable[[str], Any] | None = print, label: str = "",
                    **kwargs) -> SeedRuns:
    """One :func:`~emoser.experiments.run_protocol` per seed with given training, validation and
    test indices.

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
        data: the data the runs were trained on (``waves``, ``labels``, ``records`` with
            ``speaker``).

    Returns:
        SeedRuns: copies of the runs (same model objects) with the new ``evaluation``
        (in ``test_idx`` order) and ``normalizer`` set to ``{speaker: Normalizer}``.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    spk = record_field(data, "speaker")
    runs = []
    for run in spread.results:
        test_idx = np.asarray(run.test_idx)
        if run.classes and len(getattr(data, "classes", run.classes)) != len(run.classes):
            raise ValueError("retest_per_speaker needs runs trained on all classes of the data")
        norms = {s: Normalizer.fit([data.waves[i] for i in test_idx[spk[test_idx] == s]])
                 for s in dict.fromkeys(spk[test_idx].tolist())}
        waves = [norms[spk[i]].apply(np.asarray(data.waves[i], dtype=np.float64)) for i in test_idx]
        test_set = FrameDataset(waves, np.asarray(data.labels)[test_idx], run.frame_length,
                                hop=run.hop,
                                dtype=next(run.model.parameters()).dtype)
        ev = evaluate(run.model, test_set, n_classes=len(run.classes))
        runs.append(dataclasses.replace(run, evaluation=ev, normalizer=norms))
    return SeedRuns.of_runs(spread.seeds, runs)


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
    return format_table(rows, header, align="l" + "r" * (len(header) - 1))


def confused_pairs(confusion, classes: Sequence[str],
                   k: int = 5) -> list[tuple[str, str, int, float]]:
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
        raise ValueError(f"confusion must be {len(classes)} × {len(classes)}, got shape "
                         f"{confusion.shape}")
    support = confusion.sum(axis=1)
    cells = []
    for i in range(len(classes)):
        for j in range(len(classes)):
            if i != j and confusion[i, j] > 0:
                share = float(confusion[i, j] / support[i])
                cells.append((-int(confusion[i, j]), -share, i, j))
    cells.sort()
    return [(classes[i], classes[j], -c, -s) for c, s, i, j in cells[:max(int(k), 0)]]


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
        item.update(true=run.classes[int(ev.targets[k])],
                    predicted=run.classes[int(ev.predictions[k])],
                    confidence=float(ev.probabilities[k, ev.predictions[k]]))
        out.append(item)
    return sorted(out, key=lambda d: d["index"])
