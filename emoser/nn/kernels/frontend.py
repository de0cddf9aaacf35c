"""AudioNet's CNN front-end, written out for speed: the default training path's arithmetic.

:func:`frontend_gemm` computes exactly the front-end of the spec (average pooling, the
convolutions, ReLU, max pooling) on channels-last matrices, with a hand-written backward pass.
Every convolution is one to three plain matrix products, and only the samples that can reach
the output are computed (:func:`frontend_receptive_field`: with frames of 500 samples the last
118 never do).

On the CPU the loops with many tiny operations -- block 1, and the ReLU + max pooling of the
later blocks -- run as fused C kernels (:mod:`emoser.nn.kernels.native`) where a C compiler
exists; elsewhere (a GPU, ``EMOSER_NATIVE=0``, no compiler) as the PyTorch operations written
here. The tests check it against the literal modules (``nn.Conv1d``, ``F.max_pool1d``), values
and gradients, in float64, with the kernels and without them.

Chapter: chapters/08_speed.ipynb
"""

from __future__ import annotations

import torch

from . import native
from .dispatch import check_status, kernels_for
from .plan import FrontendPlan

__all__ = ["CHUNK_ELEMENTS", "frontend_gemm"]


#: Numbers per tensor in one chunk of block 1 (about 400 kB of float32): small enough that a
#: chunk's conv output, mask and pooled values stay in a core's L2 cache from one operation
#: to the next. On a 2-core Sapphire Rapids, block 1 over a whole batch at once (12 MB per
#: tensor) made the front-end about 4 % slower; chunks of 0.4 and 3 MB measured the same.
CHUNK_ELEMENTS = 96 * 1024


def _frame_chunks(m: int, per_frame: int) -> list[tuple[int, int]]:
    """Ranges ``(start, end)`` of ``m`` frames, each about ``CHUNK_ELEMENTS`` numbers of
    ``per_frame``."""
    step = max(1, CHUNK_ELEMENTS // max(1, per_frame))
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
    lib = kernels_for(z, take_left) if slots.stride(3) == 1 and slots.dtype == z.dtype else None
    if lib is not None:
        lib.pool_forward(z.data_ptr(), p, m, c, slots.data_ptr(), *slots.stride()[:3],
                         take_left.data_ptr())
        return
    for left, right, tl, slot in _paired_views(z.view(take_left.shape[0], 2, *take_left.shape[1:]),
                                               take_left):
        _relu_max(left, right, slots[slot], tl)


def _unpool_from(grad_slots: torch.Tensor, slots: torch.Tensor, take_left: torch.Tensor,
                 grad_z: torch.Tensor) -> None:
    """Backward of :func:`_pool_into`: route ``grad_slots`` (shaped like ``slots``) into
    ``grad_z``."""
    p, m, c = take_left.shape
    lib = (kernels_for(take_left, grad_z)
           if grad_slots.stride() == slots.stride() and slots.stride(3) == 1
           and grad_slots.dtype == slots.dtype == grad_z.dtype else None)
    if lib is not None:
        lib.pool_backward(grad_slots.data_ptr(), slots.data_ptr(), *slots.stride()[:3],
                          take_left.data_ptr(), p, m, c, grad_z.data_ptr())
        return
    pairs = grad_z.view(take_left.shape[0], 2, *take_left.shape[1:])
    for out_left, out_right, tl, slot in _paired_views(pairs, take_left):
        pooled = slots[slot]
        # ReLU: none where clipped
        g = grad_slots[slot] * torch.gt(pooled, 0, out=pooled.new_empty(pooled.shape))
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
        lib = (kernels_for(frames, w1, b1) if slots.stride(3) == 1 and k <= native.MAX_KERNEL
               else None)
        ctx.native = lib is not None
        if lib is not None:
            # the fused kernel: one pass per frame; the backward recomputes the winners
            w1_t, b1_c = w1.view(c, k).t().contiguous(), b1.contiguous()
            check_status(lib.block1_forward(frames.data_ptr(), m, frames.shape[1],
                                            plan.samples_used, k, c, 2 * rows,
                                            w1_t.data_ptr(), b1_c.data_ptr(),
                                            slots.data_ptr(), *slots.stride()[:3]),
                         "block 1")
            saved = [frames, w1_t, b1_c, slots]
        else:  # in L2-sized chunks of frames, as matrix products with the windows
            take_left = frames.new_empty(m, rows, 2, c)
            # (M·2·rows) × (K + 1)
            even, odd = _block1_windows(frames, plan.samples_used, k, 2 * rows)
            by_frame = slots.permute(2, 0, 1, 3)  # M × rows × 2 × C
            # (K + 1) × C: the bias as a last row
            w1_ext = torch.cat((w1.view(c, k).t(), b1.view(1, c)))
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
        # M × (C · P), channel-major
        return slots.reshape(-1, m, c)[:p].permute(1, 2, 0).reshape(m, -1)

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
            check_status(native.kernels(frames.dtype).block1_backward(
                frames.data_ptr(), m, frames.shape[1], plan.samples_used, k, c, 2 * rows,
                w1_t.data_ptr(), b1_c.data_ptr(), grad_slots.data_ptr(),
                *grad_slots.stride()[:3], grad_ext.data_ptr()),
                "block 1 backward")
            grads[0] = grad_ext[:k].t().reshape(c, 1, k)
            grads[1] = grad_ext[k]
            return (None, None, *grads)
        by_frame, grad_by_frame = slots.permute(2, 0, 1, 3), grad_slots.permute(2, 0, 1, 3)
        grad_ext = grad_slots.new_zeros(k + 1, c)  # rows: dW (K), then db
        for s, e in _frame_chunks(m, 2 * rows * c):
            pooled = by_frame[s:e]
            # contiguous: rows (frame, position) as in the windows
            g = pooled.new_empty(pooled.shape)
            torch.mul(grad_by_frame[s:e],
                      torch.gt(pooled, 0, out=pooled.new_empty(pooled.shape)), out=g)
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
        w[:, :kernel].view(m, positions, kernel).copy_(
            avg[:, start:].unfold(1, kernel, 4)[:, :positions])
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
    computed, and no others: position-major rows hold exactly the outputs needed. The gradients
    of the weights are written by hand; the frames get none (training never needs them).

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
        raise ValueError(f"frontend_gemm expects frames M × {plan.in_dim}, "
                         f"got {tuple(frames.shape)}")
    if frames.requires_grad:
        raise ValueError("frontend_gemm computes no gradient for the frames; "
                         "use AudioNet.frontend (the modules)")
    if len(convs) != len(plan.conv_outputs):
        raise ValueError(f"plan has {len(plan.conv_outputs)} blocks, got {len(convs)} convolutions")
    params = []
    for conv in convs:
        params += [conv.weight, conv.bias]
    return _FrontendGemm.apply(frames, plan, *params)
