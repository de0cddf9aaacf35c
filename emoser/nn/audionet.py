"""AudioNet: a 1-D CNN over each frame, hand-built LSTM layers over the frames.

Input ``N × T × D`` (zero-padded frame sequences) and the true lengths ``N``;
output logits ``N × numClass``. Only the valid frames go through the CNN;
padded frames never touch it. By default the front-end and the LSTM stack are
computed by :mod:`emoser.nn.kernels` (the same function, faster; chapter 8); the
switches ``gemm_frontend``, ``wavefront_lstm`` and ``LstmLayer.fused`` turn
them back into the literal modules.

Chapter: chapters/05_audionet.ipynb
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..common import DEFAULT_FRAME_LENGTH
from .kernels.frontend import frontend_gemm
from .kernels.plan import frontend_receptive_field, needed_lengths
from .kernels.recurrence import lstm_stack_last
from .lstm import LstmLayer

__all__ = ["AudioNet", "min_frame_length", "describe_shapes", "relu_max_pool2"]


class _ReluMaxPool2(torch.autograd.Function):
    """``max_pool1d(relu(y), 2, 2)`` whose backward keeps two boolean masks, not int64 indices."""

    @staticmethod
    def forward(ctx, y):
        half = y.shape[-1] // 2  # an odd last sample is dropped, as max pooling does
        left, right = y[..., 0:2 * half:2], y[..., 1:2 * half:2]
        take_left = left >= right  # ties go to the first element, as in max_pool1d
        out = torch.where(take_left, left, right).clamp_min_(0)  # ReLU commutes with max
        ctx.save_for_backward(take_left, out > 0)
        ctx.length = y.shape[-1]
        return out

    @staticmethod
    def backward(ctx, grad):
        take_left, positive = ctx.saved_tensors
        grad = grad * positive  # the ReLU's gradient: 0 where the output is 0
        half = grad.shape[-1]
        grad_y = grad.new_zeros(grad.shape[:-1] + (ctx.length,))
        grad_y[..., 0:2 * half:2] = grad * take_left
        grad_y[..., 1:2 * half:2] = grad * ~take_left
        return grad_y


def relu_max_pool2(y: torch.Tensor) -> torch.Tensor:
    """ReLU, then max pooling 2/2 over the last axis: ``F.max_pool1d(F.relu(y), 2, 2)``.

    The same values and the same gradients (ties go to the first element, as in
    ``max_pool1d``), computed faster: the forward takes the larger of each pair, the backward
    routes the gradient with two boolean masks instead of the int64 indices that
    ``max_pool1d`` stores and scatters. Chapter 8 measures what this saves in training.

    Chapter: chapters/08_speed.ipynb

    Args:
        y (torch.Tensor): ``... × L`` (e.g. ``M × C × L`` convolution outputs).

    Returns:
        torch.Tensor: ``... × ⌊L/2⌋``.
    """
    if y.shape[-1] < 2:
        raise ValueError("relu_max_pool2 needs at least 2 samples on the last axis, "
                         f"got {tuple(y.shape)}")
    return _ReluMaxPool2.apply(y)


def min_frame_length(convLayerNum: int = 3, convKernelSize: int = 5) -> int:
    """Shortest frame (in samples) that leaves at least one sample after the CNN.

    Worked backwards from one output sample: max pooling 2/2 needs ``2·m``
    inputs for ``m`` outputs, a stride-2 convolution of kernel ``k`` needs
    ``k + 2·(m - 1)``, and the first average pooling doubles again.

    Chapter: chapters/05_audionet.ipynb

    Args:
        convLayerNum (int): Number of convolution blocks (>= 1).
        convKernelSize (int): Convolution kernel size (>= 1).

    Returns:
        int: Minimum frame length ``D``, e.g. 254 for the defaults (3 blocks, kernel 5).
    """
    if convLayerNum < 1 or convKernelSize < 1:
        raise ValueError("convLayerNum and convKernelSize must be >= 1, "
                         f"got {convLayerNum}, {convKernelSize}")
    _, inputs = needed_lengths(1, convLayerNum, convKernelSize)
    return 2 * inputs[0]  # average pooling 2/2 before block 1


class AudioNet(nn.Module):
    """CNN front-end per frame + LSTM over frames + linear classifier.

    Chapter: chapters/05_audionet.ipynb

    Args:
        numClass (int): Number of classes (logits).
        inDim (int): Frame length ``D`` in samples (>= :func:`min_frame_length`).
        convLayerNum (int): Convolution blocks (conv stride 2, ReLU, max pooling 2/2), >= 1.
        convOutNum (int): Channels of every convolution.
        convKernelSize (int): Kernel size of every convolution.
        hiddenSize (int): LSTM hidden size.
        lstmLayerNum (int): Number of stacked LSTM layers (>= 1); the last one
            returns each sequence's state at its last valid step.
        sharedConv (bool): ``True`` (as in the original exercise): blocks 2 … convLayerNum
            all apply one and the same ``Conv1d`` module; ``False``: each has its own.

    Attributes:
        feature_size (int): ``F``, the features per frame after the CNN
            (measured with a dummy frame).
        conv1 (nn.Conv1d): ``1 → convOutNum``.
        conv_rest (nn.ModuleList): One module if shared, else ``convLayerNum - 1`` modules.
        lstm (nn.ModuleList): The :class:`~emoser.nn.LstmLayer` stack.
        fc (nn.Linear): ``hiddenSize → numClass``.
    """

    def __init__(self, numClass: int = 2, inDim: int = DEFAULT_FRAME_LENGTH, convLayerNum: int = 3,
                 convOutNum: int = 64, convKernelSize: int = 5, hiddenSize: int = 64,
                 lstmLayerNum: int = 2, sharedConv: bool = True):
        super().__init__()
        for name, value in (("numClass", numClass), ("inDim", inDim),
                            ("convLayerNum", convLayerNum), ("convOutNum", convOutNum),
                            ("convKernelSize", convKernelSize), ("hiddenSize", hiddenSize),
                            ("lstmLayerNum", lstmLayerNum)):
            if int(value) < 1:
                raise ValueError(f"AudioNet: {name} must be >= 1, got {value}")
        minimum = min_frame_length(convLayerNum, convKernelSize)
        if inDim < minimum:
            raise ValueError(
                f"AudioNet: frame length inDim={inDim} is too short for {convLayerNum} "
                f"convolution blocks with kernel {convKernelSize}; "
                f"the minimum frame length is {minimum} samples"
            )
        self.numClass, self.inDim = int(numClass), int(inDim)
        self.convLayerNum, self.convOutNum = int(convLayerNum), int(convOutNum)
        self.convKernelSize, self.hiddenSize = int(convKernelSize), int(hiddenSize)
        self.lstmLayerNum, self.sharedConv = int(lstmLayerNum), bool(sharedConv)

        self.avgpool = nn.AvgPool1d(2, 2)
        self.conv1 = nn.Conv1d(1, convOutNum, convKernelSize, stride=2)
        n_rest = convLayerNum - 1
        n_modules = min(n_rest, 1) if sharedConv else n_rest
        self.conv_rest = nn.ModuleList(
            nn.Conv1d(convOutNum, convOutNum, convKernelSize, stride=2) for _ in range(n_modules)
        )
        self.maxpool = nn.MaxPool1d(2, 2)
        self.frontend_plan = frontend_receptive_field(self.inDim, self.convLayerNum,
                                                      self.convKernelSize)
        self.feature_size = self.frontend_width()
        sizes = [self.feature_size] + [hiddenSize] * lstmLayerNum
        self.lstm = nn.ModuleList(LstmLayer(sizes[k], sizes[k + 1]) for k in range(lstmLayerNum))
        self.fc = nn.Linear(hiddenSize, numClass)

    #: ``True``: the front-end applies ReLU and max pooling with :func:`relu_max_pool2`
    #: (the same numbers, faster); ``False``: with ``F.relu`` and ``nn.MaxPool1d``, as
    #: written in the original. Chapter 8 times both.
    fast_pool: bool = True

    #: ``True``: :meth:`frontend` computes the same function as matrix products with a
    #: hand-written backward pass (:func:`emoser.nn.kernels.frontend_gemm`, only the samples that
    #: reach the output); ``False``: with the modules, as written below. Chapter 8 times both.
    gemm_frontend: bool = True

    #: ``True``: with two or more LSTM layers on their fused path, run them together as a
    #: wavefront (:func:`emoser.nn.kernels.lstm_stack_last`, the same result); ``False``: one
    #: layer after the other, as written in :meth:`_forward`. Chapter 8 times both.
    wavefront_lstm: bool = True

    def conv_blocks(self):
        """The convolution applied in each block, in order (the same module repeats if shared).

        Chapter: chapters/05_audionet.ipynb

        Returns:
            list[nn.Conv1d]: ``convLayerNum`` entries.
        """
        rest = [self.conv_rest[0 if self.sharedConv else k] for k in range(self.convLayerNum - 1)]
        return [self.conv1] + rest

    def frontend(self, frames: torch.Tensor, trace: list | None = None) -> torch.Tensor:
        """Features of independent frames: ``M × D`` → ``M × F``.

        With ``gemm_frontend`` (the default) and no ``trace``, the same function is computed
        by :func:`emoser.nn.kernels.frontend_gemm` (chapter 8); otherwise by
        :meth:`frontend_literal`, the modules applied one after the other.

        Chapter: chapters/05_audionet.ipynb

        Args:
            frames (torch.Tensor): ``M × D`` frames.
            trace (list | None): If given, ``(stage name, shape)`` pairs are appended.

        Returns:
            torch.Tensor: ``M × F`` features.
        """
        if self.gemm_frontend and trace is None and not frames.requires_grad and frames.ndim == 2:
            return frontend_gemm(frames, self.frontend_plan, self.conv_blocks())
        return self.frontend_literal(frames, trace)

    def frontend_literal(self, frames: torch.Tensor, trace: list | None = None) -> torch.Tensor:
        """The front-end as the spec writes it: average pooling, then per block conv, ReLU,
        max pooling.

        Arguments and result as in :meth:`frontend`; this also gives the frames a gradient.

        Chapter: chapters/05_audionet.ipynb
        """
        def note(name, value):
            if trace is not None:
                trace.append((name, tuple(value.shape)))
            return value

        y = note("frames as channels (M×1×D)", frames.unsqueeze(1))
        y = note("average pooling 2/2", self.avgpool(y))
        for k, conv in enumerate(self.conv_blocks(), start=1):
            shared = " (shared)" if self.sharedConv and k > 1 else ""
            if self.fast_pool:  # the same numbers as the else branch, computed faster
                y = note(f"conv{k}{shared} + ReLU", conv(y))  # ReLU(conv) has the conv's shape
                y = note(f"max pooling {k}", relu_max_pool2(y))
            else:
                y = note(f"conv{k}{shared} + ReLU", F.relu(conv(y)))
                y = note(f"max pooling {k}", self.maxpool(y))
        return note("flatten (M×F)", y.flatten(1))

    def frontend_width(self) -> int:
        """``F``: the number of features the front-end makes of one frame.

        Pushes one all-zero frame through the CNN and reads the width of the result.

        Chapter: chapters/05_audionet.ipynb
        """
        with torch.no_grad():
            return int(self.frontend(torch.zeros(1, self.inDim)).shape[1])

    def sequence_features(self, x: torch.Tensor, lengths: torch.Tensor,
                          trace: list | None = None) -> torch.Tensor:
        """Front-end features of the valid frames only, scattered back into padded sequences.

        The padded frames never go through the CNN: the valid frames of the whole batch are
        gathered (``M = sum(lengths)`` of them), the front-end turns them into features, and
        the features are put back at their places; padded steps hold zeros.

        Args:
            x (torch.Tensor): ``N × T × D`` zero-padded frames.
            lengths (torch.Tensor): ``N`` valid frame counts in ``1..T``.
            trace (list | None): If given, ``(stage name, shape)`` pairs are appended.

        Returns:
            torch.Tensor: ``N × T' × F`` features, ``T' = max(lengths)``.

        Chapter: chapters/05_audionet.ipynb
        """
        n, steps = x.shape[0], int(lengths.max())
        x = x[:, :steps]  # padding beyond the longest sequence is never used
        mask = torch.arange(steps, device=x.device).view(1, steps) < lengths.view(n, 1)
        feats = self.frontend(x[mask], trace)  # only valid frames: M = sum(lengths)
        seq = x.new_zeros(n, steps, self.feature_size).index_put((mask,), feats)
        if trace is not None:
            trace.append(("features scattered back (N×T×F)", tuple(seq.shape)))
        return seq

    def _forward(self, x: torch.Tensor, lengths=None, trace: list | None = None) -> torch.Tensor:
        if x.ndim != 3 or x.shape[2] != self.inDim:
            raise ValueError(f"AudioNet expects input N × T × {self.inDim}, got {tuple(x.shape)}")
        if x.dtype != self.fc.weight.dtype:
            raise ValueError(
                f"AudioNet: input dtype {x.dtype} differs from the model's {self.fc.weight.dtype}; "
                f"convert one of them (e.g. model.double() or x.float())"
            )
        n, t_pad, _ = x.shape
        if trace is not None:
            trace.append(("input (N×T×D)", tuple(x.shape)))
        if lengths is None:
            lengths = torch.full((n,), t_pad, dtype=torch.long, device=x.device)
        else:
            lengths = torch.as_tensor(lengths, dtype=torch.long, device=x.device)
            if lengths.shape != (n,):
                raise ValueError(f"AudioNet: lengths must have shape ({n},), "
                                 f"got {tuple(lengths.shape)}")
            lo, hi = int(lengths.min()), int(lengths.max())
            if lo < 1 or hi > t_pad:
                raise ValueError(f"AudioNet: lengths must lie in 1..{t_pad}, "
                                 f"got min {lo}, max {hi}")
        seq = self.sequence_features(x, lengths, trace)
        if trace is None and self._use_wavefront():
            return self.fc(F.relu(lstm_stack_last(self.lstm, seq, lengths)))
        h = seq
        for k, layer in enumerate(self.lstm[:-1], start=1):
            h, _ = layer(h, lengths)
            if trace is not None:
                trace.append((f"LSTM {k}, all steps (N×T×H)", tuple(h.shape)))
        h, _ = self.lstm[-1](h, lengths, last_only=True)
        if trace is not None:
            trace.append((f"LSTM {len(self.lstm)}, last valid step (N×H)", tuple(h.shape)))
        logits = self.fc(F.relu(h))
        if trace is not None:
            trace.append(("ReLU + linear: logits (N×numClass)", tuple(logits.shape)))
        return logits

    def _use_wavefront(self) -> bool:
        return (self.wavefront_lstm and len(self.lstm) >= 2
                and all(layer.fast and layer.fused for layer in self.lstm))

    def forward(self, x: torch.Tensor, lengths=None) -> torch.Tensor:
        """Classify padded frame sequences.

        Chapter: chapters/05_audionet.ipynb

        Args:
            x (torch.Tensor): ``N × T × D`` zero-padded frames (dtype of the model).
            lengths: ``N`` valid frame counts in ``1..T`` (``LongTensor``); ``None`` means
                all ``T``.

        Returns:
            torch.Tensor: Logits ``N × numClass`` (feed to ``cross_entropy``).
        """
        return self._forward(x, lengths)


def describe_shapes(model: AudioNet, x: torch.Tensor, lengths=None) -> list:
    """Shape of the data at every stage of AudioNet, for one batch.

    Chapter: chapters/05_audionet.ipynb

    Args:
        model (AudioNet): The model.
        x (torch.Tensor): ``N × T × D`` input batch.
        lengths: ``N`` valid frame counts (``None``: all ``T``).

    Returns:
        list[tuple[str, tuple[int, ...]]]: ``(stage name, shape)`` pairs, input first, logits last.
        ``M`` in the names is the number of valid frames, ``sum(lengths)``.
    """
    trace = []
    with torch.no_grad():
        model._forward(x, lengths, trace)
    return trace
