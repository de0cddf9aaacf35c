"""emoser.nn.kernels: the fast paths of AudioNet, which compute the same function faster.

* :mod:`~emoser.nn.kernels.frontend`: the CNN front-end as matrix products
  (:mod:`~emoser.nn.kernels.plan`: which samples it needs);
* :mod:`~emoser.nn.kernels.recurrence`: the LSTM recurrence (one layer, or a wavefront of
  layers) with a hand-written backward pass through time;
* :mod:`~emoser.nn.kernels.layer`: :class:`FastLstmLayer`, the LSTM layer's fast path;
* :mod:`~emoser.nn.kernels.pool`: ReLU and max pooling in one step;
* :mod:`~emoser.nn.kernels.engine`: AudioNet's ``engine="fast"``, which uses all of them;
* :mod:`~emoser.nn.kernels.native`: fused C kernels for the loops of both, compiled on first
  use (``EMOSER_NATIVE=0`` switches them off);
* :mod:`~emoser.nn.kernels.dispatch`: how Python calls them.

Nothing here is needed to understand the model (chapters 3-5 teach it with the literal
modules); chapter 8 switches these paths on and proves they compute the same function.

Chapter: chapters/08_speed.ipynb
"""
from . import native
from .engine import ENGINES, fast_forward, fast_frontend, use_engine
from .frontend import CHUNK_ELEMENTS, frontend_gemm
from .layer import FastLstmLayer, check_fast_cell, fast_steps
from .plan import FrontendPlan, frontend_receptive_field, needed_lengths
from .pool import relu_max_pool2
from .recurrence import lstm_recurrence, lstm_stack_last, stacked_weights

__all__ = ["native", "CHUNK_ELEMENTS", "FrontendPlan", "frontend_gemm", "frontend_receptive_field",
           "needed_lengths", "lstm_recurrence", "lstm_stack_last", "stacked_weights",
           "FastLstmLayer", "check_fast_cell", "fast_steps", "relu_max_pool2", "ENGINES",
           "use_engine", "fast_forward", "fast_frontend"]
