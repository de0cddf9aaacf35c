"""A hand-built LSTM: cell, layer, and the weight mapping to ``torch.nn.LSTM``.

The cell is the textbook form: four gates, each its own fully connected layer
over the concatenation ``[x_t, h_{t-1}]``::

    i = σ(W_i[x,h] + b_i)    f = σ(W_f[x,h] + b_f)
    o = σ(W_o[x,h] + b_o)    g = tanh(W_g[x,h] + b_g)
    c_t = f ⊙ c_{t-1} + i ⊙ g,    h_t = o ⊙ tanh(c_t)

The layer calls the cell at every step in a plain loop. Its fast subclass
(:class:`emoser.nn.kernels.FastLstmLayer`, chapter 8) computes the same function with the
same parameters.

Chapter: chapters/03_lstm_cell.ipynb (cell), chapters/04_lstm_layer.ipynb (layer)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "LstmCell",
    "LstmLayer",
    "check_sequences",
    "torch_gate_weights",
    "copy_to_torch_lstm",
    "copy_to_torch_lstm_cell",
    "from_torch",
]


class LstmCell(nn.Module):
    """One LSTM step, written exactly as the equations read.

    Chapter: chapters/03_lstm_cell.ipynb

    Args:
        input_size (int): Size ``I`` of ``x_t``.
        hidden_size (int): Size ``H`` of ``h_t`` and ``c_t``.

    Attributes:
        input_gate, forget_gate, output_gate, candidate (nn.Linear): ``(I + H) → H`` each.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        n = input_size + hidden_size  # each gate sees [x_t, h_{t-1}]
        self.input_gate = nn.Linear(n, hidden_size)
        self.forget_gate = nn.Linear(n, hidden_size)
        self.output_gate = nn.Linear(n, hidden_size)
        self.candidate = nn.Linear(n, hidden_size)

    def zero_state(self, x):
        """Zero ``(h, c)``, each ``N × H``, on the device and in the dtype of ``x`` (``N × I``).

        Chapter: chapters/03_lstm_cell.ipynb
        """
        h = x.new_zeros(x.shape[0], self.hidden_size)
        return h, h.clone()

    def forward(self, x, state=None):
        """One step: ``x`` (``N × I``) and ``(h, c)`` (each ``N × H``, ``None``: zeros) give
        the next ``(h, c)``.

        Chapter: chapters/03_lstm_cell.ipynb
        """
        h, c = self.zero_state(x) if state is None else state
        xh = torch.cat([x, h], dim=1)
        i = torch.sigmoid(self.input_gate(xh))
        f = torch.sigmoid(self.forget_gate(xh))
        o = torch.sigmoid(self.output_gate(xh))
        g = torch.tanh(self.candidate(xh))
        c = f * c + i * g
        h = o * torch.tanh(c)
        return h, c


def check_sequences(x: torch.Tensor, lengths, input_size: int) -> torch.Tensor:
    """Check a padded batch ``x`` (``N × T × I``) and its lengths; return the lengths as a
    ``LongTensor`` on ``x``'s device (all ``T`` when ``lengths`` is ``None``).

    Chapter: chapters/04_lstm_layer.ipynb
    """
    if x.ndim != 3 or x.shape[2] != input_size or x.shape[1] == 0:
        raise ValueError(f"LstmLayer expects input N × T × {input_size} with T >= 1, "
                         f"got {tuple(x.shape)}")
    n, t = x.shape[:2]
    if lengths is None:
        return torch.full((n,), t, dtype=torch.long, device=x.device)
    lengths = torch.as_tensor(lengths, dtype=torch.long, device=x.device)
    if lengths.shape != (n,):
        raise ValueError(f"lengths must have shape ({n},), got {tuple(lengths.shape)}")
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo < 1 or hi > t:
        raise ValueError(f"lengths must lie in 1..{t} (the padded length), got min {lo}, max {hi}")
    return lengths


