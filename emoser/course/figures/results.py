"""Figures of results: training curves, confusion matrices, defect curves, class probabilities.

Every helper sets a title and axis labels and returns the Figure.

Chapter: chapters/06_training.ipynb
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ...common import as_numpy

if TYPE_CHECKING:  # only for annotations: figures never run an experiment
    from ...experiments.defects import DefectRun

__all__ = ["plot_history", "plot_confusion", "plot_defect_curves", "plot_probabilities"]


_METRICS = {"accuracy": ("train_acc", "val_acc", "accuracy (%)", 100.0),
            "loss": ("train_loss", "val_loss", "cross-entropy loss", 1.0)}


def _records(history) -> list[dict]:
    if hasattr(history, "epochs") and not isinstance(history, dict):
        return list(history.epochs)
    if isinstance(history, dict) and "epochs" in history:
        return list(history["epochs"])
    raise TypeError(f"expected a History (or History.to_dict()), got {type(history).__name__}")


def plot_history(history, metric: str = "accuracy", labels: Sequence[str] | None = None,
                 title: str | None = None, ax=None):
    """Plot training (solid) and validation (dashed) curves per epoch.

    Args:
        history (History | dict | list): one :class:`emoser.train.History` (or its
            ``to_dict()``), or a list of them to compare runs.
        metric (str): ``"accuracy"`` (in percent) or ``"loss"``.
        labels (sequence of str | None): one legend label per history
            (default ``run 1``, ``run 2``, ...; no prefix for a single history).
        title (str | None): figure title (default ``"Accuracy per epoch"`` / ``"Loss per epoch"``).
        ax (matplotlib Axes | None): draw into these axes instead of a new figure.

    Returns:
        matplotlib.figure.Figure: the figure.

    Chapter: chapters/06_training.ipynb
    """
    import matplotlib.pyplot as plt

    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {sorted(_METRICS)}, got {metric!r}")
    train_key, val_key, ylabel, scale = _METRICS[metric]
    histories = list(history) if isinstance(history, (list, tuple)) else [history]
    if labels is None:
        labels = [""] if len(histories) == 1 else [f"run {i + 1}" for i in range(len(histories))]
    if len(labels) != len(histories):
        raise ValueError(f"got {len(labels)} labels for {len(histories)} histories")
    if ax is None:
        fig, ax = plt.subplots()
    else:
        fig = ax.figure
    colors = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    for k, (h, label) in enumerate(zip(histories, labels)):
        records = _records(h)
        epochs = [r["epoch"] for r in records]
        color = colors[k % len(colors)]
        prefix = f"{label} " if label else ""
        ax.plot(epochs, [scale * r[train_key] for r in records], "-o", ms=3, color=color,
                label=f"{prefix}training")
        val = [r.get(val_key) for r in records]
        if any(v is not None for v in val):
            ax.plot(epochs, [np.nan if v is None else scale * v for v in val], "--s", ms=3,
                    color=color, label=f"{prefix}validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"{metric.capitalize()} per epoch")
    ax.legend()
    return fig


def plot_confusion(confusion, classes: Sequence[str], title: str = "Confusion matrix",
                   normalize: bool = False, ax=None):
    """Show a confusion matrix (rows = true class, columns = predicted) with counts in the cells.

    Args:
        confusion (array-like): ``C × C`` counts.
        classes (sequence of str): the class names, in label order.
        title (str): the title.
        normalize (bool): show each row as percentages of the true class.
        ax (matplotlib Axes | None): draw into these axes instead of a new figure.

    Returns:
        matplotlib.figure.Figure: the figure.

    Chapter: chapters/07_evaluation.ipynb
    """
    import matplotlib.pyplot as plt

    confusion = as_numpy(confusion)
    classes = list(classes)
    if (confusion.ndim != 2 or confusion.shape[0] != confusion.shape[1]
            or confusion.shape[0] != len(classes)):
        raise ValueError(f"confusion must be {len(classes)} × {len(classes)} "
                         f"for classes {classes}, got shape {confusion.shape}")
    if ax is None:
        size = 2.0 + 0.6 * len(classes)
        fig, ax = plt.subplots(figsize=(size + 0.5, size), constrained_layout=True)
    else:
        fig = ax.figure
    values = confusion.astype(float)
    if normalize:
        rows = values.sum(axis=1, keepdims=True)
        values = 100 * values / np.where(rows > 0, rows, 1)
    ax.imshow(values, cmap="Blues", vmin=0)
    threshold = values.max() / 2 if values.size and values.max() > 0 else 1
    for i in range(len(classes)):
        for j in range(len(classes)):
            text = f"{values[i, j]:.0f}%" if normalize else f"{int(confusion[i, j])}"
            ax.text(j, i, text, ha="center", va="center",
                    color="white" if values[i, j] > threshold else "black")
    ax.set_xticks(range(len(classes)), classes, rotation=45 if len(classes) > 3 else 0)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    ax.grid(False)
    return fig


def plot_defect_curves(runs: Sequence[DefectRun], title: str | None = None,
                       ncols: int | None = None):
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
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 3.2 * nrows),
                             sharex=True, sharey=True, squeeze=False, constrained_layout=True)
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


def plot_probabilities(results: Mapping[str, Mapping[str, float]],
                       title: str = "Class probabilities",
                       truth: Mapping[str, str] | None = None):
    """Bar charts of the class probabilities of several files, one panel per file.

    Args:
        results (Mapping): ``{file label: {class: probability}}`` (e.g. from
            :attr:`CliRun.probabilities`); every file must have the same classes.
        title (str): the figure's title.
        truth (Mapping | None): ``{file label: true class}`` where known: that bar gets an edge
            and the panel title says it.

    Returns:
        matplotlib.figure.Figure: the figure.

    Raises:
        ValueError: no results, or files with different classes.

    Chapter: chapters/12_your_voice.ipynb
    """
    import matplotlib.pyplot as plt

    if not results:
        raise ValueError("plot_probabilities needs at least one file's probabilities")
    labels = list(results)
    classes = list(results[labels[0]])
    for label in labels:
        if list(results[label]) != classes:
            raise ValueError(f"{label!r} has classes {list(results[label])}, expected {classes}")
    truth = dict(truth or {})
    n = len(labels)
    fig, axes = plt.subplots(1, n, figsize=(max(2.3 * n, 4.0), 3.4), sharey=True, squeeze=False,
                             constrained_layout=True)
    for ax, label in zip(axes[0], labels):
        probs = np.array([results[label][c] for c in classes], dtype=float)
        colors = [f"C{k}" for k in range(len(classes))]
        bars = ax.bar(range(len(classes)), probs, color=colors)
        if label in truth and truth[label] in classes:
            bars[classes.index(truth[label])].set(edgecolor="black", linewidth=2)
        ax.set_xticks(range(len(classes)), classes, rotation=45 if len(classes) > 3 else 0)
        ax.set_ylim(0, 1.05)
        ax.axhline(1 / len(classes), color="gray", lw=0.8, ls="--")
        ax.set_title(label + (f"\n(true: {truth[label]})" if label in truth else ""), fontsize=9)
        ax.set_xlabel("class")
    axes[0, 0].set_ylabel("probability")
    fig.suptitle(title)
    return fig
