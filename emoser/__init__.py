"""emoser: speech emotion recognition from raw waveforms, the companion package of the course.

The package mirrors the book: each module belongs to the chapters that teach it.

========================  ================================================
module                    chapter
========================  ================================================
``emoser.data``           01 The data (finding, loading, downloading TESS)
``emoser.frames``         02 Normalizing and framing
``emoser.lstm``           03 The LSTM cell, 04 The LSTM layer
``emoser.model``          05 AudioNet
``emoser.train``          06 Training, 07 Evaluation
``emoser.splits``         02, 10 (stratified, speaker and word-disjoint splits)
``emoser.plots``          every chapter's figures
``emoser.original``       08 Speed, 09 What went wrong (the original, defects included)
``emoser.notebook``       every chapter's setup cell
``emoser.explore``        01, 02 (per-utterance statistics, padding measurements)
``emoser.inspect_tools``  03-05 (gate traces, parameter tables, timings)
``emoser.experiments``    06, 07, 10, 11 (the course's protocol for any seed)
``emoser.ablation``       09 What went wrong (each defect switched on alone)
``emoser.voice``          12 Your own recording (command line, eSpeak NG voice, upload)
========================  ================================================

A chapter needs one import: ``import emoser``; the submodules below are loaded with it.
"""

__version__ = "0.1.0"

from . import data, frames, lstm, model, notebook, original, plots, splits, train, voice  # noqa: E402
from . import ablation, experiments, explore, inspect_tools  # noqa: E402
from .frames import FrameDataset, Normalizer, collate_frames, frame_signal, ms_to_samples  # noqa: E402
from .lstm import LstmCell, LstmLayer  # noqa: E402
from .model import AudioNet  # noqa: E402
from .train import device, evaluate, fit, load_checkpoint, save_checkpoint, set_seed  # noqa: E402

__all__ = [
    "__version__",
    "data", "frames", "lstm", "model", "notebook", "original", "plots", "splits", "train", "voice",
    "ablation", "experiments", "explore", "inspect_tools",
    "FrameDataset", "Normalizer", "collate_frames", "frame_signal", "ms_to_samples",
    "LstmCell", "LstmLayer", "AudioNet",
    "device", "evaluate", "fit", "load_checkpoint", "save_checkpoint", "set_seed",
]
