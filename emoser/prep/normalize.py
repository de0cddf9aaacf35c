"""Normalization: one scale for all waveforms, each utterance by itself, or each speaker.

The statistics come from the training waveforms only, so nothing of the test set leaks
into training (chapter 9 measures what the leak did in the original).
:func:`per_speaker_standardized` does the per-speaker standardization for feature rows (the
classic baselines of chapter 10).

Chapter: chapters/02_framing.ipynb
"""
from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..common import as_numpy
from .splits import record_field

__all__ = ["Normalizer", "wave_list", "PerUtteranceNormalizer", "NORMALIZATIONS", "make_normalizer",
           "speaker_normalized", "per_speaker_standardized"]

#: The normalizations :func:`make_normalizer` knows.
NORMALIZATIONS = ("global", "per_utterance", "none")


@dataclass(frozen=True)
class Normalizer:
    """Scalar standardization ``(wave - mean) / std``.

    Fit it on the training waveforms only (:meth:`fit`), then apply the same
    statistics to every set: fitting on all data leaks the test set.

    Chapter: chapters/02_framing.ipynb

    Attributes:
        mean (float): Mean of all training samples.
        std (float): Standard deviation (population, ``ddof=0``) of all training samples.
    """

    mean: float
    std: float

    def __post_init__(self):
        if not (math.isfinite(self.mean) and math.isfinite(self.std)) or self.std <= 0:
            raise ValueError(f"Normalizer needs a finite mean and a positive finite std, got "
                             f"mean={self.mean!r}, std={self.std!r}")

    @classmethod
    def fit(cls, waves):
        """Compute the scalar mean and std over the concatenation of all waveforms.

        Chapter: chapters/02_framing.ipynb

        Args:
            waves: A list of 1-D waveforms (arrays or tensors), or one 1-D waveform.
                Pass the training waveforms only.

        Returns:
            Normalizer: The fitted statistics (accumulated in float64).

        Raises:
            ValueError: If there are no samples at all, or all samples are equal (std 0).
        """
        arrays = [as_numpy(w).astype(np.float64).ravel() for w in wave_list(waves)]
        count = sum(a.size for a in arrays)  # M: all training samples together
        if count == 0:
            raise ValueError("Normalizer.fit got no samples (empty list or only empty waveforms)")
        mean = sum(float(a.sum()) for a in arrays) / count
        std = math.sqrt(sum(float(np.square(a - mean).sum()) for a in arrays) / count)
        if std == 0:
            raise ValueError("Normalizer.fit: all samples are equal (std is 0), cannot standardize")
        return cls(mean=mean, std=std)

    def apply(self, wave):
        """Standardize one waveform (array or tensor) with the fitted statistics; floating
        inputs keep their dtype, integer ones become float32.

        Chapter: chapters/02_framing.ipynb
        """
        if isinstance(wave, torch.Tensor):
            wave = wave if wave.is_floating_point() else wave.to(torch.float32)
            return (wave - self.mean) / self.std
        wave = np.asarray(wave)
        dtype = wave.dtype if np.issubdtype(wave.dtype, np.floating) else np.float32
        return ((wave.astype(np.float64) - self.mean) / self.std).astype(dtype)

    __call__ = apply

    def apply_all(self, waves):
        """Standardize every waveform of a list, in order.

        Chapter: chapters/02_framing.ipynb
        """
        return [self.apply(w) for w in waves]


def wave_list(waves) -> list:
    """``waves`` as a list of waveforms: one 1-D array or tensor becomes a list of one.

    Chapter: chapters/02_framing.ipynb
    """
    if isinstance(waves, (np.ndarray, torch.Tensor)) and as_numpy(waves).ndim == 1:
        return [waves]
    return list(waves)


@dataclass(frozen=True)
class PerUtteranceNormalizer:
    """Standardize every waveform with its own mean and standard deviation.

    Needs no training statistics at all, so it cannot leak anything from the test
    set; it also removes loudness differences between recordings (which may or
    may not carry emotion).

    Chapter: chapters/10_speaker_independent.ipynb
    """

    eps: float = 1e-8

    def apply(self, wave):
        """Standardize one waveform by its own statistics (float64 inside, dtype kept).

        Chapter: chapters/10_speaker_independent.ipynb
        """
        w = np.asarray(wave)
        dtype = w.dtype if np.issubdtype(w.dtype, np.floating) else np.float32
        w64 = w.astype(np.float64)
        return ((w64 - w64.mean()) / max(float(w64.std()), self.eps)).astype(dtype)

    __call__ = apply


