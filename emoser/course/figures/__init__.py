"""Every figure of the book, in one place: signals (:mod:`.signals`), results (:mod:`.results`)
and diagrams (:mod:`.diagrams`).

Chapter: chapters/06_training.ipynb
"""
from .diagrams import draw_audionet, draw_framing, draw_lstm_cell, draw_lstm_layer
from .results import plot_confusion, plot_defect_curves, plot_history, plot_probabilities
from .signals import plot_class_histograms, plot_frames, plot_gates, plot_waveform_and_spectrogram

__all__ = ["plot_history", "plot_confusion", "plot_defect_curves", "plot_probabilities",
           "plot_waveform_and_spectrogram", "plot_frames", "plot_class_histograms", "plot_gates",
           "draw_framing", "draw_lstm_cell", "draw_lstm_layer", "draw_audionet"]
