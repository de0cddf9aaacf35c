"""Checkers for the coding exercises: each says right or wrong, and when wrong, where and why.

A checker takes the reader's function, runs it on small cases whose answers the package knows,
and returns a :class:`Verdict` that prints as ``right: ...`` or ``wrong: ...`` with the first
case that differs and, where a typical slip explains the difference, the slip. Checkers never
raise for a wrong answer (a chapter keeps running); :meth:`Verdict.require` turns a wrong
verdict into an ``AssertionError``.

* :mod:`.verdict`: the verdict and the helpers every checker shares;
* :mod:`.signals`: chapters 1-2 (loudness, frame counts, frames);
* :mod:`.lstm`: chapters 3-4 (one LSTM step, the last valid step);
* :mod:`.audionet`: chapter 5 (lengths through the CNN, the sharing sweep);
* :mod:`.training`: chapters 6-7 (clipping, the cosine schedule, macro-F1, mean and std).

Chapter: chapters/01_data.ipynb
"""
from .audionet import (
           CNN_STAGES,
           SHARING_FILE,
           check_cnn_lengths,
           model_cnn_lengths,
           sharing_results,
)
from .lstm import check_last_valid_step, check_lstm_step
from .signals import check_frame_count, check_frame_signal, check_rms_db
from .training import check_clip_gradients, check_cosine_lr, check_macro_f1, check_mean_std
from .verdict import Verdict

__all__ = ["Verdict", "check_rms_db", "check_frame_count", "check_frame_signal",
           "check_lstm_step", "check_last_valid_step", "check_cnn_lengths", "model_cnn_lengths",
           "CNN_STAGES", "SHARING_FILE", "sharing_results", "check_clip_gradients",
           "check_cosine_lr", "check_macro_f1", "check_mean_std"]
