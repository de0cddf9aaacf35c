"""A faithful re-implementation of the original exercise's code, defects included.

This module exists for two reasons: the speed benchmark (``benchmarks/training_speed.py``)
needs the original as a baseline, and the chapter on what went wrong shows each defect at
work next to its fix in emoser. **Do not use it for real work**: use
:class:`emoser.nn.AudioNet`, :mod:`emoser.prep` and :func:`emoser.training.fit`.

The model keeps the original's names (``inputSize``, ``convLayerNum`` ...) and its defects:

* float64 throughout; the zero initial LSTM state is created on the CPU in float64 on every
  call, whatever the input's device and dtype (the original wrapped it in the long-deprecated
  ``torch.autograd.Variable``; a plain tensor behaves the same today);
* each sequence's last valid step is picked with a Python loop over the batch;
* one and the same Conv1d (64 -> 64, hard-coded) is applied ``convLayerNum - 1`` times;
* the LSTM hidden size (64) is hard-coded and ``lstmLayerNum`` is ignored (always two layers);
* the flattened feature size comes from a hand formula (:func:`original_feature_size`);
* padded frames go through the CNN and the LSTM.

The pipeline defects are switchable flags of :func:`original_prepare` and
:func:`original_train`; each flag's default reproduces the original, and its docstring says
what emoser does instead.

Chapter: chapters/09_what_went_wrong.ipynb
"""

from .model import (
    HIDDEN,
    OriginalAudioNet,
    OriginalLSTMCell,
    OriginalLSTMLayer,
    last_step_gather,
    last_step_loop,
    original_feature_size,
)
from .pipeline import (
    OriginalData,
    original_evaluate,
    original_frames,
    original_prepare,
    original_train,
)

__all__ = [
    "HIDDEN", "OriginalLSTMCell", "OriginalLSTMLayer", "OriginalAudioNet", "original_feature_size",
    "last_step_loop", "last_step_gather", "original_frames", "OriginalData", "original_prepare",
    "original_train", "original_evaluate",
]
