"""The original exercise's pipeline around its model: framing, splitting, training, testing.

Each defect is a switchable flag whose default reproduces the original; its docstring says
what emoser does instead.

Chapter: chapters/09_what_went_wrong.ipynb
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["original_frames", "OriginalData", "original_prepare", "original_train",
           "original_evaluate"]


def original_frames(wave: np.ndarray, frame_length: int,
                    wrong_last_frame: bool = True) -> np.ndarray:
    """Cut a waveform into frames of ``frame_length`` samples, zero-padding the last one.

    DEFECT (``wrong_last_frame=True``): the original sliced the remainder of the waveform
    from the wrong offset -- one frame too early -- so the last frame repeats the start of the
    previous frame and the true tail of the utterance is lost. emoser's
    :func:`emoser.frames.frame_signal` takes the remainder from where the last full frame ends.

    Returns:
        np.ndarray: ``(n_frames, frame_length)`` float64.

    Chapter: chapters/09_what_went_wrong.ipynb
    """
    wave = np.asarray(wave, dtype=np.float64)
    full, rem = divmod(len(wave), frame_length)
    frames = [wave[i * frame_length:(i + 1) * frame_length] for i in range(full)]
    if rem:
        start = ((full - 1) * frame_length if (wrong_last_frame and full > 0)
                 else full * frame_length)
        last = np.zeros(frame_length)
        last[:rem] = wave[start:start + rem]
        frames.append(last)
    return np.stack(frames)


@dataclass
class OriginalData:
    """Padded tensors the way the original fed them to the model (see :func:`original_prepare`).

    ``lengths_train``/``lengths_test`` are what the model is told; ``true_lengths_*`` the
    real frame counts of the samples.

    Chapter: chapters/09_what_went_wrong.ipynb
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    lengths_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    lengths_test: torch.Tensor
    true_lengths_train: torch.Tensor
    true_lengths_test: torch.Tensor
    mean: float
    std: float
    train_idx: np.ndarray
    test_idx: np.ndarray
    flags: dict = field(default_factory=dict)


