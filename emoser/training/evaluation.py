"""Measuring a trained model: loss, accuracy, probabilities, confusion matrix.

Chapter: chapters/07_evaluation.ipynb
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .batches import eval_loader, model_device, run_batches
from .runtime import device as resolve_device

__all__ = ["Evaluation", "evaluate"]


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
        """Unweighted mean of the per-class F1 scores
        (classes never true nor predicted are skipped).

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
        classes = (list(classes) if classes is not None
                   else [str(i) for i in range(len(self.confusion))])
        lines = [f"accuracy {100 * self.accuracy:.2f}%  loss {self.loss:.4f}  "
                 f"macro F1 {self.macro_f1():.3f}"]
        width = max(len(c) for c in classes)
        for name, recall, n in zip(classes, self.per_class_recall(), self.confusion.sum(axis=1)):
            lines.append(f"  {name:<{width}}  recall {100 * recall:5.1f}%  (n={n})")
        return "\n".join(lines)



def evaluate(model, dataset, batch_size=32, device=None, n_classes=None):
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
        dev = model_device(model)
    else:
        dev = resolve_device(device)
        model.to(dev)
    loader, order = eval_loader(dataset, batch_size, dev)  # batches sorted by length
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            loss, accuracy, outputs = run_batches(model, loader, dev, keep_outputs=True)
    finally:
        model.train(was_training)
    sorted_logits = torch.cat(outputs).float().cpu()
    logits = torch.empty_like(sorted_logits)
    logits[torch.from_numpy(order)] = sorted_logits  # back to the data set's order
    probabilities = torch.softmax(logits, dim=1).numpy()
    predictions = probabilities.argmax(axis=1).astype(np.int64)
    if hasattr(dataset, "labels"):
        targets = np.asarray(dataset.labels, dtype=np.int64)
    else:
        targets = np.array([int(dataset[i][1]) for i in range(len(dataset))], dtype=np.int64)
    c = n_classes or probabilities.shape[1]
    confusion = np.zeros((c, c), dtype=np.int64)
    np.add.at(confusion, (targets, predictions), 1)  # rows: true class, columns: predicted
    return Evaluation(loss=loss, accuracy=accuracy, predictions=predictions, targets=targets,
                      probabilities=probabilities, confusion=confusion)
