"""emoser: speech emotion recognition from raw waveforms, the companion package of the course.

The folders show the layers; each imports only from the ones above it in this list:

========================  =====================================================================
``emoser.common``         the working rate, the frame length, tables, arrays, Colab detection
``emoser.data``           finding, checking, downloading and loading TESS (or its stand-in)
``emoser.prep``           normalizing, framing and splitting waveforms
``emoser.nn``             the hand-built LSTM and AudioNet; ``emoser.nn.kernels``: fast paths
``emoser.training``       seeds, devices, batches, the loop, the recipe, evaluation, checkpoints
``emoser.experiments``    whole runs (prepare → train_and_test), seeds, defects, the original
``emoser.cli``            ``python -m emoser train | predict | download | verify``
``emoser.course``         what the chapters use to show things: figures, tables, the setup cell
========================  =====================================================================

Which chapter teaches which module is written in each module's docstring (``Chapter: ...``);
the README's table is generated from those tags (``python tools/chapter_map.py``).

A chapter needs one import: ``import emoser``; the subpackages are loaded with it.
"""

__version__ = "0.1.0"

from . import cli, common, course, data, experiments, nn, prep, training  # noqa: E402
from .nn import AudioNet, LstmCell, LstmLayer  # noqa: E402
from .prep import FrameDataset, Normalizer, collate_frames, frame_signal, ms_to_samples  # noqa: E402
from .training import RECIPE, device, evaluate, fit, load_checkpoint, save_checkpoint, set_seed  # noqa: E402

__all__ = [
    "__version__", "cli", "common", "course", "data", "experiments", "nn", "prep", "training",
    "FrameDataset", "Normalizer", "collate_frames", "frame_signal", "ms_to_samples",
    "LstmCell", "LstmLayer", "AudioNet", "RECIPE",
    "device", "evaluate", "fit", "load_checkpoint", "save_checkpoint", "set_seed",
]