def _split(labels: np.ndarray, test_size: float, seed) -> tuple[np.ndarray, np.ndarray]:
    """70/30 per class at random (the original used no seed)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(test_size * len(idx)))
        test += list(idx[:n_test])
        train += list(idx[n_test:])
    return np.array(train), np.array(test)


def original_prepare(waves, labels, frame_length: int = 500, *, train_idx=None, test_idx=None,
                     test_size: float = 0.3, seed=None, leak_stats: bool = True,
                     wrong_last_frame: bool = True, misaligned_lengths: bool = True,
                     class_ordered: bool = True, dtype=torch.float64) -> OriginalData:
    """The original data preparation, with a flag per defect (``True`` = as the original did).

    Every sequence is padded to the longest one of the *whole* data set (not of its batch).

    Args:
        waves (list of np.ndarray): waveforms, in loading order (class by class).
        labels (array of int): class of each waveform.
        frame_length (int): samples per frame (500 in the original).
        train_idx, test_idx (array of int, optional): the split; default a random 70/30 split
            per class (``test_size``, ``seed``; the original had no seed).
        leak_stats (bool): DEFECT: normalization mean/std over *all* waveforms, test included
            (test information leaks into training). emoser: :meth:`emoser.frames.Normalizer.fit`
            on the training waveforms only.
        wrong_last_frame (bool): DEFECT: see :func:`original_frames`.
        misaligned_lengths (bool): DEFECT: the length vector was built for the unsplit data set
            and indexed by position (batch ``k`` of the training set read
            ``lengths[10k:10k+10]``), so sample ``j`` of a split was told the length of sample
            ``j`` of the unsplit set. emoser: lengths travel with their sample
            (:class:`emoser.frames.FrameDataset`, :func:`emoser.frames.collate_frames`).
        class_ordered (bool): DEFECT: the training (and test) samples keep the loading order,
            all of one class, then all of the other; combined with no shuffling in
            :func:`original_train` every batch holds a single class (the cause of the long 50 %
            plateau). emoser: :func:`emoser.train.fit` shuffles (``shuffle=True``).
        dtype (torch.dtype): float64 in the original.

    Returns:
        OriginalData: padded ``x_*`` (N x T_max x D), ``y_*``, the lengths the model is told
        and the true ones, the normalization statistics and the split.

    Chapter: chapters/09_what_went_wrong.ipynb
    """
    labels = np.asarray(labels)
    if len(waves) != len(labels):
        raise ValueError(f"original_prepare: {len(waves)} waveforms but {len(labels)} labels")
    if train_idx is None or test_idx is None:
        train_idx, test_idx = _split(labels, test_size, seed)
    train_idx, test_idx = np.asarray(train_idx), np.asarray(test_idx)
    if class_ordered:  # loading order = class order; the original never reordered
        train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
        train_idx = train_idx[np.argsort(labels[train_idx], kind="stable")]
        test_idx = test_idx[np.argsort(labels[test_idx], kind="stable")]
    stats_from = waves if leak_stats else [waves[i] for i in train_idx]
    allw = np.concatenate([np.asarray(w, dtype=np.float64) for w in stats_from])
    mean, std = float(allw.mean()), float(allw.std())
    frames = [original_frames((np.asarray(w, dtype=np.float64) - mean) / std, frame_length,
                              wrong_last_frame) for w in waves]
    lengths = np.array([len(f) for f in frames])  # unsplit, loading order
    x_all = np.zeros((len(frames), lengths.max(), frame_length))  # pad to the whole set's longest
    for n, f in enumerate(frames):
        x_all[n, :len(f)] = f

    def told(idx):
        return lengths[:len(idx)] if misaligned_lengths else lengths[idx]

    t = lambda a, dt=None: torch.as_tensor(np.ascontiguousarray(a), dtype=dt)  # noqa: E731
    return OriginalData(
        x_train=t(x_all[train_idx], dtype), y_train=t(labels[train_idx], torch.long),
        lengths_train=t(told(train_idx), torch.long),
        x_test=t(x_all[test_idx], dtype), y_test=t(labels[test_idx], torch.long),
        lengths_test=t(told(test_idx), torch.long),
        true_lengths_train=t(lengths[train_idx], torch.long),
        true_lengths_test=t(lengths[test_idx], torch.long),
        mean=mean, std=std, train_idx=train_idx, test_idx=test_idx,
        flags=dict(leak_stats=leak_stats, wrong_last_frame=wrong_last_frame,
                   misaligned_lengths=misaligned_lengths, class_ordered=class_ordered))


def original_evaluate(model, x, y, lengths, batch_size: int = 10, no_grad: bool = False):
    """Loss and accuracy over ``x`` in batches, the original way.

    DEFECT (``no_grad=False``): evaluated without ``torch.no_grad()``, so autograd records the
    whole forward pass for nothing (time and memory). emoser's :func:`emoser.train.evaluate`
    runs under ``torch.no_grad()`` in ``model.eval()`` mode.

    Returns:
        tuple[float, float]: mean cross-entropy loss and accuracy.

    Chapter: chapters/09_what_went_wrong.ipynb
    """
    ctx = torch.no_grad() if no_grad else torch.enable_grad()
    loss_sum, correct = 0.0, 0
    with ctx:
        for s in range(0, len(x), batch_size):
            out = model(x[s:s + batch_size], lengths[s:s + batch_size])
            yb = y[s:s + batch_size]
            loss_sum += F.cross_entropy(out, yb, reduction="sum").item()
            correct += (out.argmax(1) == yb).sum().item()
    return loss_sum / len(x), correct / len(x)


def original_train(model, data: OriginalData, *, epochs: int = 20, lr: float = 1e-4,
                   batch_size: int = 10, shuffle: bool = False, eval_in_loop: bool = True,
                   no_grad_eval: bool = False, seed=None, test_every_epoch: bool = False,
                   log=print) -> list[dict]:
    """The original training loop: Adam, fixed batch order, loss/accuracy printed per epoch.

    Args:
        model: an :class:`OriginalAudioNet` (or any ``model(x, lengths)``).
        data (OriginalData): from :func:`original_prepare`.
        epochs, lr, batch_size: 20, 1e-4 and 10 in the original.
        shuffle (bool): DEFECT when ``False`` (the original): batches in the same, class-ordered
            sequence every epoch. emoser shuffles every epoch.
        eval_in_loop (bool): DEFECT: ``model.eval()`` called inside the batch loop and
            ``model.train()`` never again, so training runs in evaluation mode (harmless here
            only because the model has no dropout or batch norm). emoser calls
            ``model.train()`` at the start of every epoch and ``eval()`` only to evaluate.
        no_grad_eval (bool): ``False`` reproduces the original's evaluation without
            ``torch.no_grad()`` (see :func:`original_evaluate`).
        seed (int, optional): ``None`` = no seed, as in the original (runs not reproducible).
        test_every_epoch (bool): also evaluate on the test set after each epoch (the original
            only did once, at the end).
        log (callable): receives one line per epoch; ``None`` for silence.

    Returns:
        list[dict]: per epoch ``epoch``, ``train_loss``, ``train_acc``, ``seconds`` (training
        only), and ``test_loss``/``test_acc`` when ``test_every_epoch``.

    Chapter: chapters/09_what_went_wrong.ipynb
    """
    if seed is not None:
        torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(data.x_train)
    history = []
    model.train()  # once, before the loop
    for epoch in range(1, epochs + 1):
        if not eval_in_loop:
            model.train()
        order = torch.randperm(n) if shuffle else torch.arange(n)
        start, loss_sum, correct = time.perf_counter(), 0.0, 0
        for s in range(0, n, batch_size):
            idx = order[s:s + batch_size]
            # the lengths are indexed like the samples; with misaligned_lengths=True the vector
            # itself already belongs to the unsplit data set (see original_prepare)
            out = model(data.x_train[idx], data.lengths_train[idx])
            loss = F.cross_entropy(out, data.y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if eval_in_loop:
                model.eval()  # the original's misplaced call; never undone
            loss_sum += loss.item() * len(idx)
            correct += (out.argmax(1) == data.y_train[idx]).sum().item()
        row = dict(epoch=epoch, train_loss=loss_sum / n, train_acc=correct / n,
                   seconds=time.perf_counter() - start)
        if test_every_epoch:
            row["test_loss"], row["test_acc"] = original_evaluate(
                model, data.x_test, data.y_test, data.lengths_test, batch_size, no_grad_eval)
        history.append(row)
        if log is not None:
            log("epoch {epoch:2d}  loss {train_loss:.4f}  acc {train_acc:.2%}  {seconds:.1f} s"
                .format(**row)
                + ("  test acc {test_acc:.2%}".format(**row) if test_every_epoch else ""))
    return history
