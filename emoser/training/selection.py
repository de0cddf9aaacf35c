"""Model selection during training: keep the weights of the best validation epoch.

Chapter: chapters/10_speaker_independent.ipynb
"""
from __future__ import annotations

from collections.abc import Mapping

__all__ = ["KeepBest"]


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
            raise ValueError("KeepBest needs a validation set: "
                             "the epoch record has no val_acc/val_loss")
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
