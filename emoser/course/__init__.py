"""emoser.course: what the chapters use to show things (nothing here trains a model).

* :mod:`~emoser.course.notebook`: the setup cell, glue, audio players, printable paths;
* :mod:`~emoser.course.colab`: Colab only, the TESS archive kept on Google Drive;
* :mod:`~emoser.course.figures`: every figure and diagram of the book;
* :mod:`~emoser.course.exercises`: the checkers of the coding exercises;
* :mod:`~emoser.course.measures`: statistics of a data set, one-number baselines;
* :mod:`~emoser.course.inspection`: gate traces, parameter counts, errors, timings;
* :mod:`~emoser.course.ladder`: the committed cross-speaker ablation ladder (chapter 10);
* :mod:`~emoser.course.reproduce`: does a re-run give the numbers the stored chapter quotes?
* :mod:`~emoser.course.voice`: the command line from a notebook, a synthetic voice, uploads.

Chapter: chapters/intro.md
"""
from ..common import format_table
from . import exercises, ladder
from .colab import keep_download_on_drive
from .figures import (
    draw_audionet,
    draw_framing,
    draw_lstm_cell,
    draw_lstm_layer,
    plot_class_histograms,
    plot_confusion,
    plot_defect_curves,
    plot_frames,
    plot_gates,
    plot_history,
    plot_probabilities,
    plot_waveform_and_spectrogram,
)
from .inspection import (
    GATE_NAMES,
    autograd_saved_bytes,
    compare_timings,
    frame_features,
    gate_trace,
    max_abs_error,
    parameter_table,
    time_call,
)
from .measures import (
    describe_by_class,
    group_means,
    padding_fraction,
    spectral_centroid,
    threshold_accuracy,
    utterance_stats,
)
from .notebook import (
    EMBEDDABLE_TESS,
    MAX_EMBEDDED,
    TESS_CREDIT,
    colab_setup_cell,
    embeddable_checksums,
    glue,
    in_colab,
    listen,
    play_recording,
    play_recordings,
    redact_paths,
    setup,
)
from .reproduce import check_reproduced, stored_glue
from .sweep import Expected, expected
from .voice import (
    SPEAK_PROFILES,
    CliRun,
    Uploads,
    parse_prediction,
    record_or_upload,
    run_cli,
    speak,
    to_wav,
)

__all__ = [
    "Expected", "expected", "check_reproduced", "stored_glue",
    "format_table", "plot_history", "plot_confusion", "plot_waveform_and_spectrogram",
    "plot_frames", "plot_class_histograms", "plot_gates", "plot_defect_curves",
    "plot_probabilities", "draw_framing", "draw_lstm_cell", "draw_lstm_layer", "draw_audionet",
    "exercises", "ladder", "GATE_NAMES", "frame_features", "gate_trace", "parameter_table",
    "max_abs_error", "time_call", "compare_timings", "autograd_saved_bytes", "utterance_stats",
    "describe_by_class", "threshold_accuracy", "padding_fraction", "spectral_centroid",
    "group_means", "setup", "glue", "listen", "play_recording", "play_recordings",
    "embeddable_checksums",
    "EMBEDDABLE_TESS", "MAX_EMBEDDED", "TESS_CREDIT", "colab_setup_cell", "in_colab",
    "redact_paths",
    "CliRun", "run_cli", "parse_prediction", "SPEAK_PROFILES", "speak", "Uploads",
    "record_or_upload", "to_wav", "keep_download_on_drive",
]
