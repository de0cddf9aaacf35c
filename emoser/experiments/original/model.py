"""The original exercise's model, re-implemented faithfully, defects included.

See :mod:`emoser.experiments.original` for why it exists and what its defects are.

Chapter: chapters/09_what_went_wrong.ipynb
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "OriginalLSTMCell", "OriginalLSTMLayer", "OriginalAudioNet", "original_feature_size",
    "last_step_loop", "last_step_gather",
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
    out = torch.zeros(h_all.shape[0], h_all.shape[2],
                      dtype=torch.float64, device=device)  # float64 again
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
            raise ValueError("load_from needs an AudioNet with one shared Conv1d "
                             "and two LSTM layers; "
                             f"got {len(convs)} Conv1d and {len(cells)} LSTM cells")
        pairs = [(self.conv1, convs[0]), (self.conv2, convs[1]), (self.fc, linears[-1])]
        for mine, theirs in zip((self.lstm1.cell, self.lstm2.cell), cells):
            pairs += [(getattr(mine, g), getattr(theirs, g)) for g in _GATES]
        for mine, theirs in pairs:
            for name, p in mine.named_parameters():
                q = getattr(theirs, name)
                if p.shape != q.shape:
                    raise ValueError(f"load_from: shape mismatch for {name}: "
                                     f"{tuple(p.shape)} vs {tuple(q.shape)}")
                p.copy_(q)
        return self


_GATES = ("input_gate", "forget_gate", "output_gate", "candidate")
