"""Diagrams of the course: framing and padding, the LSTM cell, the unrolled layer, AudioNet.

Drawn with matplotlib from the package's own functions (frame counts from
:func:`emoser.prep.count_frames`, shapes from :func:`emoser.nn.describe_shapes`), so a diagram
cannot drift from the code it explains. Every diagram sits on an opaque white background with
dark strokes and light fills, legible on the book's light and dark themes, has a title, and
returns the Figure.

Chapter: chapters/02_framing.ipynb
"""
from __future__ import annotations

from collections.abc import Sequence

from ...prep.framing import count_frames

__all__ = ["draw_framing", "draw_lstm_cell", "draw_lstm_layer", "draw_audionet"]

INK = "#1a1a1a"          # strokes and text: dark on the white background
PAPER = "#ffffff"        # opaque background, also in the book's dark mode
FILL = {"frame": "#cfe2f3", "pad": "#e6e6e6", "gate": "#fde9c9", "op": "#ffffff",
        "state": "#d9ead3", "cnn": "#cfe2f3", "lstm": "#fde9c9", "head": "#ead1dc",
        "last": "#b6d7a8", "wrong": "#f4cccc"}


def _figure(width: float, height: float):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), facecolor=PAPER)
    ax.set_facecolor(PAPER)
    return fig, ax


def _box(ax, x, y, w, h, text="", fill="#ffffff", hatch=None, lw=1.2, fontsize=10, **kw):
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.05",
                                facecolor=fill, edgecolor=INK, hatch=hatch, lw=lw))
    if text:
        if hatch:  # keep the text legible on the hatching
            kw.setdefault("bbox", dict(facecolor=fill, edgecolor="none", pad=0.6))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", color=INK,
                fontsize=fontsize, **kw)


def _arrow(ax, start, end, style="-|>", ls="-", lw=1.3, color=INK, rad=0.0):
    ax.annotate("", xy=end, xytext=start,
                arrowprops=dict(arrowstyle=style, color=color, lw=lw, ls=ls,
                                shrinkA=0, shrinkB=0, connectionstyle=f"arc3,rad={rad}"))


def _finish(fig, ax, title: str):
    ax.set_title(title, color=INK, fontsize=12)
    ax.set_aspect("auto")
    fig.patch.set_facecolor(PAPER)
    return fig


# --- chapter 2 ----------------------------------------------------------------------------------

def draw_framing(n: int = 1150, frame_length: int = 500, overlap_hop: int = 250,
                 lengths: Sequence[int] = (3, 5, 2)):
    """Framing with and without overlap, the zero-padded last frame, and a padded batch.

    Top: ``n`` samples cut into frames of ``frame_length`` with hop ``frame_length`` and with
    hop ``overlap_hop`` (frame counts from :func:`emoser.prep.count_frames`, the count
    ``frame_signal`` cuts); the hatched part of the last frame is zero padding.
    Bottom: a batch of utterances with ``lengths`` frames, padded to the longest, as the
    ``N × T × D`` tensor ``x`` with ``lengths``.

    Chapter: chapters/02_framing.ipynb

    Returns:
        matplotlib.figure.Figure: the diagram; ``fig.frame_counts`` holds the counts drawn
        (``{hop: number of frames}``) and ``fig.batch_shape`` the ``(N, T, D)`` drawn.
    """
    lengths = [int(v) for v in lengths]
    if n < 1 or frame_length < 1 or overlap_hop < 1 or not lengths or min(lengths) < 1:
        raise ValueError("draw_framing needs n, frame_length, overlap_hop >= 1 and lengths >= 1")
    fig, ax = _figure(10, 6.4)
    scale = 8.0 / max(n, (count_frames(n, frame_length, frame_length)) * frame_length)
    counts = {}
    y = 8.6
    for hop in (frame_length, overlap_hop):
        t = count_frames(n, frame_length, hop)
        counts[hop] = t
        ax.text(0, y + 0.55, f"hop {hop}: 1 + ⌈({n} − {frame_length}) / {hop}⌉ = {t} frames"
                if n > frame_length else f"hop {hop}: {t} frame", color=INK, fontsize=10,
                va="bottom")
        _box(ax, 1.2, y, n * scale, 0.35, "", fill="#f3f3f3")
        ax.text(1.1, y + 0.17, "samples", ha="right", va="center", color=INK, fontsize=9)
        for k in range(t):
            start = k * hop
            row = y - 0.55 - 0.45 * (k % 2 if hop < frame_length else 0)
            real = min(frame_length, n - start)
            _box(ax, 1.2 + start * scale, row, real * scale, 0.35, f"frame {k}",
                 fill=FILL["frame"], fontsize=8)
            if real < frame_length:
                _box(ax, 1.2 + (start + real) * scale, row, (frame_length - real) * scale, 0.35,
                     "zeros", fill=FILL["pad"], hatch="///", fontsize=8)
        y -= 2.3 if hop < frame_length else 1.7
    # the batch: N × T grid of frames
    t_max, top = max(lengths), 4.6
    cw, ch = 0.8, 0.55
    ax.text(0, top + 0.35, f"a batch: x is N × T × D = {len(lengths)} × {t_max} × "
                           f"{frame_length}, lengths = {lengths}", color=INK, fontsize=10)
    for row, ln in enumerate(lengths):
        yy = top - (row + 1) * (ch + 0.12)
        ax.text(1.1, yy + ch / 2, f"utterance {row}", ha="right", va="center", color=INK,
                fontsize=9)
        for k in range(t_max):
            valid = k < ln
            _box(ax, 1.2 + k * (cw + 0.08), yy, cw, ch, f"t={k}" if valid else "pad",
                 fill=FILL["frame"] if valid else FILL["pad"], hatch=None if valid else "///",
                 fontsize=8)
        ax.text(1.2 + t_max * (cw + 0.08) + 0.2, yy + ch / 2, f"length {ln}", va="center",
                color=INK, fontsize=9)
    ax.text(1.2, top - len(lengths) * (ch + 0.12) - 0.4,
            "each cell is one frame of D samples; padded frames are all zeros, and "
            "lengths says where each utterance ends", color=INK, fontsize=9)
    ax.set_xlim(-0.2, 10.2)
    ax.set_ylim(top - len(lengths) * (ch + 0.12) - 0.7, 9.6)
    ax.axis("off")
    fig.frame_counts = counts
    fig.batch_shape = (len(lengths), t_max, frame_length)
    return _finish(fig, ax, "Framing, zero padding and lengths (chapter 2)")