class LstmLayer(nn.Module):
    """An LSTM layer: the cell run over ``t = 0 … T-1`` from a zero state.

    With ``lengths`` the loop stops at the longest sequence; all-step outputs are zero after
    each sequence's end (as ``torch.nn.LSTM`` on a packed batch gives them), and
    ``last_only=True`` returns each sequence's state at its own step ``length - 1``, picked
    with ``gather`` (no loop over the batch).

    Chapter: chapters/04_lstm_layer.ipynb

    Args:
        input_size (int): Size ``I`` of each input step.
        hidden_size (int): Size ``H`` of the state.
        cell (type): The cell class to build and call at every step
            (``cell(input_size, hidden_size)``, called as ``cell(x_t, (h, c))``).

    Attributes:
        cell (nn.Module): The cell (its gate layers are the layer's only parameters).
    """

    def __init__(self, input_size: int, hidden_size: int, cell=LstmCell):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.cell = cell(input_size, hidden_size)

    def forward(self, x, lengths=None, last_only=False, state=None):
        """Run the cell over a padded batch ``x`` (``N × T × I``) with ``N`` valid ``lengths``
        (``None``: all ``T``) from ``state`` (``None``: zeros). Returns ``(h, c)``: each
        ``N × H`` at every sequence's last valid step if ``last_only``, else ``N × T × H``.

        Chapter: chapters/04_lstm_layer.ipynb
        """
        lengths = check_sequences(x, lengths, self.input_size)
        steps = int(lengths.max())  # no step beyond the longest sequence
        if state is None:
            state = (x.new_zeros(x.shape[0], self.hidden_size),) * 2
        h, c = state
        hs, cs = [], []
        for x_t in x[:, :steps].unbind(1):  # x_t: N × I, t = 0 … steps - 1
            h, c = self.cell(x_t, (h, c))
            hs.append(h)
            cs.append(c)
        h_all, c_all = torch.stack(hs, dim=1), torch.stack(cs, dim=1)  # N × steps × H
        return self.read_out(h_all, c_all, lengths, last_only, x.shape[1])

    def read_out(self, h_all, c_all, lengths, last_only, t_pad):
        """Each sequence's state at its step ``length - 1`` (``last_only``), or all steps with
        zeros after each sequence's end, padded back to ``t_pad`` steps.

        Chapter: chapters/04_lstm_layer.ipynb
        """
        n, steps, hid = h_all.shape
        if last_only:
            idx = (lengths - 1).view(n, 1, 1).expand(n, 1, hid)
            return h_all.gather(1, idx).squeeze(1), c_all.gather(1, idx).squeeze(1)
        valid = torch.arange(steps, device=h_all.device).view(1, steps, 1) < lengths.view(n, 1, 1)
        pad = (0, 0, 0, t_pad - steps)
        return (F.pad(torch.where(valid, h_all, 0.0), pad),
                F.pad(torch.where(valid, c_all, 0.0), pad))


# ---------------------------------------------------------------------------
# Weight mapping to / from torch.nn.LSTM (gate order there: i, f, g, o)
# ---------------------------------------------------------------------------

#: The gate layers of :class:`LstmCell`, by attribute name.
GATES = ("input_gate", "forget_gate", "output_gate", "candidate")


def _cell_of(module) -> LstmCell:
    """The cell of a layer, or the cell itself: anything with this package's four gate layers
    (a chapter's own copy of the classes included)."""
    cell = getattr(module, "cell", module)
    if not all(isinstance(getattr(cell, name, None), nn.Linear) for name in GATES):
        raise TypeError(f"expected an LstmCell or LstmLayer, got {type(module).__name__}")
    return cell


def torch_gate_weights(module, grad: bool = False):
    """Our four gate layers in ``torch.nn.LSTM`` layout.

    Chapter: chapters/04_lstm_layer.ipynb

    Args:
        module (LstmCell | LstmLayer): Source of the gate layers.
        grad (bool): Map the parameters' ``.grad`` instead of the values.

    Returns:
        tuple: ``(w_ih 4H × I, w_hh 4H × H, b_ih 4H, b_hh 4H)``, gates stacked in
        torch's order input, forget, candidate (g), output; our single bias goes
        to ``b_ih``, ``b_hh`` is zeros (with ``grad=True`` both equal our bias gradient,
        as torch's two biases get the same gradient).
    """
    cell = _cell_of(module)
    gates = (cell.input_gate, cell.forget_gate, cell.candidate, cell.output_gate)
    get = (lambda p: p.grad) if grad else (lambda p: p.detach())
    if grad and any(get(g.weight) is None or get(g.bias) is None for g in gates):
        raise ValueError("torch_gate_weights(grad=True): some gate parameters have no .grad yet")
    w = torch.cat([get(g.weight) for g in gates], dim=0)
    b = torch.cat([get(g.bias) for g in gates], dim=0)
    i = cell.input_size
    return (w[:, :i].clone(), w[:, i:].clone(), b.clone(),
            (b.clone() if grad else torch.zeros_like(b)))


