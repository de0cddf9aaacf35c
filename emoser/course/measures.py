"""Measuring a data set before modelling it: per-utterance statistics, per-class summaries,
one-number baselines, padding costs, and acoustic statistics per speaker and emotion.

Chapter: chapters/01_data.ipynb (statistics), chapters/02_framing.ipynb (padding),
chapters/10_speaker_independent.ipynb (acoustics per speaker).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..common import as_numpy
from ..experiments.baselines import median_pitch

__all__ = ["utterance_stats", "describe_by_class", "threshold_accuracy", "padding_fraction",
           "spectral_centroid", "group_means"]


def utterance_stats(waves: Sequence, rate: int, *, pitch: bool = True, fmin: float = 80.0,
                    fmax: float = 600.0, frame_length: int = 2048,
                    floor_db: float = 30.0) -> dict[str, np.ndarray]:
    """Simple descriptive numbers for every waveform: duration, loudness and pitch.

    * ``duration_s``: number of samples / ``rate``;
    * ``rms``: root mean square amplitude over the whole waveform, and ``rms_db`` the same in
      dB relative to full scale (``20·log10(rms)``; 0 dB is a full-scale square wave);
    * ``f0_hz`` (only with ``pitch=True``): median fundamental frequency estimated with YIN
      (:func:`librosa.yin`) over the frames whose energy is within ``floor_db`` dB of the
      loudest frame (pauses and silence would otherwise give meaningless estimates).

    Args:
        waves (sequence of 1-D arrays): the waveforms.
        rate (int): sampling rate in Hz.
        pitch (bool): also estimate ``f0_hz`` (about 10 ms of computation per second of audio).
        fmin, fmax (float): pitch search range in Hz (default 80-600 Hz: adult voices).
        frame_length (int): YIN analysis window in samples (default 2048, 84 ms at 24414 Hz).
        floor_db (float): frames more than this below the loudest frame are ignored for pitch.

    Returns:
        dict[str, np.ndarray]: one float64 array per statistic, one entry per waveform.

    Raises:
        ValueError: an empty waveform, or no waveforms.

    Chapter: chapters/01_data.ipynb
    """
    waves = [as_numpy(w).astype(np.float64).ravel() for w in waves]
    if not waves:
        raise ValueError("utterance_stats needs at least one waveform")
    for k, w in enumerate(waves):
        if w.size == 0:
            raise ValueError(f"waveform {k} is empty")
    duration = np.array([w.size / rate for w in waves])
    rms = np.array([np.sqrt(np.mean(np.square(w))) for w in waves])
    with np.errstate(divide="ignore"):
        rms_db = 20 * np.log10(rms)
    out = {"duration_s": duration, "rms": rms, "rms_db": rms_db}
    if pitch:
        out["f0_hz"] = median_pitch(waves, rate, fmin=fmin, fmax=fmax,
                                    frame_length=frame_length, floor_db=floor_db)
    return out


def describe_by_class(stats: Mapping[str, np.ndarray], labels, classes: Sequence[str],
                      formats: Mapping[str, str] | None = None) -> str:
    """A small text table: mean ± standard deviation, median and range of each statistic per class.

    Args:
        stats (Mapping[str, array]): ``{name: one value per example}``, e.g. from
            :func:`utterance_stats`.
        labels (array of int): class index of every example.
        classes (sequence of str): class names (``classes[i]`` is label ``i``).
        formats (Mapping[str, str] | None): format spec per statistic (default ``".3g"``).

    Returns:
        str: one line per (statistic, class).

    Chapter: chapters/01_data.ipynb
    """
    labels = as_numpy(labels)
    formats = dict(formats or {})
    width = max(len(n) for n in stats)
    cw = max(len(c) for c in classes)
    lines = [f"{'statistic':<{width}}  {'class':<{cw}}  {'n':>4}  "
             "mean ± std  |  median  |  min – max"]
    for name, values in stats.items():
        values = as_numpy(values).astype(np.float64)
        if values.shape != labels.shape:
            raise ValueError(f"statistic {name!r} has {values.size} values "
                             f"for {labels.size} labels")
        f = formats.get(name, ".3g")
        for i, cls in enumerate(classes):
            v = values[(labels == i) & np.isfinite(values)]
            if v.size == 0:
                lines.append(f"{name:<{width}}  {cls:<{cw}}  {0:>4}  -")
                continue
            lines.append(f"{name:<{width}}  {cls:<{cw}}  {v.size:>4}  "
                         f"{v.mean():{f}} ± {v.std():{f}}  |  {np.median(v):{f}}  |  "
                         f"{v.min():{f}} – {v.max():{f}}")
    return "\n".join(lines)


def threshold_accuracy(values, labels) -> tuple[float, float, int]:
    """Best accuracy of a one-number classifier: "class 1 if value > t" (or "< t") for two classes.

    Tries every threshold between consecutive distinct values and both directions. The threshold
    is chosen on the very examples it is scored on, so the accuracy is optimistic: an upper
    bound of what that one number can do on these examples, not a test result.

    Args:
        values (array of float): one number per example.
        labels (array of int): 0 or 1 per example.

    Returns:
        tuple: ``(threshold, accuracy, above)``; ``above`` is the label predicted for values
        above the threshold.

    Raises:
        ValueError: labels other than 0/1, a length mismatch, or no examples.

    Chapter: chapters/01_data.ipynb
    """
    values = as_numpy(values).astype(np.float64).ravel()
    labels = as_numpy(labels).astype(np.int64).ravel()
    if values.size == 0 or values.shape != labels.shape:
        raise ValueError(f"need as many labels as values, got {labels.size} and {values.size}")
    if not set(np.unique(labels).tolist()) <= {0, 1}:
        raise ValueError("threshold_accuracy handles two classes labelled 0 and 1")
    order = np.argsort(values, kind="stable")
    v, y = values[order], labels[order]
    n = v.size
    # predicting 1 above position k (k = number of examples below the threshold)
    ones_below = np.concatenate([[0], np.cumsum(y)])
    zeros_below = np.arange(n + 1) - ones_below
    ones_above = ones_below[-1] - ones_below
    correct_up = zeros_below + ones_above          # below -> 0, above -> 1
    correct_down = n - correct_up                  # below -> 1, above -> 0
    valid = np.ones(n + 1, dtype=bool)             # cut only between distinct values
    valid[1:n] = v[1:] > v[:-1]
    best_up = np.where(valid, correct_up, -1)
    best_down = np.where(valid, correct_down, -1)
    k_up, k_down = int(np.argmax(best_up)), int(np.argmax(best_down))
    if best_up[k_up] >= best_down[k_down]:
        k, above, correct = k_up, 1, best_up[k_up]
    else:
        k, above, correct = k_down, 0, best_down[k_down]
    if k == 0:
        threshold = v[0] - 1.0
    elif k == n:
        threshold = v[-1] + 1.0
    else:
        threshold = (v[k - 1] + v[k]) / 2
    return float(threshold), float(correct / n), above


def padding_fraction(lengths, batches: Sequence[Sequence[int]] | None = None) -> float:
    """Fraction of the padded tensors that is padding, when every batch is padded to its longest.

    Args:
        lengths (array of int): number of frames of every sequence.
        batches (sequence of index sequences | None): how the sequences are grouped into
            batches; None pads all of them to the longest of the whole set (one big "batch").

    Returns:
        float: padded frames / all frames in the padded batches (0 = no padding at all).

    Raises:
        ValueError: no sequences, a length below 1, or an empty batch.

    Example:
        >>> padding_fraction([2, 4])                  # 2 + 4 real frames out of 2 x 4
        0.25
        >>> padding_fraction([2, 4], [[0], [1]])      # each alone: no padding
        0.0

    Chapter: chapters/02_framing.ipynb
    """
    lengths = as_numpy(lengths).astype(np.int64).ravel()
    if lengths.size == 0 or lengths.min() < 1:
        raise ValueError("padding_fraction needs at least one sequence, each with >= 1 frame")
    if batches is None:
        batches = [np.arange(lengths.size)]
    real = padded = 0
    for b in batches:
        idx = np.asarray(b, dtype=np.int64)
        if idx.size == 0:
            raise ValueError("padding_fraction got an empty batch")
        real += int(lengths[idx].sum())
        padded += int(lengths[idx].max()) * idx.size
    return 1.0 - real / padded


def spectral_centroid(waves: Sequence, rate: int) -> np.ndarray:
    """Spectral centroid of each waveform: the power-weighted mean frequency of its spectrum.

    ``sum_k f_k |X_k|² / sum_k |X_k|²`` over the one-sided spectrum of the whole waveform
    (mean removed). A brighter, more tense voice has a higher centroid.

    Args:
        waves (sequence of 1-D arrays): the waveforms.
        rate (int): sampling rate in Hz.

    Returns:
        np.ndarray: one centroid in Hz per waveform (NaN for a silent one).

    Raises:
        ValueError: no waveforms, or an empty one.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    from scipy.fft import next_fast_len

    if len(waves) == 0:
        raise ValueError("spectral_centroid needs at least one waveform")
    out = np.empty(len(waves))
    for k, w in enumerate(waves):
        w = np.asarray(w, dtype=np.float64).ravel()
        if w.size == 0:
            raise ValueError(f"waveform {k} is empty")
        n = next_fast_len(w.size, real=True)  # zero padding to a fast length: same centroid
        power = np.abs(np.fft.rfft(w - w.mean(), n=n)) ** 2
        freqs = np.fft.rfftfreq(n, d=1.0 / rate)
        total = power.sum()
        out[k] = float((freqs * power).sum() / total) if total > 0 else np.nan
    return out


def group_means(stats: Mapping[str, Sequence[float]], groups: Sequence) -> dict:
    """Mean and standard deviation of each statistic within each group.

    Args:
        stats (Mapping[str, array]): ``{name: one value per example}``.
        groups (sequence): one hashable group key per example, e.g. ``("YAF", "happy")``.

    Returns:
        dict: ``{group: {name: (mean, std, n)}}``, groups in order of first appearance;
        NaN values are ignored.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    keys = list(groups)
    order = list(dict.fromkeys(keys))
    out = {}
    for g in order:
        mask = np.array([k == g for k in keys])
        row = {}
        for name, values in stats.items():
            values = np.asarray(values, dtype=np.float64)
            if values.shape != mask.shape:
                raise ValueError(f"statistic {name!r} has {values.size} values "
                                 f"for {mask.size} examples")
            v = values[mask & np.isfinite(values)]
            row[name] = (float(v.mean()) if v.size else np.nan,
                         float(v.std()) if v.size else np.nan, int(v.size))
        out[g] = row
    return out