# --- chapter 3 ----------------------------------------------------------------------------------

def _op(ax, x, y, symbol, r=0.28):
    from matplotlib.patches import Circle

    ax.add_patch(Circle((x, y), r, facecolor=FILL["op"], edgecolor=INK, lw=1.2, zorder=3))
    ax.text(x, y, symbol, ha="center", va="center", color=INK, fontsize=13, zorder=4)


def draw_lstm_cell():
    """The LSTM cell: four gates on ``[x_t, h_(t-1)]`` and the state update, as in ``LstmCell``.

    Chapter: chapters/03_lstm_cell.ipynb

    Returns:
        matplotlib.figure.Figure: the diagram; ``fig.gates`` names the four gate boxes drawn.
    """
    fig, ax = _figure(10, 5.6)
    _box(ax, 1.4, 0.9, 7.6, 4.6, "", fill="#fbfbfb", lw=1.0)
    top, bus = 4.6, 1.6
    # c line along the top
    _arrow(ax, (0.2, top), (2.62, top))
    ax.text(0.2, top + 0.2, "$c_{t-1}$", color=INK, fontsize=12)
    _op(ax, 2.9, top, "×")
    _arrow(ax, (3.18, top), (5.02, top))
    _op(ax, 5.3, top, "+")
    _arrow(ax, (5.58, top), (10.1, top))
    ax.text(9.5, top + 0.2, "$c_t$", color=INK, fontsize=12)
    # inputs: h_(t-1) from the left, x_t from below, joined into [x_t, h_(t-1)]
    _arrow(ax, (0.2, bus), (2.0, bus), style="-")
    ax.text(0.2, bus + 0.2, "$h_{t-1}$", color=INK, fontsize=12)
    _arrow(ax, (2.0, 0.1), (2.0, bus), style="-")
    ax.text(2.1, 0.15, "$x_t$", color=INK, fontsize=12)
    ax.plot([2.0, 7.4], [bus, bus], color=INK, lw=1.3)
    ax.text(4.9, bus - 0.35, "$[x_t, h_{t-1}]$: the same vector feeds all four gates",
            color=INK, fontsize=9, ha="center")
    gates = [("f", "σ", 2.9, "forget"), ("i", "σ", 4.1, "input"), ("g", "tanh", 5.3, "candidate"),
             ("o", "σ", 7.4, "output")]
    for name, fn, gx, label in gates:
        _arrow(ax, (gx, bus), (gx, 2.2))
        _box(ax, gx - 0.5, 2.2, 1.0, 0.6, f"${name}_t$: {fn}", fill=FILL["gate"], fontsize=10)
        ax.text(gx, 2.08, label, ha="center", va="top", color=INK, fontsize=8,
                bbox=dict(facecolor=PAPER, edgecolor="none", pad=0.5))
    _arrow(ax, (2.9, 2.8), (2.9, top - 0.28))                       # f -> × on the c line
    _op(ax, 4.7, 3.6, "×")                                          # i × g
    _arrow(ax, (4.1, 2.8), (4.5, 3.4))
    _arrow(ax, (5.3, 2.8), (4.9, 3.4))
    _arrow(ax, (4.9, 3.8), (5.15, top - 0.25))
    # output: h_t = o · tanh(c_t)
    _box(ax, 6.55, 3.55, 0.9, 0.5, "tanh", fill=FILL["gate"], fontsize=10)
    _arrow(ax, (7.0, top), (7.0, 4.05))
    _op(ax, 7.9, 3.0, "×")
    _arrow(ax, (7.45, 3.8), (7.7, 3.2))
    _arrow(ax, (7.4, 2.8), (7.65, 2.95))
    _arrow(ax, (8.18, 3.0), (10.1, 3.0))
    ax.text(9.5, 3.2, "$h_t$", color=INK, fontsize=12)
    _arrow(ax, (8.6, 3.0), (8.6, 5.9))
    ax.text(8.7, 5.6, "$h_t$ (output)", color=INK, fontsize=10)
    ax.text(10.3, 2.2, "$f_t = σ(W_f [x_t, h_{t-1}] + b_f)$\n$i_t = σ(W_i [x_t, h_{t-1}] + b_i)$\n"
                       "$g_t = \\tanh(W_g [x_t, h_{t-1}] + b_g)$\n"
                       "$o_t = σ(W_o [x_t, h_{t-1}] + b_o)$\n\n"
                       "$c_t = f_t \\odot c_{t-1} + i_t \\odot g_t$\n"
                       "$h_t = o_t \\odot \\tanh(c_t)$",
            color=INK, fontsize=10, va="bottom", linespacing=1.6)
    ax.set_xlim(0, 14.2)
    ax.set_ylim(0, 6.1)
    ax.axis("off")
    fig.gates = [f"{name} ({fn})" for name, fn, _, _ in gates]
    return _finish(fig, ax, "The LSTM cell (chapter 3): three σ gates and a tanh candidate "
                            "on $[x_t, h_{t-1}]$")


