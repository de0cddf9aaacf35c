"""A faithful re-implementation of the original exercise's code, defects included.

This module exists for two reasons: the speed benchmark (``benchmarks/training_speed.py``)
needs the original as a baseline, and the chapter on what went wrong shows each defect at
work next to its fix in emoser. **Do not use it for real work**: use
:class:`emoser.model.AudioNet`, :mod:`emoser.frames` and :func:`emoser.train.fit`.

The model keeps the original's names (``inputSize``, ``convLayerNum`` ...) and its defects:

* float64 throughout; the zero initial LSTM state is created on the CPU in float64 on every
  call, whatever the input's device and dtype (the original wrapped it in the long-deprecated
  ``torch.autograd.Variable``; a plain tensor behaves the same today);
* each sequence's last valid step is picked with a Python loop over the batch;
* one and the same Conv1d (64 -> 64, hard-coded) is applied ``convLayerNum - 1`` times;
* the LSTM hidden size (64) is hard-coded and ``lstmLayerNum`` is ignored (always two layers);
* the flattened feature size comes from a hand formula (:func:`original_feature_size`);
* padded frames go through the CNN and the LSTM.

The pipeline defects are switchable flags of :func:`original_prepare` and
:func:`original_train`; each flag's default reproduces the original, and its docstring says
what emoser does instead.

Chapter: chapters/09_what_went_wrong.ipynb
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "OriginalLSTMCell",
    "OriginalLSTMLayer",
    "OriginalAudioNet",
    "original_feature_size",
    "last_step_loop",
    "last_step_gather",
    "original_frames",
    "OriginalData",
    "original_prepare",
    "original_train",
    "original_evaluate",
]

HIDDEN = 64  # the original's hard-coded LSTM hidden size and CNN channel count


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------
class OriginalLSTMCell(nn.Module):
    """The original LSTM cell: four gates, each an ``nn.Linear`` over ``[x_t, h_{t-1}]``.

    The parameter names match :class:`emoser.lstm.LstmCell`, so weights copy across. This cell
    itself is correct; its defect lives in the layer, which creates the zero state.

    Args:
        inputSize (int): size ``I`` of ``x_t``.
        hiddenSize (int): size ``H`` of ``h`` and ``c``.

    Chapter: chapters/09_what_went_wrong.ipynb
    """

    def __init__(self, inputSize: int, hiddenSize: int):
        super().__init__()
        self.inputSize, self.hiddenSize = inputSize, hiddenSize
        self.input_gate = nn.Linear(inputSize + hiddenSize, hiddenSize)
        self.forget_gate = nn.Linear(inputSize + hiddenSize, hiddenSize)
        self.output_gate = nn.Linear(inputSize + hiddenSize, hiddenSize)
        self.candidate = nn.Linear(inputSize + hiddenSize, hiddenSize)

    def forward(self, x, state):
        """One step: ``x`` (N x I) and ``state=(h, c)`` -> new ``(h, c)``.

        Chapter: chapters/09_what_went_wrong.ipynb
        """
        h, c = state
        xh = torch.cat((x, h), dim=1)  # four separate products of the same [x, h]
        i = torch.sigmoid(self.input_gate(xh))
        f = torch.sigmoid(self.forget_gate(xh))
        o = torch.sigmoid(self.output_gate(xh))
        g = torch.tanh(self.candidate(xh))
        c = f * c + i * g
        h = o * torch.tanh(c)
        return h, c


def last_step_loop(h_all: torch.Tensor, lengths, device=None) -> torch.Tensor:
    """The original read-out: a Python loop picking ``h_all[n, lengths[n] - 1]`` for each ``n``.

    DEFECT: one indexing operation (and one autograd node) per sequence. emoser uses
    :func:`last_step_gather` (one ``gather`` for the whole batch). ``device`` (default: the
    CPU, as in the original) is where the output buffer is made.

    Chapter: chapters/09_what_went_wrong.ipynb
    """
    out = torch.zeros(h_all.shape[0], h_all.shape[2], dtype=torch.float64, device=device)  # float64 again
    for n in range(h_all.shape[0]):
        out[n] = h_all[n, int(lengths[n]) - 1]
    return out


def last_step_gather(h_all: torch.Tensor, lengths) -> torch.Tensor:
    """The fix of :func:`last_step_loop`: one vectorized gather at ``lengths - 1``.

    Chapter: chapters/09_what_went_wrong.ipynb
    """
    idx = torch.as_tensor(lengths, device=h_all.device).long() - 1
    idx = idx.view(-1, 1, 1).expand(-1, 1, h_all.shape[2])
    return h_all.gather(1, idx).squeeze(1)


class OriginalLSTMLayer(nn.Module):
    """The original LSTM layer: a loop over time steps around :class:`OriginalLSTMCell`.

    DEFECTS: the zero initial state is made with ``torch.zeros(..., dtype=torch.float64)`` on the
    CPU on every call (the original: ``Variable(torch.zeros(N, H).double())``), so a float32
    model raises a dtype error and a GPU model a device error; the last valid step is picked
    with :func:`last_step_loop`. emoser's :class:`emoser.lstm.LstmLayer` makes the state
    on ``x.device`` in ``x.dtype`` and gathers the last step in one operation.

    Args:
        inputSize (int): input size ``I``.
        hiddenSize (int): hidden size ``H``.

    Chapter: chapters/09_what_went_wrong.ipynb
    """

    #: ``False`` (the original): the zero state and the read-out buffer are made on the CPU.
    #: ``True`` is the smallest change that lets the original run on a GPU at all (the
    #: ``.cuda()`` a student adds): they are made on ``x.device``, still in float64. The speed
    #: benchmark uses it for its ``original`` variant on a GPU; nothing else changes.
    state_on_input_device = False

    def __init__(self, inputSize: int, hiddenSize: int):
        super().__init__()
        self.hiddenSize = hiddenSize
        self.cell = OriginalLSTMCell(inputSize, hiddenSize)

    def forward(self, x, lengths=None, last_only=False):
        """Run over ``x`` (N x T x I); all ``(h, c)`` (N x T x H), or the last valid step's.

        Chapter: chapters/09_what_went_wrong.ipynb
        """
        N, T, _ = x.shape
        # The original: h = Variable(torch.zeros(N, H).double()) -- CPU, float64, every call.
        dev = x.device if self.state_on_input_device else None
        h = torch.zeros(N, self.hiddenSize, dtype=torch.float64, device=dev)
        c = torch.zeros(N, self.hiddenSize, dtype=torch.float64, device=dev)
        hs, cs = [], []
        for t in range(T):  # padded steps too: every sequence runs for the batch's T steps
            h, c = self.cell(x[:, t, :], (h, c))
            hs.append(h)
            cs.append(c)
        h_all, c_all = torch.stack(hs, dim=1), torch.stack(cs, dim=1)
        if not last_only:
            return h_all, c_all
        if lengths is None:
            lengths = [T] * N
        return last_step_loop(h_all, lengths, dev), last_step_loop(c_all, lengths, dev)


def original_feature_size(inDim: int, convLayerNum: int = 3, convKernelSize: int = 5) -> int:
    """The original's hand formula for the flattened CNN feature size ``F``.

    DEFECT: written by hand instead of measured. Our reconstruction makes the typical slip of
    such formulas -- it drops the ``+ 1`` of the convolution output length
    ``(L - K) // 2 + 1`` -- which happens to give the right answer for ``D = 500``
    (``F = 128``) but not for other frame lengths (``D = 400``: 64 instead of 128), so the
    model is built fine and fails only in ``forward``. emoser's ``AudioNet.feature_size``
    pushes a dummy frame through the CNN instead.

    Chapter: chapters/09_what_went_wrong.ipynb
    """
    length = inDim // 2  # average pooling
    for _ in range(convLayerNum):
        length = (length - convKernelSize) // 2 // 2  # conv stride 2 (missing "+ 1"), max pool
    return HIDDEN * length


class OriginalAudioNet(nn.Module):
    """The original AudioNet: frame-wise 1-D CNN, two LSTM layers, a linear classifier.

    DEFECTS (kept on purpose): float64 (``dtype`` default, the original called ``.double()``);
    ``convOutNum`` only reaches the first Conv1d while the shared Conv1d is hard-coded
    64 -> 64 (any other ``convOutNum`` fails in ``forward``); the same Conv1d module is applied
    ``convLayerNum - 1`` times; the LSTM hidden size is hard-coded to 64 and ``lstmLayerNum``
    is ignored; ``F`` comes from :func:`original_feature_size`; padded frames pass through the
    CNN and the LSTM.

    The parameters mirror :class:`emoser.model.AudioNet` (``sharedConv=True``); see
    :meth:`load_from`.

    Args:
        numClass (int): number of classes.
        inDim (int): frame length ``D`` in samples.
        convLayerNum (int): number of convolution blocks.
        convOutNum (int): channels of the first convolution (must be 64 to work).
        convKernelSize (int): kernel size of every convolution.
        lstmLayerNum (int): ignored, as in the original.
        dtype (torch.dtype): parameter dtype, default float64 like the original.

    Chapter: chapters/09_what_went_wrong.ipynb
    """

    def __init__(self, numClass=2, inDim=500, convLayerNum=3, convOutNum=64, convKernelSize=5,
                 lstmLayerNum=2, dtype=torch.float64):
        super().__init__()
        self.convLayerNum = convLayerNum
        self.conv1 = nn.Conv1d(1, convOutNum, convKernelSize, stride=2)
        self.conv2 = nn.Conv1d(HIDDEN, HIDDEN, convKernelSize, stride=2)  # hard-coded, shared
        self.flatSize = original_feature_size(inDim, convLayerNum, convKernelSize)
        self.lstm1 = OriginalLSTMLayer(self.flatSize, HIDDEN)  # lstmLayerNum ignored: two layers
        self.lstm2 = OriginalLSTMLayer(HIDDEN, HIDDEN)
        self.fc = nn.Linear(HIDDEN, numClass)
        self.to(dtype)

    def forward(self, x, lengths):
        """``x`` (N x T x D padded frames), ``lengths`` (N) -> logits (N x numClass).

        Chapter: chapters/09_what_went_wrong.ipynb
        """
        N, T, D = x.shape
        x = x.reshape(N * T, 1, D)  # every frame, padded ones included, goes through the CNN
        x = F.avg_pool1d(x, 2, 2)
        x = F.max_pool1d(F.relu(self.conv1(x)), 2, 2)
        for _ in range(self.convLayerNum - 1):
            x = F.max_pool1d(F.relu(self.conv2(x)), 2, 2)  # the same module every time
        x = x.reshape(N, T, self.flatSize)
        x, _ = self.lstm1(x)
        h, _ = self.lstm2(x, lengths, last_only=True)
        return self.fc(F.relu(h))

    @torch.no_grad()
    def load_from(self, net: nn.Module) -> "OriginalAudioNet":
        """Copy the weights of an :class:`emoser.model.AudioNet` (``sharedConv=True``) into self.

        The copy goes by structure: the Conv1d modules in order (first and shared), the
        LSTM cells in order, the last Linear. Values are cast to this model's dtype.

        Returns:
            OriginalAudioNet: ``self``.

        Chapter: chapters/09_what_went_wrong.ipynb
        """
        convs = [m for m in net.modules() if isinstance(m, nn.Conv1d)]
        cells = [m for m in net.modules() if all(hasattr(m, g) for g in _GATES)]
        linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
        if len(convs) != 2 or len(cells) != 2:
            raise ValueError(f"load_from needs an AudioNet with one shared Conv1d and two LSTM layers; "
                             f"got {len(convs)} Conv1d and {len(cells)} LSTM cells")
        pairs = [(self.conv1, convs[0]), (self.conv2, convs[1]), (self.fc, linears[-1])]
        for mine, theirs in zip((self.lstm1.cell, self.lstm2.cell), cells):
            pairs += [(getattr(mine, g), getattr(theirs, g)) for g in _GATES]
        for mine, theirs in pairs:
            for name, p in mine.named_parameters():
                q = getattr(theirs, name)
                if p.shape != q.shape:
                    raise ValueError(f"load_from: shape mismatch for {name}: {tuple(p.shape)} vs {tuple(q.shape)}")
                p.copy_(q)
        return self


_GATES = ("input_gate", "forget_gate", "output_gate", "candidate")


# --------------------------------------------------------------------------------------------
# The pipeline around the model
# --------------------------------------------------------------------------------------------
def original_frames(wave: np.ndarray, frame_length: int, wrong_last_frame: bool = True) -> np.ndarray:
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
        start = (full - 1) * frame_length if (wrong_last_frame and full > 0) else full * frame_length
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
            log("epoch {epoch:2d}  loss {train_loss:.4f}  acc {train_acc:.2%}  {seconds:.1f} s".format(**row)
                + ("  test acc {test_acc:.2%}".format(**row) if test_every_epoch else ""))
    return history