def _copy_gate_weights(source, ref: nn.Module, suffix: str) -> nn.Module:
    """Copy ``source``'s gates into ``ref``'s weight_ih, weight_hh, bias_ih and bias_hh."""
    values = torch_gate_weights(source)
    with torch.no_grad():
        for name, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), values):
            getattr(ref, name + suffix).copy_(value)
    return ref


def copy_to_torch_lstm(layer: LstmLayer) -> nn.LSTM:
    """A ``torch.nn.LSTM`` (one layer, ``batch_first=True``) with our layer's weights.

    Chapter: chapters/04_lstm_layer.ipynb

    Args:
        layer (LstmLayer): Source layer (its device and dtype are kept).

    Returns:
        nn.LSTM: Computes the same function as ``layer``.
    """
    p = layer.cell.input_gate.weight
    ref = nn.LSTM(layer.input_size, layer.hidden_size, batch_first=True,
                  device=p.device, dtype=p.dtype)
    return _copy_gate_weights(layer, ref, suffix="_l0")


def copy_to_torch_lstm_cell(cell: LstmCell) -> nn.LSTMCell:
    """A ``torch.nn.LSTMCell`` with our cell's weights.

    Chapter: chapters/03_lstm_cell.ipynb

    Args:
        cell (LstmCell): Source cell (its device and dtype are kept).

    Returns:
        nn.LSTMCell: Computes the same function as ``cell``.
    """
    p = cell.input_gate.weight
    ref = nn.LSTMCell(cell.input_size, cell.hidden_size, device=p.device, dtype=p.dtype)
    return _copy_gate_weights(cell, ref, suffix="")


def from_torch(module: nn.LSTM | nn.LSTMCell):
    """Our cell or layer with the weights of a torch LSTM cell or one-layer LSTM.

    Chapter: chapters/04_lstm_layer.ipynb

    Args:
        module (nn.LSTM | nn.LSTMCell): A ``torch.nn.LSTMCell``, or a
            one-layer, unidirectional ``torch.nn.LSTM`` without projection.

    Returns:
        LstmCell | LstmLayer: Same function; torch's two biases are summed into one.
    """
    if isinstance(module, nn.LSTMCell):
        w_ih, w_hh = module.weight_ih, module.weight_hh
        b_ih, b_hh = module.bias_ih, module.bias_hh
        target = LstmCell(module.input_size, module.hidden_size)
        cell = target
    elif isinstance(module, nn.LSTM):
        if module.num_layers != 1 or module.bidirectional or module.proj_size:
            raise ValueError("from_torch supports one-layer, unidirectional nn.LSTM "
                             "without proj_size")
        w_ih, w_hh = module.weight_ih_l0, module.weight_hh_l0
        b_ih = getattr(module, "bias_ih_l0", None)
        b_hh = getattr(module, "bias_hh_l0", None)
        target = LstmLayer(module.input_size, module.hidden_size)
        cell = target.cell
    else:
        raise TypeError(f"expected nn.LSTM or nn.LSTMCell, got {type(module).__name__}")
    target.to(device=w_ih.device, dtype=w_ih.dtype)
    hid = module.hidden_size
    bias = torch.zeros(4 * hid, device=w_ih.device, dtype=w_ih.dtype)
    if b_ih is not None:
        bias = bias + b_ih.detach()
    if b_hh is not None:
        bias = bias + b_hh.detach()
    w = torch.cat([w_ih.detach(), w_hh.detach()], dim=1)
    with torch.no_grad():
        for k, gate in enumerate((cell.input_gate, cell.forget_gate, cell.candidate,
                                  cell.output_gate)):
            gate.weight.copy_(w[k * hid:(k + 1) * hid])
            gate.bias.copy_(bias[k * hid:(k + 1) * hid])
    return target
