"""Baselines on the network's own splits: what do we get without the LSTM, or without a network?

Four classifiers, each trained on the training recordings of a split and scored on its test
recordings -- the very indices :func:`~emoser.experiments.run_protocol` uses for the same seed
(or any given indices, e.g. one speaker against the other):

* ``pitch``: one number per recording, its median pitch (YIN over the loud frames, as chapter
  1 measures it), and a threshold chosen on the training recordings (a one-split decision tree);
* ``mfcc``: 40 MFCCs per analysis window, their mean and standard deviation over the recording
  (80 numbers), standardized on the training recordings, then logistic regression;
* ``pitch_level``: two numbers per recording, its median pitch and its loudness (RMS level in dB
  over the same loud frames), standardized, then logistic regression (any number of classes);
* ``pooled``: AudioNet without its LSTM (:class:`MeanPooledCnn`): the same CNN front-end, its
  features averaged over the valid frames, one linear layer; trained with the course's recipe.

With ``normalization="per_speaker"`` every speaker's features (or, for ``pooled``, waveforms) are
standardized with that speaker's own statistics, as chapter 10 does for the network.

Chapter: chapters/07_evaluation.ipynb
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..common import format_table
from ..nn.audionet import AudioNet, check_batch
from ..nn.kernels.engine import fast_frontend
from ..prep.normalize import per_speaker_standardized
from ..prep.splits import record_field, stratified_split
from ..training.recipe import RECIPE, Recipe
from .pipeline import prepare, train_and_test
from .seeds import SeedRuns, retest_per_speaker

__all__ = ["median_pitch", "loud_level", "mfcc_stats", "utterance_features", "pitch_classifier",
           "mfcc_classifier", "pitch_level_classifier", "MeanPooledCnn", "BaselineRun",
           "fit_and_score", "BASELINES", "CLASSIC_BASELINES", "BASELINE_NORMALIZATIONS",
           "run_baselines", "baseline_table"]

#: The baselines :func:`run_baselines` knows, by key, with the name a table shows.
BASELINES = {"pitch": "median pitch, one threshold",
             "mfcc": "40 MFCCs (mean, std), logistic regression",
             "pitch_level": "median pitch and loudness, logistic regression",
             "pooled": "AudioNet without LSTM (mean-pooled CNN)"}

#: The baselines without a network: scikit-learn on :func:`utterance_features`.
CLASSIC_BASELINES = ("pitch", "mfcc", "pitch_level")

#: How :func:`run_baselines` standardizes: the training rows' statistics for every recording
#: (``"global"``), or every speaker's own (``"per_speaker"``).
BASELINE_NORMALIZATIONS = ("global", "per_speaker")


# --------------------------------------------------------------------------- features
def _loud_frames(w, frame_length: int, floor_db: float):
    """``w`` (float64, padded to one window), its frame RMS and which frames are loud."""
    import librosa

    w = np.asarray(w, dtype=np.float64).ravel()
    if w.size < frame_length:
        w = np.pad(w, (0, frame_length - w.size))
    energy = librosa.feature.rms(y=w, frame_length=frame_length, hop_length=frame_length // 4,
                                 center=True)[0]
    with np.errstate(divide="ignore"):
        level = 20 * np.log10(np.maximum(energy, 1e-12) / max(energy.max(), 1e-12))
    return w, energy, level >= -floor_db


def median_pitch(waves: Sequence, rate: int, *, fmin: float = 80.0, fmax: float = 600.0,
                 frame_length: int = 2048, floor_db: float = 30.0) -> np.ndarray:
    """Median fundamental frequency (Hz) of every waveform, over its loud frames.

    YIN (:func:`librosa.yin`) in windows of ``frame_length`` samples, hop a quarter of that;
    frames more than ``floor_db`` below the loudest frame are ignored (pauses would give
    meaningless estimates). NaN when no frame is left.

    Chapter: chapters/01_data.ipynb

    Args:
        waves (sequence of 1-D arrays): the waveforms.
        rate (int): sampling rate in Hz.
        fmin, fmax (float): pitch search range in Hz (default 80-600 Hz: adult voices).
        frame_length (int): YIN analysis window in samples.
        floor_db (float): how far below the loudest frame a frame may be and still count.

    Returns:
        np.ndarray: one float64 per waveform.
    """
    import librosa

    f0 = np.full(len(waves), np.nan)
    for k, w in enumerate(waves):
        w, _, keep = _loud_frames(w, frame_length, floor_db)
        track = librosa.yin(w, fmin=fmin, fmax=fmax, sr=rate, frame_length=frame_length,
                            hop_length=frame_length // 4, center=True)
        keep = keep[: track.size]
        if keep.any():
            f0[k] = float(np.median(track[: keep.size][keep]))
    return f0


def loud_level(waves: Sequence, *, frame_length: int = 2048,
               floor_db: float = 30.0) -> np.ndarray:
    """Loudness of every waveform: its RMS level in dB (re full scale) over its loud frames.

    The frames :func:`median_pitch` reads (``frame_length`` samples, hop a quarter of that,
    at most ``floor_db`` below the loudest), so pauses do not lower it as they lower chapter
    1's whole-waveform ``rms_db``. NaN for a silent waveform.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    out = np.full(len(waves), np.nan)
    for k, w in enumerate(waves):
        _, energy, keep = _loud_frames(w, frame_length, floor_db)
        power = float(np.mean(np.square(energy[keep])))
        if power > 0:
            out[k] = 10 * np.log10(power)
    return out


