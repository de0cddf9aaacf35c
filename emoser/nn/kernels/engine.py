"""AudioNet's fast engine: the taught model's function, computed by this package's kernels.

``AudioNet(engine="fast")`` (the package default) and ``model.set_engine("fast")`` route the
forward pass here: the CNN front-end as matrix products (:func:`frontend_gemm`), the LSTM
layers as :class:`FastLstmLayer`, two or more of them as one wavefront
(:func:`lstm_stack_last`). The parameters are the taught model's; chapter 8 proves both
engines compute the same function. Three switches on a model turn single pieces back into
the literal computation (chapter 8 times each): ``model.gemm_frontend``, ``model.fast_pool``
and ``model.wavefront_lstm`` (all ``True`` unless set to ``False``).

Chapter: chapters/08_speed.ipynb
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..lstm import LstmLayer
from .frontend import frontend_gemm
from .layer import FastLstmLayer, check_fast_cell
from .plan import frontend_receptive_field
from .pool import relu_max_pool2
from .recurrence import lstm_stack_last

__all__ = ["ENGINES", "use_engine", "fast_forward", "fast_frontend"]

#: The engines an AudioNet can run on.
ENGINES = ("taught", "fast")


def use_engine(model, engine: str) -> str:
    """Switch ``model`` (an :class:`~emoser.nn.AudioNet`) to ``engine`` in place.

    The LSTM layers change class (:class:`~emoser.nn.LstmLayer` ↔ :class:`FastLstmLayer`),
    nothing else: the parameters, their ``state_dict`` keys and any optimizer holding them stay
    as they are. ``"fast"`` needs the package's :class:`~emoser.nn.LstmCell` in every layer.

    Chapter: chapters/08_speed.ipynb

    Returns:
        str: ``engine``.
    """
    if engine not in ENGINES:
        raise ValueError(f"AudioNet: engine must be one of {ENGINES}, got {engine!r}")
    if engine == "fast":
        for layer in model.lstm:
            check_fast_cell(layer.cell)
        model.frontend_plan = frontend_receptive_field(model.inDim, model.convLayerNum,
                                                       model.convKernelSize)
    for layer in model.lstm:
        layer.__class__ = FastLstmLayer if engine == "fast" else LstmLayer
    return engine


def _switch(model, name: str) -> bool:
    return bool(getattr(model, name, True))


def fast_frontend(model, frames: torch.Tensor) -> torch.Tensor:
    """:meth:`AudioNet.frontend` computed faster: ``M × D`` frames → ``M × F`` features.

    As matrix products with a hand-written backward pass (:func:`frontend_gemm`) unless the
    frames need a gradient or ``model.gemm_frontend`` is ``False``; then with the modules, ReLU
    and max pooling fused by :func:`relu_max_pool2` (unless ``model.fast_pool`` is ``False``).

    Chapter: chapters/08_speed.ipynb
    """
    if _switch(model, "gemm_frontend") and not frames.requires_grad:
        return frontend_gemm(frames, model.frontend_plan, model.conv_blocks())
    if not _switch(model, "fast_pool"):
        return model.frontend(frames)
    y = model.avgpool(frames.unsqueeze(1))
    for conv in model.conv_blocks():
        y = relu_max_pool2(conv(y))  # = maxpool(relu(conv(y))), the same numbers
    return y.flatten(1)


def fast_forward(model, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """:meth:`AudioNet.forward` on the fast engine (checked input, ``lengths`` a LongTensor).

    Chapter: chapters/08_speed.ipynb
    """
    n, steps = x.shape[0], int(lengths.max())
    x = x[:, :steps]
    mask = torch.arange(steps, device=x.device).view(1, steps) < lengths.view(n, 1)
    feats = fast_frontend(model, x[mask])  # only the valid frames
    seq = x.new_zeros(n, steps, model.feature_size).index_put((mask,), feats)
    layers = model.lstm
    if (_switch(model, "wavefront_lstm") and len(layers) >= 2
            and all(layer.fast and layer.fused for layer in layers)):
        return model.fc(F.relu(lstm_stack_last(layers, seq, lengths)))
    h = seq
    for layer in layers[:-1]:
        h, _ = layer(h, lengths)
    h, _ = layers[-1](h, lengths, last_only=True)
    return model.fc(F.relu(h))
