"""A hand-built LSTM: cell, layer, and the weight mapping to ``torch.nn.LSTM``.

The cell is the textbook form: four gates, each its own fully connected layer
over the concatenation ``[x_t, h_{t-1}]``::

    i = σ(W_i[x,h] + b_i)    f = σ(W_f[x,h] + b_f)
    o = σ(W_o[x,h] + b_o)    g = tanh(W_g[x,h] + b_g)
    c_t = f ⊙ c_{t-1} + i ⊙ g,    h_t = o ⊙ tanh(c_t)

The layer runs the same equations, but regroups the arithmetic: the input
part of all four gates for all time steps is one matrix product before the
loop, and each step needs only one product with ``h_{t-1}``.

Chapter: chapters/03_lstm_cell.ipynb (cell), chapters/04_lstm_layer.ipynb (layer)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .kernels.recurrence import lstm_recurrence

__all__ = [
    "LstmCell",
    "LstmLayer",
    "fast_steps",
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
        if input_size < 1 or hidden_size < 1:
            raise ValueError("input_size and hidden_size must be >= 1, "
                             f"got {input_size}, {hidden_size}")
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        n = self.input_size + self.hidden_size
        self.input_gate = nn.Linear(n, self.hidden_size)
        self.forget_gate = nn.Linear(n, self.hidden_size)
        self.output_gate = nn.Linear(n, self.hidden_size)
        self.candidate = nn.Linear(n, self.hidden_size)

    def zero_state(self, x: torch.Tensor):
        """Zero ``(h, c)`` for a batch like ``x`` (same device and dtype).

        Chapter: chapters/03_lstm_cell.ipynb

        Args:
            x (torch.Tensor): ``N × I`` (or ``N × T × I``) input; only batch size, device,
                dtype are used.

        Returns:
            tuple: ``(h, c)``, both ``N × H`` zeros.
        """
        h = x.new_zeros(x.shape[0], self.hidden_size)
        return h, h.clone()

    def forward(self, x: torch.Tensor, state=None):
        """Advance one time step.

        Chapter: chapters/03_lstm_cell.ipynb

        Args:
            x (torch.Tensor): Input ``N × I``.
            state (tuple | None): ``(h, c)``, each ``N × H``; ``None`` means zeros.

        Returns:
            tuple: ``(h_t, c_t)``, each ``N × H``.
        """
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"LstmCell expects input N × {self.input_size}, got {tuple(x.shape)}")
        h, c = self.zero_state(x) if state is None else state
        xh = torch.cat([x, h], dim=1)
        i = torch.sigmoid(self.input_gate(xh))
        f = torch.sigmoid(self.forget_gate(xh))
        o = torch.sigmoid(self.output_gate(xh))
        g = torch.tanh(self.candidate(xh))
        c = f * c + i * g
        h = o * torch.tanh(c)
        return h, c


def _check_lengths(lengths, n: int, t: int, device) -> torch.Tensor:
    lengths = torch.as_tensor(lengths, dtype=torch.long, device=device)
    if lengths.shape != (n,):
        raise ValueError(f"lengths must have shape ({n},), got {tuple(lengths.shape)}")
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo < 1 or hi > t:
        raise ValueError(f"lengths must lie in 1..{t} (the padded length), got min {lo}, max {hi}")
    return lengths


def fast_steps(xg: torch.Tensor, w_h: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
    """The LSTM steps of the fast path: one state product per step, the gates of chapter 3.

    The input part of every gate at every step is already in ``xg`` (one product for all
    steps); each step adds the state part ``h W_hᵀ`` and applies the cell's equations.

    Args:
        xg (torch.Tensor): ``T × N × 4H`` input parts of the gates (input, forget,
            output, candidate), biases included.
        w_h (torch.Tensor): ``4H × H`` state weights of the four gates.
        h, c (torch.Tensor): the state before the first step, each ``N × H``.

    Returns:
        tuple[list, list]: the states ``h_t`` and ``c_t`` of every step.

    Chapter: chapters/04_lstm_layer.ipynb
    """
    hid = w_h.shape[1]
    w_h_t = w_h.t()
    hs, cs = [], []
    for xg_t in xg.unbind(0):
        z = torch.addmm(xg_t, h, w_h_t)
        ifo = torch.sigmoid(z[:, : 3 * hid])
        g = torch.tanh(z[:, 3 * hid:])
        i, f, o = ifo.chunk(3, dim=1)
        c = f * c + i * g
        h = o * torch.tanh(c)
        hs.append(h)
        cs.append(c)
    return hs, cs


class LstmLayer(nn.Module):
    """An LSTM layer: the cell run over ``t = 0 … T-1`` from a zero state.

    With ``lengths`` the loop stops at the longest sequence; all-step outputs
    are zero after each sequence's end (as ``torch.nn.LSTM`` on a packed batch
    gives them), and ``last_only=True`` returns each sequence's state at its own
    step ``length - 1``, picked with ``gather`` (no loop over the batch).

    Chapter: chapters/04_lstm_layer.ipynb

    Args:
        input_size (int): Size ``I`` of each input step.
        hidden_size (int): Size ``H`` of the state.
        fast (bool): Default evaluation path. ``True``: one input product for all
            steps and one state product per step (same equations, same parameters);
            ``False``: call the literal :class:`LstmCell` at every step.
        fused (bool): With the fast path, run the recurrence as one autograd node whose
            backward pass through time is written by hand
            (:func:`emoser.nn.kernels.lstm_recurrence`, chapter 8); ``False``: let autograd
            record every step.

    Attributes:
        cell (LstmCell): Holds the four gate layers (the only parameters).
    """

    def __init__(self, input_size: int, hidden_size: int, fast: bool = True, fused: bool = True):
        super().__init__()
        self.cell = LstmCell(input_size, hidden_size)
        self.input_size = self.cell.input_size
        self.hidden_size = self.cell.hidden_size
        self.fast = bool(fast)
        self.fused = bool(fused)

    def stacked_weights(self):
        """The four gates' parameters regrouped (differentiably) for the fast path.

        Chapter: chapters/04_lstm_layer.ipynb

        Returns:
            tuple: ``W_x`` (``4H × I``), ``W_h`` (``4H × H``), ``b`` (``4H``),
            gate blocks in the order input, forget, output, candidate.
        """
        cell = self.cell
        gates = (cell.input_gate, cell.forget_gate, cell.output_gate, cell.candidate)
        w = torch.cat([g.weight for g in gates], dim=0)
        b = torch.cat([g.bias for g in gates], dim=0)
        return w[:, : self.input_size], w[:, self.input_size:], b

    def forward(self, x: torch.Tensor, lengths=None, last_only: bool = False, state=None,
                fast: bool | None = None, fused: bool | None = None):
        """Run the layer over a (padded) batch of sequences.

        Chapter: chapters/04_lstm_layer.ipynb

        Args:
            x (torch.Tensor): ``N × T × I``.
            lengths: Valid steps per sequence (``N`` integers in ``1..T``); ``None`` means
                all ``T``.
            last_only (bool): Return only each sequence's state at step ``length - 1``.
            state (tuple | None): Initial ``(h, c)``, each ``N × H``; ``None`` means zeros.
            fast (bool | None): Override the layer's ``fast`` setting for this call.
            fused (bool | None): Override the layer's ``fused`` setting for this call.

        Returns:
            tuple: ``(h_last, c_last)`` (each ``N × H``) if ``last_only``, else
            ``(h_all, c_all)`` (each ``N × T × H``).
        """
        if x.ndim != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"LstmLayer expects input N × T × {self.input_size}, "
                             f"got {tuple(x.shape)}")
        n, t_pad, _ = x.shape
        if t_pad == 0:
            raise ValueError("LstmLayer got sequences with T = 0 steps")
        if lengths is not None:
            lengths = _check_lengths(lengths, n, t_pad, x.device)
            steps = int(lengths.max())
        else:
            steps = t_pad
        h, c = self.cell.zero_state(x) if state is None else state
        use_fast = self.fast if fast is None else fast
        use_fused = use_fast and (self.fused if fused is None else fused)
        hs, cs = [], []
        if use_fused:
            w_x, w_h, b = self.stacked_weights()
            xg = F.linear(x[:, :steps].transpose(0, 1), w_x, b)  # T × N × 4H
            h_all, c_all = lstm_recurrence(xg, w_h, h, c)
            h_all, c_all = h_all.transpose(0, 1), c_all.transpose(0, 1)
        elif use_fast:
            w_x, w_h, b = self.stacked_weights()
            # input part of all gates, all steps: one product, laid out T × N × 4H
            xg = F.linear(x[:, :steps].transpose(0, 1), w_x, b)
            hs, cs = fast_steps(xg, w_h, h, c)
        else:
            for x_t in x[:, :steps].unbind(1):
                h, c = self.cell(x_t, (h, c))
                hs.append(h)
                cs.append(c)
        if not use_fused:
            h_all = torch.stack(hs, dim=1)
            c_all = torch.stack(cs, dim=1)
        if last_only:
            if lengths is None:
                return h_all[:, -1], c_all[:, -1]
            idx = (lengths - 1).view(n, 1, 1).expand(n, 1, self.hidden_size)
            return h_all.gather(1, idx).squeeze(1), c_all.gather(1, idx).squeeze(1)
        if lengths is not None:
            valid = (torch.arange(steps, device=x.device).view(1, steps)
                     < lengths.view(n, 1)).unsqueeze(2)
            zero = h_all.new_zeros(())
            h_all = torch.where(valid, h_all, zero)
            c_all = torch.where(valid, c_all, zero)
            if steps < t_pad:
                h_all = F.pad(h_all, (0, 0, 0, t_pad - steps))
                c_all = F.pad(c_all, (0, 0, 0, t_pad - steps))
        return h_all, c_all


# ---------------------------------------------------------------------------
# Weight mapping to / from torch.nn.LSTM (gate order there: i, f, g, o)
# ---------------------------------------------------------------------------

def _cell_of(module) -> LstmCell:
    if isinstance(module, LstmLayer):
        return module.cell
    if isinstance(module, LstmCell):
        return module
    raise TypeError(f"expected an LstmCell or LstmLayer, got {type(module).__name__}")


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
