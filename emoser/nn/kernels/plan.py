"""Which samples of a frame can reach AudioNet's features: the front-end's receptive field.

Chapter: chapters/13_under_the_hood.ipynb
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FrontendPlan", "frontend_receptive_field", "needed_lengths"]


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

    Chapter: chapters/13_under_the_hood.ipynb
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

    Chapter: chapters/13_under_the_hood.ipynb

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
        raise ValueError(f"a frame of {in_dim} samples is too short "
                         f"for {conv_layers} blocks of kernel {kernel}")
    outs, ins = needed_lengths(length, conv_layers, kernel)
    return FrontendPlan(in_dim, kernel, outs, ins, tuple(full), 2 * ins[0])


def needed_lengths(pooled: int, conv_layers: int, kernel: int) -> tuple[tuple, tuple]:
    """Conv outputs and input positions each block needs for ``pooled`` outputs of the last block.

    Worked backwards: max pooling 2/2 needs ``2·m`` conv outputs for ``m`` outputs, and a
    stride-2 convolution of kernel ``K`` with ``m`` outputs reads ``2(m - 1) + K`` inputs.

    Chapter: chapters/13_under_the_hood.ipynb

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
