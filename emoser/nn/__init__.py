"""emoser.nn: the model, written by hand: the LSTM cell and layer, and AudioNet.

Its fast paths (same function, faster) are in :mod:`emoser.nn.kernels`.

Chapter: chapters/03_lstm_cell.ipynb
"""
from . import kernels
from .audionet import AudioNet, describe_shapes, min_frame_length
from .kernels import FastLstmLayer, fast_steps, relu_max_pool2
from .lstm import (
    LstmCell,
    LstmLayer,
    copy_to_torch_lstm,
    copy_to_torch_lstm_cell,
    from_torch,
    torch_gate_weights,
)

__all__ = [
    "kernels", "LstmCell", "LstmLayer", "FastLstmLayer", "fast_steps", "torch_gate_weights",
    "copy_to_torch_lstm", "copy_to_torch_lstm_cell", "from_torch", "AudioNet", "min_frame_length",
    "describe_shapes", "relu_max_pool2",
]