def mfcc_stats(waves: Sequence, rate: int, n_mfcc: int = 40) -> np.ndarray:
    """Mean and standard deviation over time of ``n_mfcc`` MFCCs: ``N × 2·n_mfcc``.

    Chapter: chapters/07_evaluation.ipynb
    """
    import librosa

    rows = []
    for w in waves:
        m = librosa.feature.mfcc(y=np.asarray(w, dtype=np.float32).ravel(), sr=rate,
                                 n_mfcc=n_mfcc)
        rows.append(np.concatenate([m.mean(axis=1), m.std(axis=1)]))
    return np.asarray(rows, dtype=np.float64)


def utterance_features(data) -> dict[str, np.ndarray]:
    """The features of the classic baselines for every recording of ``data``.

    They depend on one recording only, so they are computed once and every split selects
    its rows (whatever is fitted -- threshold, standardization -- is fitted per split).

    Chapter: chapters/07_evaluation.ipynb

    Returns:
        dict: ``{"pitch": N × 1, "mfcc": N × 80, "pitch_level": N × 2}`` (pitch in Hz, level
        in dB).
    """
    rate = int(data.rate)
    pitch = median_pitch(data.waves, rate)
    return {"pitch": pitch[:, None], "mfcc": mfcc_stats(data.waves, rate),
            "pitch_level": np.column_stack([pitch, loud_level(data.waves)])}


# --------------------------------------------------------------------------- classifiers
def pitch_classifier():
    """A threshold on one number, placed on the training data: a one-split decision tree.

    Recordings without a pitch estimate get the training median (NaN cannot be compared).

    Chapter: chapters/07_evaluation.ipynb
    """
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.tree import DecisionTreeClassifier

    return make_pipeline(SimpleImputer(strategy="median"),
                         DecisionTreeClassifier(max_depth=1, random_state=0))


def mfcc_classifier():
    """Standardize every feature on the training data, then logistic regression.

    Chapter: chapters/07_evaluation.ipynb
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))


def pitch_level_classifier():
    """Median pitch and loudness: missing values imputed, standardized, logistic regression.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                         LogisticRegression(max_iter=5000))


class MeanPooledCnn(AudioNet):
    """AudioNet without its LSTM: CNN features averaged over the valid frames, then linear.

    The same front-end as :class:`~emoser.nn.AudioNet` (same arguments, same padded frames
    skipped, computed by the model's ``engine``); the mean over a recording's valid frames
    replaces the LSTM's last valid state, so the order of the frames no longer matters. It has
    no forget gate: train it with ``recipe.replace(forget_bias=None)``.

    Chapter: chapters/07_evaluation.ipynb
    """

    def __init__(self, numClass: int = 2, inDim: int = 500, convLayerNum: int = 3,
                 convOutNum: int = 64, convKernelSize: int = 5, sharedConv: bool = True,
                 engine: str = "fast", **ignored):
        super().__init__(numClass=numClass, inDim=inDim, convLayerNum=convLayerNum,
                         convOutNum=convOutNum, convKernelSize=convKernelSize, hiddenSize=1,
                         lstmLayerNum=1, sharedConv=sharedConv, engine=engine)
        self.lstm = nn.ModuleList()  # no recurrence at all
        self.fc = nn.Linear(self.feature_size, numClass)

    def frontend(self, frames: torch.Tensor) -> torch.Tensor:
        if getattr(self, "engine", "taught") == "fast":
            return fast_frontend(self, frames)
        return super().frontend(frames)

    def forward(self, x: torch.Tensor, lengths=None) -> torch.Tensor:
        lengths = check_batch(self, x, lengths)
        seq = self.sequence_features(x, lengths)  # N × T × F, zeros at padded steps
        return self.fc(seq.sum(dim=1) / lengths.to(seq.dtype).unsqueeze(1))


