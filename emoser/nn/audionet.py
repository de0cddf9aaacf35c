"""AudioNet: a 1-D CNN over each frame, hand-built LSTM layers over the frames.

Input ``N × T × D`` (zero-padded frame sequences) and the true lengths ``N``;
output logits ``N × numClass``. Only the valid frames go through the CNN;
padded frames never touch it. The class is the model as taught (chapter 5): the modules
applied one after the other. ``engine="fast"`` (the default, chapter 8) computes the same
function with the same parameters by :mod:`emoser.nn.kernels`; ``engine="taught"`` runs the
code below, with any cell class.

Chapter: chapters/05_audionet.ipynb
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..common import DEFAULT_FRAME_LENGTH
from .kernels.engine import fast_forward, use_engine
from .kernels.plan import needed_lengths
from .kernels.pool import relu_max_pool2
from .lstm import LstmCell, LstmLayer

__all__ = ["AudioNet", "min_frame_length", "describe_shapes", "relu_max_pool2",
           "check_arguments", "check_batch"]


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


def check_arguments(numClass, inDim, convLayerNum, convOutNum, convKernelSize, hiddenSize,
                    lstmLayerNum) -> None:
    """Raise a one-line ``ValueError`` for sizes AudioNet cannot be built with.

    Chapter: chapters/05_audionet.ipynb
    """
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


def check_batch(model, x: torch.Tensor, lengths) -> torch.Tensor:
    """Check a batch for ``model`` (shape ``N × T × inDim``, the model's dtype, lengths in
    ``1..T``); return the lengths as a ``LongTensor`` on ``x``'s device (``None``: all ``T``).

    Chapter: chapters/05_audionet.ipynb
    """
    if x.ndim != 3 or x.shape[2] != model.inDim:
        raise ValueError(f"AudioNet expects input N × T × {model.inDim}, got {tuple(x.shape)}")
    if x.dtype != model.fc.weight.dtype:
        raise ValueError(
            f"AudioNet: input dtype {x.dtype} differs from the model's {model.fc.weight.dtype}; "
            f"convert one of them (e.g. model.double() or x.float())"
        )
    n, t_pad, _ = x.shape
    if lengths is None:
        return torch.full((n,), t_pad, dtype=torch.long, device=x.device)
    lengths = torch.as_tensor(lengths, dtype=torch.long, device=x.device)
    if lengths.shape != (n,):
        raise ValueError(f"AudioNet: lengths must have shape ({n},), got {tuple(lengths.shape)}")
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo < 1 or hi > t_pad:
        raise ValueError(f"AudioNet: lengths must lie in 1..{t_pad}, got min {lo}, max {hi}")
    return lengths


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
        engine (str): ``"taught"``: the code of this class, step by step; ``"fast"``: the
            same function by :mod:`emoser.nn.kernels` (chapter 8). See :meth:`set_engine`.
        cell (type): The LSTM cell class of every layer (``"fast"`` needs
            :class:`~emoser.nn.LstmCell`).

    Attributes:
        feature_size (int): ``F``, the features per frame after the CNN
            (measured with a dummy frame).
        conv1 (nn.Conv1d): ``1 → convOutNum``.
        conv_rest (nn.ModuleList): One module if shared, else ``convLayerNum - 1`` modules.
        lstm (nn.ModuleList): The :class:`~emoser.nn.LstmLayer` stack.
        fc (nn.Linear): ``hiddenSize → numClass``.
    """

    def __init__(self, numClass=2, inDim=DEFAULT_FRAME_LENGTH, convLayerNum=3, convOutNum=64,
                 convKernelSize=5, hiddenSize=64, lstmLayerNum=2, sharedConv=True,
                 engine="fast", cell=LstmCell):
        super().__init__()
        check_arguments(numClass, inDim, convLayerNum, convOutNum, convKernelSize, hiddenSize,
                        lstmLayerNum)
        self.numClass, self.inDim, self.sharedConv = numClass, inDim, sharedConv
        self.convLayerNum, self.convOutNum, self.convKernelSize = (convLayerNum, convOutNum,
                                                                   convKernelSize)
        self.hiddenSize, self.lstmLayerNum = hiddenSize, lstmLayerNum
        self.avgpool = nn.AvgPool1d(2, 2)
        self.conv1 = nn.Conv1d(1, convOutNum, convKernelSize, stride=2)
        n_rest = convLayerNum - 1  # blocks 2 … convLayerNum: one shared module, or one each
        self.conv_rest = nn.ModuleList(
            nn.Conv1d(convOutNum, convOutNum, convKernelSize, stride=2)
            for _ in range(min(n_rest, 1) if sharedConv else n_rest))
        self.maxpool = nn.MaxPool1d(2, 2)
        with torch.no_grad():  # F: push one all-zero frame through the CNN, read the width
            self.feature_size = self.frontend(torch.zeros(1, inDim)).shape[1]
        sizes = [self.feature_size] + [hiddenSize] * lstmLayerNum
        self.lstm = nn.ModuleList(LstmLayer(sizes[k], sizes[k + 1], cell)
                                  for k in range(lstmLayerNum))
        self.fc = nn.Linear(hiddenSize, numClass)
        self.set_engine(engine)  # "fast": chapter 8's kernels, the same function and parameters

    def set_engine(self, engine):
        """``"taught"``: run the code of this class; ``"fast"``: the same function, same
        parameters, by :mod:`emoser.nn.kernels` (chapter 8). Switches in place.

        Chapter: chapters/05_audionet.ipynb
        """
        self.engine = use_engine(self, engine)  # swaps the layers' class, keeps every parameter

    def conv_blocks(self):
        """The convolution of each block, in order (the same module repeats if shared).

        Chapter: chapters/05_audionet.ipynb
        """
        rest = [self.conv_rest[0 if self.sharedConv else k] for k in range(self.convLayerNum - 1)]
        return [self.conv1] + rest

    def frontend(self, frames):
        """Features of independent frames: ``M × D`` → ``M × F``.

        Chapter: chapters/05_audionet.ipynb
        """
        y = self.avgpool(frames.unsqueeze(1))  # M × 1 × D/2: each frame is one channel
        for conv in self.conv_blocks():
            y = self.maxpool(F.relu(conv(y)))  # M × C × L: the length about quarters
        return y.flatten(1)  # M × F

    def sequence_features(self, x, lengths):
        """Front-end features of the valid frames only, put back into padded sequences:
        ``N × T × D`` → ``N × T' × F`` (``T' = max(lengths)``, zeros at padded steps).

        Chapter: chapters/05_audionet.ipynb
        """
        n, steps = x.shape[0], int(lengths.max())
        x = x[:, :steps]  # padding beyond the longest sequence is never used
        mask = torch.arange(steps, device=x.device).view(1, steps) < lengths.view(n, 1)
        feats = self.frontend(x[mask])  # only the valid frames: M = sum(lengths)
        return x.new_zeros(n, steps, self.feature_size).index_put((mask,), feats)

    def forward(self, x, lengths=None):
        """Logits ``N × numClass`` for padded frames ``x`` (``N × T × D``, the model's dtype)
        with ``N`` valid frame counts ``lengths`` in ``1..T`` (``None``: all ``T``).

        Chapter: chapters/05_audionet.ipynb
        """
        lengths = check_batch(self, x, lengths)
        if self.engine == "fast":  # chapter 8: the same function by the fused kernels
            return fast_forward(self, x, lengths)
        h = self.sequence_features(x, lengths)
        for layer in self.lstm[:-1]:
            h, _ = layer(h, lengths)  # N × T' × H: every step
        h, _ = self.lstm[-1](h, lengths, last_only=True)  # N × H: each last valid step
        return self.fc(F.relu(h))


