"""The record of a training run: one row per epoch, and the run's settings.

Chapter: chapters/06_training.ipynb
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..common import format_table

__all__ = ["History"]

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
        return format_table(rows, header, align="r" * len(header))

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
        return cls(epochs=[dict(r) for r in data.get("epochs", [])],
                   params=dict(data.get("params", {})))

    def __str__(self) -> str:
        return self.as_table()