# --------------------------------------------------------------------------- runs
@dataclass
class BaselineRun:
    """One baseline on one split.

    Attributes:
        name (str): the baseline's key (one of :data:`BASELINES`).
        seed (int): the split's seed.
        accuracy (float): test accuracy.
        predictions (np.ndarray): predicted class per test recording (``test_idx`` order).
        test_idx (np.ndarray): the test indices.
        model: the fitted classifier or network.
        evaluation: the network's :class:`~emoser.training.Evaluation` (``pooled`` only).

    Chapter: chapters/07_evaluation.ipynb
    """

    name: str
    seed: int
    accuracy: float
    predictions: np.ndarray
    test_idx: np.ndarray
    model: Any = None
    evaluation: Any = None


def fit_and_score(classifier, features: np.ndarray, labels, train_idx,
                  test_idx) -> tuple[float, np.ndarray]:
    """Fit a scikit-learn classifier on the training rows, score it on the test rows.

    Chapter: chapters/07_evaluation.ipynb

    Returns:
        tuple: ``(test accuracy, predictions in test_idx order)``.
    """
    labels = np.asarray(labels)
    train_idx, test_idx = np.asarray(train_idx), np.asarray(test_idx)
    classifier.fit(features[train_idx], labels[train_idx])
    predicted = classifier.predict(features[test_idx])
    return float(np.mean(predicted == labels[test_idx])), predicted


def _indices(data, seed: int, indices) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    if indices is None:  # what run_protocol's prepare does for this seed
        train, test = stratified_split(data.labels, test_size=0.3, seed=seed)
        return train, None, test
    got = tuple(indices(seed))
    if len(got) == 2:
        return np.asarray(got[0]), None, np.asarray(got[1])
    train, val, test = (np.asarray(i) for i in got)
    return np.setdiff1d(train, val), val, test  # validation recordings are not trained on