def make_normalizer(mode: str, train_waves: Sequence) -> Normalizer | PerUtteranceNormalizer | None:
    """Build the normalizer for a run.

    Args:
        mode (str): ``"global"``: one scalar mean and std from the training waveforms
            only (:class:`~emoser.frames.Normalizer`); ``"per_utterance"``: each
            waveform by its own statistics; ``"none"``: no normalization.
        train_waves (sequence of arrays): the training waveforms (used by ``"global"``).

    Returns:
        Normalizer | PerUtteranceNormalizer | None

    Chapter: chapters/06_training.ipynb
    """
    if mode == "global":
        return Normalizer.fit(list(train_waves))
    if mode == "per_utterance":
        return PerUtteranceNormalizer()
    if mode == "none":
        return None
    raise ValueError(f"normalization must be one of {', '.join(NORMALIZATIONS)}, got {mode!r}")


def speaker_normalized(data, speakers: Sequence[str] | None = None):
    """A copy of ``data`` in which every speaker's waveforms are standardized with that
    speaker's statistics.

    For each speaker, one scalar mean and standard deviation are computed over the
    concatenation of all of that speaker's waveforms (a :class:`emoser.frames.Normalizer`)
    and applied to them. A loud and a quiet voice end up at the same average level, while
    the differences *within* a voice (a happy utterance louder than a sad one) stay.

    No label is used, but the statistics of a test speaker come from that speaker's
    recordings: in practice this needs a batch of (unlabelled) recordings of every new
    voice, and their mix of emotions shifts the statistics a little.

    Args:
        data: a :class:`emoser.data.TessData` (or any object with ``waves`` and
            ``records`` with ``speaker``; it is copied with :func:`copy.copy`).
        speakers (sequence of str | None): normalize only these speakers (default all).

    Returns:
        the same type as ``data``, with new ``waves`` (float32) and an extra attribute
        ``speaker_stats``: ``{speaker: Normalizer}``.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    spk = record_field(data, "speaker")
    chosen = sorted(set(spk.tolist())) if speakers is None else list(speakers)
    missing = [s for s in chosen if s not in set(spk.tolist())]
    if missing:
        raise ValueError(f"speakers {missing} are not in the data "
                         f"(present: {sorted(set(spk.tolist()))})")
    waves = list(data.waves)
    stats = {}
    for s in chosen:
        idx = np.flatnonzero(spk == s)
        norm = Normalizer.fit([waves[i] for i in idx])
        stats[s] = norm
        for i in idx:
            waves[i] = np.asarray(norm.apply(np.asarray(waves[i], dtype=np.float64)),
                                  dtype=np.float32)
    out = copy.copy(data)
    out.waves = waves
    out.speaker_stats = stats
    return out


def per_speaker_standardized(features: np.ndarray, speakers, train_idx,
                             test_idx) -> np.ndarray:
    """``features`` with every speaker's rows standardized by that speaker's own statistics.

    Per column: a speaker's training rows by the mean and standard deviation of that speaker's
    training rows, its test rows by those of its test rows (no label used), as
    :func:`emoser.experiments.retest_per_speaker` does with waveforms. NaN is ignored and
    kept; a constant column is only centred. Rows in neither set become NaN.

    Chapter: chapters/10_speaker_independent.ipynb

    Returns:
        np.ndarray: float64, the shape of ``features``.
    """
    x = np.asarray(features, dtype=np.float64)
    speakers = np.asarray(speakers)
    train_idx, test_idx = np.asarray(train_idx, dtype=int), np.asarray(test_idx, dtype=int)
    if x.ndim != 2 or speakers.shape != (len(x),):
        raise ValueError(f"per_speaker_standardized needs an N × d feature matrix and N speakers,"
                         f" got features {x.shape} and speakers {speakers.shape}")
    if np.intersect1d(train_idx, test_idx).size:
        raise ValueError("per_speaker_standardized: training and test rows overlap")
    out = np.full_like(x, np.nan)
    for rows in (train_idx, test_idx):
        for s in dict.fromkeys(speakers[rows].tolist()):
            own = rows[speakers[rows] == s]
            with warnings.catch_warnings():  # an all-NaN column stays NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                mean, std = np.nanmean(x[own], axis=0), np.nanstd(x[own], axis=0)
            out[own] = (x[own] - mean) / np.where(std > 0, std, 1.0)
    return out
