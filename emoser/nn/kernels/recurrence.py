"""The LSTM recurrence with a hand-written backward pass, one layer or a wavefront of layers.

* :func:`lstm_recurrence`: the recurrence over all time steps as one autograd node; the
  backward pass through time (BPTT) is written by hand, with the gate equations of
  chapter 3 differentiated once.
* :func:`lstm_stack_last`: two or more stacked LSTM layers as one loop (a wavefront: layer
  ``l`` runs ``l`` steps behind layer 0), read at each sequence's last valid step.

On the CPU each step runs as a fused C kernel (:mod:`emoser.nn.kernels.native`) where a C
compiler exists; elsewhere as the PyTorch operations written here. The tests check both
against the per-step :class:`~emoser.nn.LstmCell` through autograd, values and gradients.

Chapter: chapters/08_speed.ipynb
"""
from __future__ import annotations

import torch

from .dispatch import kernels_for, pointer

__all__ = ["lstm_recurrence", "lstm_stack_last", "stacked_weights"]


def _recurrence_forward(acts, w, h_hist, c_hist, tanh_c, layers: int = 1):
    """The LSTM recurrence, in place, for one layer or a wavefront of ``layers`` layers.

    ``acts`` (``steps × N × 4W``, gates ``[i | f | o | g]`` each ``W`` wide) holds the input part
    of the gates and is turned into the activations; ``w`` (``W × 4W``) is the recurrent
    matrix; ``h_hist``, ``c_hist`` (``(steps + 1) × N × W``) hold the initial state in row 0 and
    receive the state after every step; ``tanh_c`` (``steps × N × W``) receives ``tanh(c_t)``.
    With ``layers > 1`` the ``W`` columns are ``layers`` blocks; block ``l`` starts at step
    ``l`` and keeps a zero state before. Every per-step tensor is a view made before the loop
    (``unbind``) and every operation writes in place or into its slot (``out=``).
    """
    steps, width = acts.shape[0], h_hist.shape[2]
    hid = width // layers
    z_ = acts.unbind(0)
    sig_, tanh_ = acts[:, :, :3 * width].unbind(0), acts[:, :, 3 * width:].unbind(0)
    i_, f_, o_, g_ = (acts[:, :, k * width:(k + 1) * width].unbind(0) for k in range(4))
    h_, c_, tc_ = h_hist.unbind(0), c_hist.unbind(0), tanh_c.unbind(0)
    for t in range(steps):
        z_[t].addmm_(h_[t], w)
        sig_[t].sigmoid_()
        tanh_[t].tanh_()
        c = torch.mul(f_[t], c_[t], out=c_[t + 1]).addcmul_(i_[t], g_[t])
        torch.mul(o_[t], torch.tanh(c, out=tc_[t]), out=h_[t + 1])
        if t < layers - 1:  # layers above t have not started: they keep the zero state
            h_[t + 1][:, (t + 1) * hid:] = 0
            c_[t + 1][:, (t + 1) * hid:] = 0