def run_baselines(data, seeds: Iterable[int] = range(5), *,
                  indices: Callable[[int], tuple] | None = None, which: Sequence[str] = ("pitch",
                  "mfcc", "pooled"), recipe: Recipe = RECIPE, features: dict | None = None,
                  normalization: str = "global", model_kwargs: dict | None = None, device=None,
                  log: Callable[[str], Any] | None = print) -> dict[str, SeedRuns]:
    """Every baseline on every seed's split; a :class:`SeedRuns` per baseline.

    Without ``indices`` a seed's split is ``stratified_split(data.labels, 0.3, seed)``, the
    split :func:`~emoser.experiments.run_seeds` trains the network on. ``indices(seed)`` may
    give ``(train_idx, test_idx)`` or ``(train_idx, val_idx, test_idx)`` instead (e.g.
    :func:`emoser.prep.speaker_indices`: train on one speaker, test on the other); validation
    recordings are then left out of training and nothing is selected on them.

    ``normalization="per_speaker"`` (chapter 10) standardizes the classic baselines' features
    per speaker (:func:`~emoser.prep.per_speaker_standardized`: training rows by the training rows'
    statistics, test rows by the test speaker's own). ``pooled`` then trains as usual (global
    normalization: the training speaker's statistics, so its rows must all be of one speaker)
    and is tested with :func:`~emoser.experiments.retest_per_speaker`.

    Chapter: chapters/07_evaluation.ipynb, chapters/10_speaker_independent.ipynb

    Args:
        data: a :class:`emoser.data.TessData` (``waves``, ``labels``, ``rate``).
        seeds (iterable of int): the seeds (split; for ``pooled`` also weights and batches).
        indices (callable | None): ``seed -> indices`` as above.
        which (sequence of str): keys of :data:`BASELINES`.
        recipe (Recipe): how ``pooled`` trains (its forget bias is dropped: no LSTM).
        features (dict | None): from :func:`utterance_features` (computed when needed).
        normalization (str): one of :data:`BASELINE_NORMALIZATIONS`; ``"per_speaker"`` needs
            ``data.records`` with a ``speaker`` each.
        model_kwargs (dict | None): arguments of :class:`MeanPooledCnn`, e.g.
            ``{"engine": "taught"}``.
        device: where ``pooled`` trains.
        log (callable | None): one line per baseline and seed.

    Returns:
        dict[str, SeedRuns]: ``{key: runs}``; each run has an ``accuracy``.
    """
    seeds = [int(s) for s in seeds]
    unknown = [w for w in which if w not in BASELINES]
    if unknown or not seeds:
        raise ValueError(f"run_baselines needs seeds and baselines among {list(BASELINES)}, "
                         f"got seeds={seeds}, which={list(which)}")
    if normalization not in BASELINE_NORMALIZATIONS:
        raise ValueError(f"run_baselines: normalization must be one of "
                         f"{', '.join(BASELINE_NORMALIZATIONS)}, got {normalization!r}")
    speakers = record_field(data, "speaker") if normalization == "per_speaker" else None
    classic = [w for w in which if w in CLASSIC_BASELINES]
    if features is None and classic:
        features = utterance_features(data)
    missing = [w for w in classic if w not in features]
    if missing:
        raise ValueError(f"run_baselines: features lack {missing}; compute them with "
                         f"utterance_features")
    makers = {"pitch": pitch_classifier, "mfcc": mfcc_classifier,
              "pitch_level": pitch_level_classifier}
    runs: dict[str, list] = {w: [] for w in which}
    for s in seeds:
        train, val, test = _indices(data, s, indices)
        for w in which:
            if w == "pooled":
                if speakers is not None and len(set(speakers[train].tolist())) != 1:
                    raise ValueError("run_baselines: per_speaker normalization of `pooled` needs "
                                     f"training recordings of one speaker, got "
                                     f"{sorted(set(speakers[train].tolist()))}")
                prepared = prepare(data, s, train_idx=train, test_idx=test)
                run = train_and_test(prepared, recipe=recipe.replace(forget_bias=None),
                                     model_factory=MeanPooledCnn, model_kwargs=model_kwargs,
                                     device=device)
                if speakers is not None:
                    run = retest_per_speaker(SeedRuns.of_runs([s], [run]), data).results[0]
                result = BaselineRun(w, s, run.accuracy, run.evaluation.predictions,
                                     prepared.test_idx, run.model, run.evaluation)
            else:
                x = features[w]
                if speakers is not None:
                    x = per_speaker_standardized(x, speakers, train, test)
                classifier = makers[w]()
                acc, predicted = fit_and_score(classifier, x, data.labels, train, test)
                result = BaselineRun(w, s, acc, predicted, test, classifier)
            runs[w].append(result)
            if log is not None:
                log(f"seed {s}: {BASELINES[w]}: test accuracy {100 * result.accuracy:.2f}%")
    return {w: SeedRuns.of_runs(seeds, runs[w]) for w in which}


def baseline_table(spreads: Mapping[str, SeedRuns]) -> str:
    """Plain-text table: one row per model, test accuracy per seed, mean ± std, the worst seed.

    Chapter: chapters/07_evaluation.ipynb

    Args:
        spreads (Mapping[str, SeedRuns]): ``{row name: runs over the same seeds}``.
    """
    rows = []
    for name, spread in spreads.items():
        accs = np.array([r.accuracy for r in spread.results])
        rows.append([name, " ".join(f"{100 * a:6.2f}" for a in accs),
                     f"{100 * spread.mean:.2f} ± {100 * spread.std:.2f}",
                     f"{100 * accs.min():.2f}"])
    header = ["model", "test acc per seed (%)", "mean ± std (%)", "min (%)"]
    return format_table(rows, header, align="l" + "r" * (len(header) - 1))
