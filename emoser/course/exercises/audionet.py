"""Checkers of chapter 5: frame lengths through AudioNet's CNN; the sharing sweep's results.

Chapter: chapters/05_audionet.ipynb
"""
from __future__ import annotations

import json

import torch

from ...nn import AudioNet, describe_shapes
from .verdict import UNFILLED, Verdict, call, unfilled

__all__ = ["CNN_STAGES", "model_cnn_lengths", "check_cnn_lengths", "SHARING_FILE",
           "sharing_results"]


# --- chapter 5: shapes through the CNN ----------------------------------------------------------

#: The stages whose frame length ``cnn_lengths`` returns (the CNN of AudioNet, 3 blocks).
CNN_STAGES = ("frame", "average pooling", "conv1", "max pooling 1", "conv2", "max pooling 2",
              "conv3", "max pooling 3")


def model_cnn_lengths(d: int, kernel: int = 5, blocks: int = 3) -> list[int]:
    """The frame length after every stage of a real AudioNet's CNN, measured with one frame.

    Chapter: chapters/05_audionet.ipynb
    """
    net = AudioNet(inDim=d, convKernelSize=kernel, convLayerNum=blocks)
    stages = describe_shapes(net, torch.zeros(1, 1, d), torch.tensor([1]))
    cnn = stages[1:next(k for k, (name, _) in enumerate(stages) if name.startswith("flatten"))]
    return [shape[-1] for _, shape in cnn]


def check_cnn_lengths(fn) -> Verdict:
    """Check ``fn(D) -> [D, after avg pool, conv1, pool1, conv2, pool2, conv3, pool3]``.

    The reference is measured: the shapes :func:`emoser.nn.describe_shapes` reports for a real
    ``AudioNet(inDim=D)`` (kernel 5, stride 2, 3 blocks).

    Chapter: chapters/05_audionet.ipynb
    """
    for d in (500, 732, 960, 254):
        expected = model_cnn_lengths(d)
        got, failed = call(fn, d)
        if failed is not None:
            return failed
        if unfilled(got):
            return UNFILLED
        try:
            got = [int(v) for v in got]
        except (TypeError, ValueError):
            return Verdict(False, f"for D={d} return a list of {len(expected)} integers, "
                                  f"got {got!r}")
        if len(got) != len(expected):
            return Verdict(False, f"for D={d} you give {len(got)} lengths, expected "
                                  f"{len(expected)}: one per stage {', '.join(CNN_STAGES)}")
        for stage, (a, e, prev) in enumerate(zip(got, expected, [None] + expected)):
            if a == e:
                continue
            name = CNN_STAGES[stage]
            if name.startswith("conv"):
                rule = (f"a convolution of kernel 5, stride 2 gives floor(({prev} - 5) / 2) + 1"
                        f" = {e}" + (" (you dropped the + 1)" if a == (prev - 5) // 2 else ""))
            elif prev is not None:
                rule = f"pooling 2/2 halves and rounds down: floor({prev} / 2) = {e}"
            else:
                rule = "the first entry is the frame length D itself"
            return Verdict(False, f"for D={d}, after {name} you have {a}, the model has {e}: "
                                  f"{rule}")
    return Verdict(True, "your lengths equal the ones measured in AudioNet for D = 500, 732, "
                         "960 and 254")


# --- chapter 5, exercise 3: shared or separate convolutions, measured --------------------------

#: Written by ``benchmarks/sharing_sweep.py`` (chapter 7's protocol, both variants, same seeds).
SHARING_FILE = "results/sharing-sweep.json"


def sharing_results() -> dict:
    """The sharing sweep: ``{variant: {"parameters": n, "accuracy": {seed: a}, "test_loss": ...}}``.

    ``variant`` is ``"shared"`` or ``"unshared"`` (``convOutNum=32``); read from the package's
    ``results/sharing-sweep.json``, which ``benchmarks/sharing_sweep.py`` writes.

    Chapter: chapters/05_audionet.ipynb
    """
    from importlib import resources

    data = json.loads(resources.files("emoser.course").joinpath(SHARING_FILE).read_text())
    return {name: {"parameters": int(v["parameters"]),
                   "accuracy": {int(r["seed"]): float(r["accuracy"]) for r in v["seeds"]},
                   "test_loss": {int(r["seed"]): float(r["test_loss"]) for r in v["seeds"]}}
            for name, v in data["variants"].items()}