def _recurrence_backward(acts, w, h_hist, c_hist, tanh_c, grad_h, grad_c, layers: int = 1):
    """Backward pass through time of :func:`_recurrence_forward` (same arguments).

    ``grad_h`` (``steps × N × W``) is the gradient of every step's ``h`` from outside; the loop
    adds the recurrent part to it **in place**. ``grad_c`` is the same for ``c``, or ``None``.
    Returns the gradients of the gate pre-activations (``steps × N × 4W``, i.e. of the input
    part), of ``w``, and of the initial ``c``.
    """
    steps, n, width = tanh_c.shape
    hid = width // layers
    i, f, o, g = acts.split(width, dim=2)
    # the local derivatives of every step, all steps at once:
    #   dz_i = dc·g·i(1-i)          dz_f = dc·c_{t-1}·f(1-f)
    #   dz_g = dc·i·(1-g²)          dz_o = dh·tanh(c)·o(1-o)
    #   dc_t += dh·o·(1-tanh²(c))   dc_{t-1} = dc_t·f
    d_if = torch.cat((g * i * (1 - i), c_hist[:-1] * f * (1 - f)), dim=2).unbind(0)  # N × 2W
    d_g, d_o = (i * (1 - g * g)).unbind(0), (tanh_c * o * (1 - o)).unbind(0)
    d_c, f_ = (o * (1 - tanh_c * tanh_c)).unbind(0), f.unbind(0)
    grad_z = torch.empty_like(acts)
    gz_ = grad_z.unbind(0)
    gif_ = grad_z[:, :, :2 * width].unflatten(2, (2, width)).unbind(0)
    go_, gg_ = grad_z[:, :, 2 * width:3 * width].unbind(0), grad_z[:, :, 3 * width:].unbind(0)
    dh_ = grad_h.unbind(0)
    gc_ = None if grad_c is None else grad_c.unbind(0)
    w_t = w.t().contiguous()
    dc = torch.zeros_like(h_hist[0]) if gc_ is None else gc_[steps - 1]
    for t in range(steps - 1, -1, -1):
        dh = dh_[t]
        if t < steps - 1:
            dh.addmm_(gz_[t + 1], w_t)
            dc = dc * f_[t + 1] if gc_ is None else torch.addcmul(gc_[t], dc, f_[t + 1])
        dc = torch.addcmul(dc, dh, d_c[t])
        torch.mul(dc.unsqueeze(1), d_if[t].view(n, 2, width), out=gif_[t])
        torch.mul(dh, d_o[t], out=go_[t])
        torch.mul(dc, d_g[t], out=gg_[t])
        if t < layers - 1:  # layers that had not started: their state was a constant
            gz_[t].view(n, 4, layers, hid)[:, :, t + 1:] = 0
            dc[:, (t + 1) * hid:] = 0
    return grad_z, _weight_grad(h_hist, grad_z), dc * f_[0]


def _weight_grad(h_hist, grad_z):
    """Gradient of the recurrent matrix: ``Σ_t h_{t-1}ᵀ δz_t`` as one product over all steps."""
    steps, n, width = h_hist.shape[0] - 1, h_hist.shape[1], h_hist.shape[2]
    return h_hist[:-1].reshape(steps * n, width).t() @ grad_z.view(steps * n, 4 * width)


def _run_forward(acts, w, h_hist, c_hist, tanh_c, layers: int = 1) -> None:
    """:func:`_recurrence_forward`, by the fused kernel when there is one for these tensors."""
    lib = kernels_for(acts, w, h_hist, c_hist, tanh_c)
    if lib is None:
        _recurrence_forward(acts, w, h_hist, c_hist, tanh_c, layers)
        return
    steps, n, width = tanh_c.shape
    lib.lstm_forward(*map(pointer, (acts, w, h_hist, c_hist, tanh_c)), steps, n, width, layers)


def _run_backward(acts, w, h_hist, c_hist, tanh_c, grad_h, grad_c, layers: int = 1):
    """:func:`_recurrence_backward`, by the fused kernel when there is one for these tensors."""
    lib = kernels_for(acts, w, c_hist, tanh_c, grad_h, *(() if grad_c is None else (grad_c,)))
    if lib is None:
        return _recurrence_backward(acts, w, h_hist, c_hist, tanh_c, grad_h, grad_c, layers)
    steps, n, width = tanh_c.shape
    grad_z, grad_c0 = torch.empty_like(acts), torch.empty_like(h_hist[0])
    w_t = w.t().contiguous()
    lib.lstm_backward(*map(pointer, (acts, w_t, c_hist, tanh_c, grad_h, grad_c, grad_z, grad_c0)),
                      steps, n, width, layers)
    return grad_z, _weight_grad(h_hist, grad_z), grad_c0


