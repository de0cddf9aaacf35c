"""The arithmetic of AudioNet's default training path, written out for speed.

Three autograd functions compute exactly the functions of the spec, with fewer and larger
operations and a hand-written backward pass:

* :func:`frontend_gemm`: AudioNet's CNN front-end (average pooling, the convolutions, ReLU,
  max pooling) on channels-last matrices. Every convolution is one to three plain matrix
  products, and only the samples that can reach the output are computed
  (:func:`frontend_receptive_field`: with frames of 500 samples the last 118 never do).
* :func:`lstm_recurrence`: the LSTM recurrence over all time steps as one autograd node;
  the backward pass through time (BPTT) is written by hand, with the gate equations of
  chapter 3 differentiated once.
* :func:`lstm_stack_last`: two or more stacked LSTM layers as one loop (a wavefront: layer
  ``l`` runs ``l`` steps behind layer 0), read at each sequence's last valid step.

On the CPU the loops with many tiny operations -- every LSTM step, block 1 of the front-end,
and the ReLU + max pooling of the later blocks -- run as fused C kernels
(:mod:`emoser.native`) where a C compiler exists; elsewhere (a GPU, ``EMOSER_NATIVE=0``, no
compiler) as the PyTorch operations written here.

The tests check all three against the literal modules (``nn.Conv1d``, ``F.max_pool1d``, the
per-step :class:`~emoser.lstm.LstmCell` through autograd), values and gradients, in float64,
with the kernels and without them.

Chapter: chapters/08_speed.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import native

__all__ = ["FrontendPlan", "frontend_receptive_field", "needed_lengths", "frontend_gemm", "lstm_recurrence", "lstm_stack_last"]


# ---------------------------------------------------------------------------------------------
# The CNN front-end
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FrontendPlan:
    """How many positions each stage of the front-end must compute for the output.

    Attributes:
        in_dim (int): Frame length ``D``.
        kernel (int): Convolution kernel size ``K`` (stride 2 everywhere).
        conv_outputs (tuple[int, ...]): Conv outputs each block must compute (even numbers:
            max pooling pairs them).
        conv_inputs (tuple[int, ...]): Input positions each block reads (block 1: samples of
            the average-pooled frame).
        full_conv_outputs (tuple[int, ...]): Conv outputs each block has in the literal model.
        samples_used (int): Samples of the raw frame that can change the output (the first ones).
    """

    in_dim: int
    kernel: int
    conv_outputs: tuple
    conv_inputs: tuple
    full_conv_outputs: tuple
    samples_used: int

    @property
    def out_positions(self) -> int:
        """Positions per channel after the last max pooling (``F = C · out_positions``)."""
        return self.conv_outputs[-1] // 2


def frontend_receptive_field(in_dim: int, conv_layers: int, kernel: int) -> FrontendPlan:
    """Work backwards from the front-end's output to the samples it can see.

    Max pooling 2/2 drops an odd last conv output; a stride-2 convolution of kernel ``K``
    with ``m`` outputs reads ``2(m - 1) + K`` inputs. Starting from the final pooled length
    and going back block by block gives the positions each block must compute, and the
    first samples of the frame that reach the output at all. For AudioNet's defaults
    (``D = 500``, 3 blocks, ``K = 5``) that is 382 samples: the last 118 samples of every
    frame never influence the model.

    Chapter: chapters/08_speed.ipynb

    Args:
        in_dim (int): Frame length ``D``.
        conv_layers (int): Number of convolution blocks.
        kernel (int): Kernel size ``K``.

    Returns:
        FrontendPlan: The lengths per block.
    """
    length, full = in_dim // 2, []
    for _ in range(conv_layers):
        conv = (length - kernel) // 2 + 1 if length >= kernel else 0
        full.append(conv)
        length = conv // 2
    if length < 1:
        raise ValueError(f"a frame of {in_dim} samples is too short for {conv_layers} blocks of kernel {kernel}")
    outs, ins = needed_lengths(length, conv_layers, kernel)
    return FrontendPlan(in_dim, kernel, outs, ins, tuple(full), 2 * ins[0])


def needed_lengths(pooled: int, conv_layers: int, kernel: int) -> tuple[tuple, tuple]:
    """Conv outputs and input positions each block needs for ``pooled`` outputs of the last block.

    Worked backwards: max pooling 2/2 needs ``2·m`` conv outputs for ``m`` outputs, and a
    stride-2 convolution of kernel ``K`` with ``m`` outputs reads ``2(m - 1) + K`` inputs.

    Chapter: chapters/08_speed.ipynb

    Args:
        pooled (int): Positions per channel after the last block's max pooling.
        conv_layers (int): Number of convolution blocks.
        kernel (int): Kernel size ``K``.

    Returns:
        tuple: ``(conv_outputs, conv_inputs)``, one entry per block, block 1 first; block 1's
        inputs are samples of the average-pooled frame.
    """
    outs, ins = [], []
    for _ in range(conv_layers):
        outs.append(2 * pooled)
        ins.append(2 * (2 * pooled - 1) + kernel)
        pooled = ins[-1]
    return tuple(reversed(outs)), tuple(reversed(ins))


#: Numbers per tensor in one chunk of block 1 (about 400 kB of float32): small enough that a
#: chunk's conv output, mask and pooled values stay in a core's L2 cache from one operation
#: to the next. On a 2-core Sapphire Rapids, block 1 over a whole batch at once (12 MB per
#: tensor) made the front-end about 4 % slower; chunks of 0.4 and 3 MB measured the same.
_CHUNK_ELEMENTS = 96 * 1024


def _native_for(*tensors):
    """The fused kernels (:mod:`emoser.native`) for these tensors, or ``None``: they must all
    be contiguous, on the CPU, of one dtype (float32 or float64)."""
    first = tensors[0]
    if first.device.type != "cpu" or any(t.dtype != first.dtype or not t.is_contiguous() for t in tensors):
        return None
    return native.kernels(first.dtype)


def _ptr(t):
    return None if t is None else t.data_ptr()


def _check(status: int, what: str) -> None:
    if status == -1:
        raise MemoryError(f"emoser.native: {what} found no memory for its buffers")
    if status != 0:
        raise RuntimeError(f"emoser.native: {what} failed (status {status})")


def _frame_chunks(m: int, per_frame: int) -> list[tuple[int, int]]:
    """Ranges ``(start, end)`` of ``m`` frames, each about ``_CHUNK_ELEMENTS`` numbers of ``per_frame``."""
    step = max(1, _CHUNK_ELEMENTS // max(1, per_frame))
    return [(s, min(s + step, m)) for s in range(0, m, step)]


def _relu_max(left: torch.Tensor, right: torch.Tensor, out: torch.Tensor, take_left: torch.Tensor):
    """ReLU of the element-wise maximum, into ``out``; which side won into ``take_left``.

    ``take_left`` gets 0/1 floats (1: the left one; ties go to the left, as in ``max_pool1d``).
    Float masks, not booleans: multiplying by a float is several times faster on a CPU
    than any operation that mixes booleans and floats.
    """
    torch.ge(left, right, out=take_left)
    return torch.maximum(left, right, out=out).clamp_min_(0)


def _paired_views(pairs: torch.Tensor, take_left: torch.Tensor):
    """The two sides of ``pairs`` (``P × 2 × M × C``), the masks and the matching slot index.

    Pooled position ``2r + j`` lives in slot ``[r, j]`` of a ``rows × 2 × M × C`` view, so the
    first ``2·(P // 2)`` positions are whole rows of slots (views ``P//2 × 2 × M × C``) and an
    odd last position is slot ``[P // 2, 0]`` on its own. Returns ``(left, right, take_left, slot)``
    for each of these pieces.
    """
    p, _, m, c = pairs.shape
    k = p // 2
    pieces = []
    if k:
        rows = (pairs[:2 * k, 0], pairs[:2 * k, 1], take_left[:2 * k])
        pieces.append((*(t.view(k, 2, m, c) for t in rows), slice(0, k)))
    if p % 2:
        pieces.append((pairs[p - 1, 0], pairs[p - 1, 1], take_left[p - 1], (k, 0)))
    return pieces


def _pool_into(z: torch.Tensor, slots: torch.Tensor, take_left: torch.Tensor) -> None:
    """ReLU + max pooling 2/2 of a position-major conv output into ``slots``.

    ``z`` is ``(2P·M) × C`` (row ``q·M + f``: conv output ``q`` of frame ``f``); the ``P``
    pooled positions go to ``slots`` (``rows × 2 × M × C``) and the masks to ``take_left``
    (``P × M × C``). By the fused kernel where there is one (the same bits).
    """
    p, m, c = take_left.shape
    lib = _native_for(z, take_left) if slots.stride(3) == 1 and slots.dtype == z.dtype else None
    if lib is not None:
        lib.pool_forward(z.data_ptr(), p, m, c, slots.data_ptr(), *slots.stride()[:3], take_left.data_ptr())
        return
    for left, right, tl, slot in _paired_views(z.view(take_left.shape[0], 2, *take_left.shape[1:]), take_left):
        _relu_max(left, right, slots[slot], tl)


def _unpool_from(grad_slots: torch.Tensor, slots: torch.Tensor, take_left: torch.Tensor, grad_z: torch.Tensor) -> None:
    """Backward of :func:`_pool_into`: route ``grad_slots`` (shaped like ``slots``) into ``grad_z``."""
    p, m, c = take_left.shape
    lib = (_native_for(take_left, grad_z) if grad_slots.stride() == slots.stride() and slots.stride(3) == 1
           and grad_slots.dtype == slots.dtype == grad_z.dtype else None)
    if lib is not None:
        lib.pool_backward(grad_slots.data_ptr(), slots.data_ptr(), *slots.stride()[:3], take_left.data_ptr(), p, m, c,
                          grad_z.data_ptr())
        return
    pairs = grad_z.view(take_left.shape[0], 2, *take_left.shape[1:])
    for out_left, out_right, tl, slot in _paired_views(pairs, take_left):
        pooled = slots[slot]
        g = grad_slots[slot] * torch.gt(pooled, 0, out=pooled.new_empty(pooled.shape))  # ReLU: none where clipped
        torch.mul(g, tl, out=out_left)
        torch.sub(g, out_left, out=out_right)


def _shift_weights(weight: torch.Tensor):
    """Conv weight ``C_out × C × K`` as ``ceil(K/2)`` matrices over pairs of input positions.

    Shift ``s`` covers taps ``2s`` and ``2s + 1``: a ``2C × C_out`` matrix (``C × C_out`` for
    the last, single tap of an odd ``K``), matching rows ``[a_{2r}, a_{2r+1}]`` of the input.
    """
    c_out, c_in, k = weight.shape
    mats = []
    for s in range(0, k, 2):
        taps = weight[:, :, s:s + 2]  # C_out × C × (1 or 2)
        mats.append(taps.permute(2, 1, 0).reshape(-1, c_out))
    return mats


def _input_buffer(m: int, n_in: int, channels: int, like: torch.Tensor):
    """A conv block's input, position-major: row ``r·M + f`` holds positions ``2r`` and
    ``2r + 1`` of frame ``f`` (``2C`` numbers); a position past ``n_in`` is zero.

    Returns the buffer (``rows·M × 2C``) and its slots view ``rows × 2 × M × C`` (position
    ``2r + j`` of frame ``f`` at ``[r, j, f]``), where the previous block pools into.
    """
    rows = (n_in + 1) // 2
    a = like.new_empty(rows * m, 2 * channels)
    slots = a.view(rows, m, 2, channels).permute(0, 2, 1, 3)
    if n_in < 2 * rows:
        slots[rows - 1, 1] = 0
    return a, slots


class _FrontendGemm(torch.autograd.Function):
    """The front-end as matrix products on position-major tensors; backward by hand.

    Position-major (row ``q·M + f`` for position ``q`` of frame ``f``): a convolution's
    shifted products then read contiguous row ranges of exactly the outputs needed, and max
    pooling pairs two contiguous blocks of rows. Block 1 runs frame by frame in chunks
    (:func:`_frame_chunks`), so that its conv output (the largest tensor of the front-end)
    stays in the CPU's caches, and pools into the position-major input of block 2; its
    windows are small and kept for the backward pass.
    """

    @staticmethod
    def forward(ctx, frames, plan, *params):
        m = frames.shape[0]
        weights, biases = params[0::2], params[1::2]
        n_blocks = len(weights)
        k = plan.kernel
        w1, b1 = weights[0], biases[0]
        c = w1.shape[0]
        half = plan.conv_outputs[0] // 2
        if n_blocks > 1:
            a, slots = _input_buffer(m, half, c, frames)
        else:
            a, slots = None, frames.new_empty((half + 1) // 2, 2, m, c)
        rows = slots.shape[0]
        # block 1, frame by frame: average pooling 2/2; conv output p reads avg[2p : 2p + K];
        # pairs (2q, 2q+1) pooled. All 2·rows pooled positions are computed (an odd last one
        # from zero padding: it fills a slot that no later output reads, and is set back to
        # zero below).
        lib = _native_for(frames, w1, b1) if slots.stride(3) == 1 and k <= native.MAX_KERNEL else None
        ctx.native = lib is not None
        if lib is not None:  # the fused kernel: one pass per frame; the backward recomputes the winners
            w1_t, b1_c = w1.view(c, k).t().contiguous(), b1.contiguous()
            _check(lib.block1_forward(frames.data_ptr(), m, frames.shape[1], plan.samples_used, k, c, 2 * rows,
                                      w1_t.data_ptr(), b1_c.data_ptr(), slots.data_ptr(), *slots.stride()[:3]),
                   "block 1")
            saved = [frames, w1_t, b1_c, slots]
        else:  # in L2-sized chunks of frames, as matrix products with the windows
            take_left = frames.new_empty(m, rows, 2, c)
            even, odd = _block1_windows(frames, plan.samples_used, k, 2 * rows)  # (M·2·rows) × (K + 1)
            by_frame = slots.permute(2, 0, 1, 3)  # M × rows × 2 × C
            w1_ext = torch.cat((w1.view(c, k).t(), b1.view(1, c)))  # (K + 1) × C: the bias as a last row
            for s, e in _frame_chunks(m, 2 * rows * c):
                z_even = torch.mm(even[s * 2 * rows:e * 2 * rows], w1_ext).view(e - s, rows, 2, c)
                z_odd = torch.mm(odd[s * 2 * rows:e * 2 * rows], w1_ext).view(e - s, rows, 2, c)
                _relu_max(z_even, z_odd, by_frame[s:e], take_left[s:e])
            saved = [odd, even - odd, take_left, slots]  # the last column of even - odd is 0
        if half < 2 * rows:
            slots[rows - 1, 1] = 0
        for b in range(1, n_blocks):
            w, bias = weights[b], biases[b]
            n_out = plan.conv_outputs[b]
            mats = _shift_weights(w)
            n = n_out * m
            z = torch.addmm(bias, a[0:n], mats[0])  # row q·M + f: output q of frame f
            for s in range(1, len(mats)):
                z.addmm_(a[s * m:s * m + n, :mats[s].shape[0]], mats[s])
            c = w.shape[0]
            p = n_out // 2
            saved_a = a
            if b + 1 < n_blocks:  # pool straight into the next block's input buffer
                a, slots = _input_buffer(m, p, c, frames)
            else:
                slots = frames.new_empty((p + 1) // 2, 2, m, c)
            take_left = frames.new_empty(p, m, c)
            _pool_into(z, slots, take_left)
            saved += [saved_a, take_left, slots]
        ctx.save_for_backward(*saved, *weights)
        ctx.plan, ctx.m, ctx.n_blocks = plan, m, n_blocks
        p = plan.conv_outputs[-1] // 2
        return slots.reshape(-1, m, c)[:p].permute(1, 2, 0).reshape(m, -1)  # M × (C · P), channel-major

    @staticmethod
    def backward(ctx, grad_features):
        plan, m, n_blocks = ctx.plan, ctx.m, ctx.n_blocks
        saved = ctx.saved_tensors
        weights = saved[4 + 3 * (n_blocks - 1):]
        k = plan.kernel
        grads = [None] * (2 * n_blocks)
        c_last = weights[-1].shape[0]
        p = plan.conv_outputs[-1] // 2
        grad_slots = grad_features.new_zeros((p + 1) // 2 * 2, m, c_last)
        grad_slots[:p] = grad_features.view(m, c_last, p).permute(2, 0, 1)
        grad_slots = grad_slots.view(-1, 2, m, c_last)
        for b in range(n_blocks - 1, 0, -1):
            a, take_left, slots = saved[4 + 3 * (b - 1): 4 + 3 * b]
            w = weights[b]
            c_out, c_in = w.shape[0], w.shape[1]
            n_out = plan.conv_outputs[b]
            n = n_out * m
            grad_z = grad_slots.new_empty(n, c_out)
            _unpool_from(grad_slots, slots, take_left, grad_z)
            mats = _shift_weights(w)
            grad_w = torch.empty_like(w)
            grad_a = torch.empty_like(a)
            grad_a[n:] = 0
            for s, mat in enumerate(mats):
                width = mat.shape[0]
                g = grad_z.t() @ a[s * m:s * m + n, :width]  # C_out × width
                taps = width // c_in
                grad_w[:, :, 2 * s:2 * s + taps] = g.view(c_out, taps, c_in).transpose(1, 2)
                if s == 0:  # the first shift covers rows 0 .. n: it sets them, the others add
                    torch.mm(grad_z, mat.t(), out=grad_a[0:n])
                else:
                    grad_a[s * m:s * m + n, :width].addmm_(grad_z, mat.t())
            grads[2 * b] = grad_w
            grads[2 * b + 1] = grad_z.sum(0)
            grad_slots = grad_a.view(-1, m, 2, c_in).permute(0, 2, 1, 3)
        odd, diff, take_left, slots = saved[0:4]
        c = weights[0].shape[0]
        rows = slots.shape[0]
        if ctx.native:  # the fused kernel (saved: frames, kernel, bias, slots)
            frames, w1_t, b1_c = odd, diff, take_left
            grad_ext = grad_slots.new_empty(k + 1, c)
            if grad_slots.stride() != slots.stride():
                grad_slots = torch.empty_like(slots).copy_(grad_slots)
            _check(native.kernels(frames.dtype).block1_backward(
                frames.data_ptr(), m, frames.shape[1], plan.samples_used, k, c, 2 * rows, w1_t.data_ptr(),
                b1_c.data_ptr(), grad_slots.data_ptr(), *grad_slots.stride()[:3], grad_ext.data_ptr()),
                "block 1 backward")
            grads[0] = grad_ext[:k].t().reshape(c, 1, k)
            grads[1] = grad_ext[k]
            return (None, None, *grads)
        by_frame, grad_by_frame = slots.permute(2, 0, 1, 3), grad_slots.permute(2, 0, 1, 3)
        grad_ext = grad_slots.new_zeros(k + 1, c)  # rows: dW (K), then db
        for s, e in _frame_chunks(m, 2 * rows * c):
            pooled = by_frame[s:e]
            g = pooled.new_empty(pooled.shape)  # contiguous: rows (frame, position) as in the windows
            torch.mul(grad_by_frame[s:e], torch.gt(pooled, 0, out=pooled.new_empty(pooled.shape)), out=g)
            g_even = g * take_left[s:e]
            # even outputs get g_even, odd ones g - g_even: dW = oddᵀ·g + (even - odd)ᵀ·g_even
            grad_ext.addmm_(odd[s * 2 * rows:e * 2 * rows].t(), g.view(-1, c))
            grad_ext.addmm_(diff[s * 2 * rows:e * 2 * rows].t(), g_even.view(-1, c))
        grads[0] = grad_ext[:k].t().reshape(c, 1, k)
        grads[1] = grad_ext[k]
        return (None, None, *grads)


def _block1_windows(frames: torch.Tensor, samples: int, kernel: int, positions: int):
    """Block 1's input windows, frame by frame, for its even and odd conv outputs.

    The frames are average-pooled 2/2 (their first ``samples`` samples). Conv output ``2q``
    reads ``avg[4q : 4q + K]``, output ``2q + 1`` reads ``avg[4q + 2 : 4q + 2 + K]``; pooled
    position ``q`` of frame ``f`` is row ``f·positions + q`` of a ``(M·positions) × (K + 1)``
    matrix whose last column is 1 (it multiplies the bias). Windows past the end of ``avg``
    read zeros.
    """
    m = frames.shape[0]
    need = 4 * (positions - 1) + 2 + kernel  # avg samples the last odd window reads
    avg = frames.new_zeros(m, max(need, samples // 2))
    torch.add(frames[:, 0:samples:2], frames[:, 1:samples:2], out=avg[:, :samples // 2]).mul_(0.5)
    windows = []
    for start in (0, 2):
        w = frames.new_empty(m * positions, kernel + 1)
        w[:, :kernel].view(m, positions, kernel).copy_(avg[:, start:].unfold(1, kernel, 4)[:, :positions])
        w[:, kernel] = 1
        windows.append(w)
    return windows


def frontend_gemm(frames: torch.Tensor, plan: FrontendPlan, convs) -> torch.Tensor:
    """AudioNet's CNN front-end as matrix products: ``M × D`` frames → ``M × F`` features.

    The same function as average pooling 2/2, then per block a stride-2 ``Conv1d``, ReLU
    and max pooling 2/2 (ties to the first element), flattened channel by channel. The data
    stay channels-last: block 1 is one product of the frame's windows with the ``C × K``
    kernel; a later block keeps its input position-major (row ``r·M + f`` holds positions
    ``2r`` and ``2r + 1`` of frame ``f``, ``2C`` numbers), so its convolution is ``ceil(K/2)``
    products of row ranges shifted by whole blocks of ``M`` rows, with slices of the kernel,
    without copying windows. Only the positions of :func:`frontend_receptive_field` are
    computed, and no others: position-major rows hold exactly the outputs needed. The gradients of the weights are written
    by hand; the frames get none (training never needs them).

    Chapter: chapters/08_speed.ipynb

    Args:
        frames (torch.Tensor): ``M × D`` frames (no gradient).
        plan (FrontendPlan): From :func:`frontend_receptive_field`.
        convs (Sequence[nn.Conv1d]): The convolution of each block (block 1 with one input
            channel); the same module may repeat (shared weights).

    Returns:
        torch.Tensor: ``M × (C · n)`` features.
    """
    if frames.ndim != 2 or frames.shape[1] != plan.in_dim:
        raise ValueError(f"frontend_gemm expects frames M × {plan.in_dim}, got {tuple(frames.shape)}")
    if frames.requires_grad:
        raise ValueError("frontend_gemm computes no gradient for the frames; use AudioNet.frontend_literal")
    if len(convs) != len(plan.conv_outputs):
        raise ValueError(f"plan has {len(plan.conv_outputs)} blocks, got {len(convs)} convolutions")
    params = []
    for conv in convs:
        params += [conv.weight, conv.bias]
    return _FrontendGemm.apply(frames, plan, *params)


# ---------------------------------------------------------------------------------------------
# The LSTM recurrence
# ---------------------------------------------------------------------------------------------
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
    #   dz_i = dc·g·i(1-i)   dz_f = dc·c_{t-1}·f(1-f)   dz_g = dc·i·(1-g²)   dz_o = dh·tanh(c)·o(1-o)
    #   dc_t += dh·o·(1-tanh²(c))                       dc_{t-1} = dc_t·f
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
    lib = _native_for(acts, w, h_hist, c_hist, tanh_c)
    if lib is None:
        _recurrence_forward(acts, w, h_hist, c_hist, tanh_c, layers)
        return
    steps, n, width = tanh_c.shape
    lib.lstm_forward(*map(_ptr, (acts, w, h_hist, c_hist, tanh_c)), steps, n, width, layers)


def _run_backward(acts, w, h_hist, c_hist, tanh_c, grad_h, grad_c, layers: int = 1):
    """:func:`_recurrence_backward`, by the fused kernel when there is one for these tensors."""
    lib = _native_for(acts, w, c_hist, tanh_c, grad_h, *(() if grad_c is None else (grad_c,)))
    if lib is None:
        return _recurrence_backward(acts, w, h_hist, c_hist, tanh_c, grad_h, grad_c, layers)
    steps, n, width = tanh_c.shape
    grad_z, grad_c0 = torch.empty_like(acts), torch.empty_like(h_hist[0])
    w_t = w.t().contiguous()
    lib.lstm_backward(*map(_ptr, (acts, w_t, c_hist, tanh_c, grad_h, grad_c, grad_z, grad_c0)), steps, n,
                      width, layers)
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
        grad_h = torch.zeros_like(tanh_c) if grad_h_all is None else grad_h_all.clone(memory_format=torch.contiguous_format)
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
    if xg.ndim != 3 or xg.shape[0] < 1 or xg.shape[2] != 4 * w_h.shape[1] or w_h.shape[0] != xg.shape[2]:
        raise ValueError(f"lstm_recurrence: need xg T × N × 4H (T >= 1) and w_h 4H × H, got "
                         f"{tuple(xg.shape)} and {tuple(w_h.shape)}")
    return _LstmRecurrence.apply(xg, w_h, h0, c0)


# ---------------------------------------------------------------------------------------------
# Stacked LSTM layers, run as a wavefront
# ---------------------------------------------------------------------------------------------
class _LstmWavefront(torch.autograd.Function):
    """``L`` stacked LSTM layers in ``T + L - 1`` steps: at step ``τ`` layer ``l`` does its step ``τ - l``.

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
        grad_h = torch.zeros_like(tanh_c)  # from outside only the top layer's h, delayed L - 1 steps
        grad_h[layers - 1:, :, (layers - 1) * hid:] = grad_top
        grad_z, grad_w_big, _ = _run_backward(acts, w_big, h_hist, c_hist, tanh_c, grad_h, None, layers)
        gates = grad_z.view(iters, n, 4, layers, hid)
        grad_xg0 = gates[:steps, :, :, 0].reshape(steps, n, 4 * hid)
        grad_b_rest = gates[:, :, :, 1:].sum((0, 1)).transpose(0, 1).reshape(-1)
        return grad_xg0, grad_w_big, grad_b_rest, None


def _block_weights(layers):
    """The block matrix ``L·H × 4·L·H`` of the wavefront, columns gate-major (``[i | f | o | g]``,
    each ``L·H`` wide, layer by layer inside a gate): layer ``l``'s columns hold its recurrent
    weights (rows of its own state) and its input weights (rows of layer ``l - 1``'s state)."""
    stacked = [layer.stacked_weights() for layer in layers]
    hid, n_layers = layers[0].hidden_size, len(layers)
    zero = stacked[0][1].new_zeros(hid, 4, hid)
    rows = []
    for r in range(n_layers):
        blocks = []
        for l, (w_x, w_h, _) in enumerate(stacked):  # H × 4 × H: (state unit, gate, unit)
            w = w_h if r == l else w_x if r == l - 1 else None
            blocks.append(zero if w is None else w.t().reshape(hid, 4, hid))
        rows.append(torch.stack(blocks, dim=2).reshape(hid, 4 * n_layers * hid))  # gate, layer, unit
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