def describe_shapes(model: AudioNet, x: torch.Tensor, lengths=None) -> list:
    """Shape of the data at every stage of AudioNet, for one batch.

    Runs the model once on its taught engine, with forward hooks on its modules.

    Chapter: chapters/05_audionet.ipynb

    Args:
        model (AudioNet): The model.
        x (torch.Tensor): ``N × T × D`` input batch.
        lengths: ``N`` valid frame counts (``None``: all ``T``).

    Returns:
        list[tuple[str, tuple[int, ...]]]: ``(stage name, shape)`` pairs, input first, logits last.
        ``M`` in the names is the number of valid frames, ``sum(lengths)``.
    """
    trace = [("input (N×T×D)", tuple(x.shape))]
    blocks = {"conv": 0, "pool": 0}
    shared = {id(m) for m in model.conv_blocks()[1:]} if model.sharedConv else set()

    def hook(kind):
        def record(module, inputs, output):
            if kind == "avgpool":
                trace.append(("frames as channels (M×1×D)", tuple(inputs[0].shape)))
                trace.append(("average pooling 2/2", tuple(output.shape)))
            elif kind == "conv":
                blocks["conv"] += 1
                k = blocks["conv"]
                note = " (shared)" if id(module) in shared and k > 1 else ""
                trace.append((f"conv{k}{note} + ReLU", tuple(output.shape)))
            elif kind == "maxpool":
                blocks["pool"] += 1
                trace.append((f"max pooling {blocks['pool']}", tuple(output.shape)))
                if blocks["pool"] == model.convLayerNum:
                    trace.append(("flatten (M×F)", (output.shape[0], output[0].numel())))
            elif kind == "lstm0":
                trace.append(("features scattered back (N×T×F)", tuple(inputs[0].shape)))
            elif kind == "fc":
                trace.append(("ReLU + linear: logits (N×numClass)", tuple(output.shape)))
        return record

    handles = [model.avgpool.register_forward_hook(hook("avgpool")),
               model.maxpool.register_forward_hook(hook("maxpool")),
               model.lstm[0].register_forward_hook(hook("lstm0")),
               model.fc.register_forward_hook(hook("fc"))]
    handles += [conv.register_forward_hook(hook("conv")) for conv in
                {id(c): c for c in model.conv_blocks()}.values()]
    for k, layer in enumerate(model.lstm, start=1):
        last = k == len(model.lstm)
        name = (f"LSTM {k}, last valid step (N×H)" if last else f"LSTM {k}, all steps (N×T×H)")
        handles.append(layer.register_forward_hook(
            lambda module, inputs, output, name=name: trace.append((name, tuple(output[0].shape)))))
    engine = model.engine
    try:
        model.set_engine("taught")
        with torch.no_grad():
            model(x, lengths)
    finally:
        for handle in handles:
            handle.remove()
        model.set_engine(engine)
    return trace