class _LstmRecurrence(torch.autograd.Function):
    """``c_t = f ⊙ c_{t-1} + i ⊙ g``, ``h_t = o ⊙ tanh(c_t)`` over all steps; BPTT by hand."""

    @staticmethod
    def forward(ctx, xg, w_h, h0, c0):
        steps, n, four_h = xg.shape
        acts = xg.clone()  # the input part; the loop adds h_{t-1} W_hᵀ and applies the gates
        h_hist = xg.new_empty(steps + 1, n, four_h // 4)
        c_hist = torch.empty_like(h_hist)
        h_hist[0], c_hist[0] = h0, c0
        tanh_c = torch.empty_like(h_hist[1:])
        w = w_h.t().contiguous()
        _run_forward(acts, w, h_hist, c_hist, tanh_c)
        ctx.save_for_backward(w, acts, h_hist, c_hist, tanh_c)
        return h_hist[1:], c_hist[1:]

    @staticmethod
    def backward(ctx, grad_h_all, grad_c_all):
        w, acts, h_hist, c_hist, tanh_c = ctx.saved_tensors
        grad_h = (torch.zeros_like(tanh_c) if grad_h_all is None
                  else grad_h_all.clone(memory_format=torch.contiguous_format))
        grad_c = None if grad_c_all is None else grad_c_all.contiguous()
        grad_z, grad_w, grad_c0 = _run_backward(acts, w, h_hist, c_hist, tanh_c, grad_h, grad_c)
        return grad_z, grad_w.t(), grad_z[0] @ w.t(), grad_c0


def lstm_recurrence(xg: torch.Tensor, w_h: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor):
    """Run the LSTM recurrence over all steps as one autograd node (backward written by hand).

    Per step ``z = xg_t + h_{t-1} W_hᵀ``; ``i, f, o = σ(z)``, ``g = tanh(z)`` (blocks of ``H``
    in that order); ``c_t = f ⊙ c_{t-1} + i ⊙ g``; ``h_t = o ⊙ tanh(c_t)``: the equations of
    :class:`~emoser.lstm.LstmCell` with the four gate products stacked. Autograd would record
    about ten operations per step and replay them backwards; here the backward pass through
    time is one loop of five operations per step.

    Chapter: chapters/08_speed.ipynb

    Args:
        xg (torch.Tensor): ``T × N × 4H``, the input part of the gates (bias included).
        w_h (torch.Tensor): ``4H × H``, the recurrent weights of the four gates.
        h0, c0 (torch.Tensor): ``N × H`` initial state.

    Returns:
        tuple: ``h_all``, ``c_all``, each ``T × N × H``.
    """
    if (xg.ndim != 3 or xg.shape[0] < 1 or xg.shape[2] != 4 * w_h.shape[1]
            or w_h.shape[0] != xg.shape[2]):
        raise ValueError(f"lstm_recurrence: need xg T × N × 4H (T >= 1) and w_h 4H × H, got "
                         f"{tuple(xg.shape)} and {tuple(w_h.shape)}")
    return _LstmRecurrence.apply(xg, w_h, h0, c0)


# ---------------------------------------------------------------------------------------------
# Stacked LSTM layers, run as a wavefront
# ---------------------------------------------------------------------------------------------
class _LstmWavefront(torch.autograd.Function):
    """``L`` stacked LSTM layers in ``T + L - 1`` steps: at step ``τ`` layer ``l`` does its
    step ``τ - l``.

    The state of all layers is one ``N × L·H`` matrix; one product with a block matrix gives
    every layer its recurrent part and (from the layer below's last output) its input part.
    The gate pre-activations are laid out gate-major, ``[i | f | o | g]`` with each gate
    ``L·H`` wide, so every element-wise operation of a step covers all layers at once on
    plain 2-D views.
    """

    @staticmethod
    def forward(ctx, xg0, w_big, b_rest, n_layers):
        steps, n, four_h = xg0.shape
        hid, layers = four_h // 4, n_layers
        iters, lh = steps + layers - 1, layers * hid
        # the input part of every step, gate-major: layer 0 from xg0 (zero past the end), the
        # other layers their biases; the recurrence then adds h_{τ-1} W_big in place
        acts = xg0.new_empty(iters, n, 4, layers, hid)
        acts[:steps, :, :, 0] = xg0.view(steps, n, 4, hid)
        acts[steps:, :, :, 0] = 0
        acts[:, :, :, 1:] = b_rest.view(layers - 1, 4, hid).transpose(0, 1)
        acts = acts.view(iters, n, 4 * lh)
        h_hist = xg0.new_zeros(iters + 1, n, lh)  # h_hist[τ + 1]: the state after step τ
        c_hist = torch.zeros_like(h_hist)
        tanh_c = xg0.new_empty(iters, n, lh)
        _run_forward(acts, w_big, h_hist, c_hist, tanh_c, layers)
        ctx.save_for_backward(w_big, acts, h_hist, c_hist, tanh_c)
        ctx.layers = layers
        return h_hist[layers:, :, (layers - 1) * hid:].clone()  # the top layer's h, steps 0 .. T-1

    @staticmethod
    def backward(ctx, grad_top):
        w_big, acts, h_hist, c_hist, tanh_c = ctx.saved_tensors
        layers = ctx.layers
        iters, n, lh = tanh_c.shape
        hid = lh // layers
        steps = iters - layers + 1
        # from outside only the top layer's h, delayed L - 1 steps
        grad_h = torch.zeros_like(tanh_c)
        grad_h[layers - 1:, :, (layers - 1) * hid:] = grad_top
        grad_z, grad_w_big, _ = _run_backward(acts, w_big, h_hist, c_hist, tanh_c,
                                              grad_h, None, layers)
        gates = grad_z.view(iters, n, 4, layers, hid)
        grad_xg0 = gates[:steps, :, :, 0].reshape(steps, n, 4 * hid)
        grad_b_rest = gates[:, :, :, 1:].sum((0, 1)).transpose(0, 1).reshape(-1)
        return grad_xg0, grad_w_big, grad_b_rest, None


def stacked_weights(cell):
    """The four gates' parameters regrouped (differentiably) for the fast path.

    Chapter: chapters/08_speed.ipynb

    Returns:
        tuple: ``W_x`` (``4H × I``), ``W_h`` (``4H × H``), ``b`` (``4H``),
        gate blocks in the order input, forget, output, candidate.
    """
    gates = (cell.input_gate, cell.forget_gate, cell.output_gate, cell.candidate)
    w = torch.cat([g.weight for g in gates], dim=0)
    b = torch.cat([g.bias for g in gates], dim=0)
    return w[:, : cell.input_size], w[:, cell.input_size:], b


def _block_weights(layers):
    """The block matrix ``L·H × 4·L·H`` of the wavefront, columns gate-major (``[i | f | o | g]``,
    each ``L·H`` wide, layer by layer inside a gate): layer ``l``'s columns hold its recurrent
    weights (rows of its own state) and its input weights (rows of layer ``l - 1``'s state)."""
    stacked = [stacked_weights(layer.cell) for layer in layers]
    hid, n_layers = layers[0].hidden_size, len(layers)
    zero = stacked[0][1].new_zeros(hid, 4, hid)
    rows = []
    for r in range(n_layers):
        blocks = []
        for k, (w_x, w_h, _) in enumerate(stacked):  # H × 4 × H: (state unit, gate, unit)
            w = w_h if r == k else w_x if r == k - 1 else None
            blocks.append(zero if w is None else w.t().reshape(hid, 4, hid))
        # gate, layer, unit
        rows.append(torch.stack(blocks, dim=2).reshape(hid, 4 * n_layers * hid))
    return torch.cat(rows, dim=0), stacked


def lstm_stack_last(layers, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Stacked LSTM layers, the top layer's state at each sequence's last valid step.

    The same result as running the layers one after the other (each over all steps, the
    last one read at ``length - 1``), computed as a wavefront: at step ``τ`` layer ``l`` does
    its own step ``τ - l``, so all layers advance together and a step costs one matrix
    product and the element-wise operations of *all* layers at once. Halves the number of
    small operations for two layers; the backward pass through time is written by hand.

    Chapter: chapters/08_speed.ipynb

    Args:
        layers (Sequence[LstmLayer]): ``L >= 2`` layers; layer ``l >= 1`` takes the size
            ``H`` of the layer below, all have hidden size ``H``.
        x (torch.Tensor): ``N × T × I`` input of the first layer.
        lengths (torch.Tensor): ``N`` valid steps (``1..T``).

    Returns:
        torch.Tensor: ``N × H``.
    """
    if len(layers) < 2:
        raise ValueError("lstm_stack_last needs at least two layers; use LstmLayer for one")
    hid = layers[0].hidden_size
    if any(layer.hidden_size != hid or layer.input_size != hid for layer in layers[1:]):
        raise ValueError("lstm_stack_last: every layer above the first must map H -> H")
    n = x.shape[0]
    steps = int(lengths.max())
    w_big, stacked = _block_weights(layers)
    w_x0, _, b0 = stacked[0]
    xg0 = torch.nn.functional.linear(x[:, :steps].transpose(0, 1), w_x0, b0)  # T × N × 4H
    b_rest = torch.cat([b for _, _, b in stacked[1:]])
    top = _LstmWavefront.apply(xg0, w_big, b_rest, len(layers))  # T × N × H
    idx = (lengths - 1).view(1, n, 1).expand(1, n, hid)
    return top.gather(0, idx).squeeze(0)