# --- chapter 4 ----------------------------------------------------------------------------------

def draw_lstm_layer(lengths: Sequence[int] = (4, 6, 3)):
    """The layer unrolled over a padded batch, and the read-out at each last valid step.

    One row per sequence, one box per step: the same cell (one set of weights) passes
    ``(h, c)`` to the right. Valid steps are coloured, padded steps hatched; the box at step
    ``lengths[n] - 1`` is the state the layer returns with ``last_only=True`` (one ``gather``
    with index ``lengths - 1``); the boxes at step ``T - 1`` of the padded sequences are the
    wrong read-out.

    Chapter: chapters/04_lstm_layer.ipynb

    Returns:
        matplotlib.figure.Figure: the diagram; ``fig.read_steps`` lists the step read for each
        sequence.
    """
    lengths = [int(v) for v in lengths]
    if not lengths or min(lengths) < 1:
        raise ValueError(f"draw_lstm_layer needs lengths >= 1, got {lengths}")
    t_max, n = max(lengths), len(lengths)
    fig, ax = _figure(10, 2.4 + 1.15 * n)
    cw, ch, gap = 0.9, 0.6, 0.45
    x0 = 1.6
    for row, ln in enumerate(lengths):
        y = (n - 1 - row) * 1.15
        ax.text(x0 - 0.5, y + ch / 2, f"sequence {row}\nlength {ln}", ha="right", va="center",
                color=INK, fontsize=9)
        _arrow(ax, (x0 - 0.4, y + ch / 2), (x0, y + ch / 2))
        for t in range(t_max):
            x = x0 + t * (cw + gap)
            valid, last = t < ln, t == ln - 1
            fill = FILL["last"] if last else FILL["frame"] if valid else FILL["pad"]
            _box(ax, x, y, cw, ch, "cell", fill=fill, hatch=None if valid else "///",
                 lw=2.4 if last else 1.0, fontsize=9)
            if t < t_max - 1:
                _arrow(ax, (x + cw, y + ch / 2), (x + cw + gap, y + ch / 2),
                       ls="-" if t + 1 < ln else ":")
            if t == t_max - 1 and not valid:
                ax.text(x + cw / 2, y + ch + 0.08, "✗ step T−1", ha="center", color="#990000",
                        fontsize=8)
        xr = x0 + t_max * (cw + gap) + 0.3
        lx = x0 + (ln - 1) * (cw + gap) + cw / 2
        ax.annotate("", xy=(xr, y + ch / 2), xytext=(lx, y),
                    arrowprops=dict(arrowstyle="-|>", color="#38761d", lw=1.5,
                                    connectionstyle="arc3,rad=0.25", shrinkA=0, shrinkB=0))
        ax.text(xr + 0.1, y + ch / 2, f"h[{row}, {ln - 1}]", va="center", color=INK, fontsize=10)
    ax.text(x0, -0.55, "(h, c) flow left to right from zeros, through the same cell (one set "
                       "of weights) at every step.\nHatched: padding; the original ran the cell "
                       "through it (dotted), emoser's outputs there are zero.\n"
                       "Read-out: gather(h_all, dim=1, index=lengths − 1) picks the thick box of "
                       "every row at once;\nreading step T−1 (✗) would mix the padding into "
                       "the answer.", color=INK, fontsize=9, va="top", linespacing=1.4)
    for t in range(t_max):
        ax.text(x0 + t * (cw + gap) + cw / 2, n * 1.15 - 0.35, f"t={t}", ha="center",
                color=INK, fontsize=9)
    ax.set_xlim(0, x0 + t_max * (cw + gap) + 1.6)
    ax.set_ylim(-2.0, n * 1.15)
    ax.axis("off")
    fig.read_steps = [ln - 1 for ln in lengths]
    return _finish(fig, ax, "The LSTM layer unrolled over a padded batch, read at each "
                            "last valid step (chapter 4)")


