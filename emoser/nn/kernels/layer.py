"""The LSTM layer's fast path: the taught layer's function, with the arithmetic regrouped.

:class:`FastLstmLayer` has the parameters (and ``state_dict`` keys) of
:class:`emoser.nn.LstmLayer`; only its ``forward`` differs: the input part of all four gates
for all steps is one matrix product before the loop, each step needs one product with
``h_{t-1}``, and by default the recurrence is one autograd node with a hand-written backward
pass through time (:func:`emoser.nn.kernels.lstm_recurrence`).

Chapter: chapters/08_speed.ipynb
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..lstm import LstmCell, LstmLayer, check_sequences
from .recurrence import lstm_recurrence, stacked_weights

__all__ = ["FastLstmLayer", "fast_steps", "check_fast_cell"]


def check_fast_cell(cell) -> None:
    """Raise a ``ValueError`` unless ``cell`` is the package's :class:`~emoser.nn.LstmCell`
    (the fast path computes exactly its equations, not those of another cell).

    Chapter: chapters/08_speed.ipynb
    """
    if type(cell) is not LstmCell:
        raise ValueError(f"the fast LSTM path computes emoser.nn.LstmCell only, not "
                         f"{type(cell).__module__}.{type(cell).__qualname__}; "
                         "use engine='taught' (or LstmLayer) for another cell")


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

    Chapter: chapters/08_speed.ipynb
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


class FastLstmLayer(LstmLayer):
    """:class:`~emoser.nn.LstmLayer` with the fast forward pass (same function, same parameters).

    Only the package's :class:`~emoser.nn.LstmCell` is accepted (a ``ValueError`` otherwise).
    ``AudioNet(engine="fast")`` uses this class; ``AudioNet.set_engine`` switches a layer
    between the two classes in place.

    Chapter: chapters/08_speed.ipynb

    Attributes:
        fast (bool): ``True``: the regrouped arithmetic; ``False``: the taught loop over the cell.
        fused (bool): With ``fast``, run the recurrence as one autograd node whose backward
            pass through time is written by hand; ``False``: autograd records every step.
    """

    fast: bool = True
    fused: bool = True

    def __init__(self, input_size: int, hidden_size: int, cell=LstmCell):
        if cell is not LstmCell:
            raise ValueError(f"FastLstmLayer computes emoser.nn.LstmCell only, got cell={cell!r}; "
                             "use LstmLayer for another cell")
        super().__init__(input_size, hidden_size, cell)

    def stacked_weights(self):
        """:func:`stacked_weights` of this layer's cell.

        Chapter: chapters/08_speed.ipynb
        """
        return stacked_weights(self.cell)

    def forward(self, x, lengths=None, last_only=False, state=None, fast=None, fused=None):
        """As :meth:`LstmLayer.forward`; ``fast`` and ``fused`` override the layer's settings
        for this call.

        Chapter: chapters/08_speed.ipynb
        """
        use_fast = self.fast if fast is None else fast
        if not use_fast:
            return super().forward(x, lengths, last_only, state)
        check_fast_cell(self.cell)
        lengths = check_sequences(x, lengths, self.input_size)
        steps = int(lengths.max())
        h, c = self.cell.zero_state(x) if state is None else state
        w_x, w_h, b = self.stacked_weights()
        # input part of all gates, all steps: one product, laid out T × N × 4H
        xg = F.linear(x[:, :steps].transpose(0, 1), w_x, b)
        if self.fused if fused is None else fused:
            h_all, c_all = lstm_recurrence(xg, w_h, h, c)
            h_all, c_all = h_all.transpose(0, 1), c_all.transpose(0, 1)
        else:
            hs, cs = fast_steps(xg, w_h, h, c)
            h_all, c_all = torch.stack(hs, dim=1), torch.stack(cs, dim=1)
        return self.read_out(h_all, c_all, lengths, last_only, x.shape[1])