# --- chapter 5 ----------------------------------------------------------------------------------

def _stage_group(name: str) -> str:
    if name.startswith(("LSTM",)):
        return "lstm"
    if name.startswith(("ReLU + linear",)):
        return "head"
    if name.startswith(("input", "features scattered")):
        return "state"
    return "cnn"


def draw_audionet(model, x, lengths=None):
    """AudioNet's stages with the shape of the data after each, measured on a real batch.

    The stages and shapes are :func:`emoser.nn.describe_shapes` of ``model`` on ``x``
    (``N × T × D``) and ``lengths``: nothing is typed by hand.

    Chapter: chapters/05_audionet.ipynb

    Returns:
        matplotlib.figure.Figure: the diagram; ``fig.stages`` holds the ``(name, shape)`` pairs
        drawn.
    """
    from ...nn import describe_shapes

    stages = describe_shapes(model, x, lengths)
    n = len(stages)
    fig, ax = _figure(10, 0.5 * n + 1.6)
    bw, bh, x0 = 5.2, 0.36, 0.3
    groups: dict[str, list[float]] = {}
    for k, (name, shape) in enumerate(stages):
        y = (n - 1 - k) * 0.5
        group = _stage_group(name)
        groups.setdefault(group, []).append(y)
        _box(ax, x0, y, bw, bh, name, fill=FILL[group], fontsize=9)
        ax.text(x0 + bw + 0.3, y + bh / 2, " × ".join(map(str, shape)), va="center",
                color=INK, fontsize=10, family="monospace")
        if k < n - 1:
            _arrow(ax, (x0 + bw / 2, y), (x0 + bw / 2, y - 0.14), lw=1.0)
    labels = {"cnn": "CNN front-end:\neach valid frame\nalone (M frames)",
              "lstm": "two LSTM layers\nover time", "head": "classifier"}
    for group, ys in groups.items():
        if group not in labels:
            continue
        lo, hi = min(ys), max(ys) + bh
        xb = x0 + bw + 3.2
        ax.plot([xb, xb + 0.12, xb + 0.12, xb], [hi, hi, lo, lo], color=INK, lw=1.2)
        ax.text(xb + 0.3, (lo + hi) / 2, labels[group], va="center", color=INK, fontsize=9)
    ax.text(x0 + bw + 0.3, n * 0.5 - 0.05, "shape", color=INK, fontsize=10, weight="bold")
    ax.set_xlim(0, 11.5)
    ax.set_ylim(-0.3, n * 0.5 + 0.3)
    ax.axis("off")
    fig.stages = [(name, tuple(shape)) for name, shape in stages]
    return _finish(fig, ax, "AudioNet's stages and the data's shape after each "
                            f"(measured on a batch of {x.shape[0]}, chapter 5)")
