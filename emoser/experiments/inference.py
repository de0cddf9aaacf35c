"""Using a trained model: load a checkpoint written by ``train``, classify one recording.

There is one checkpoint format: :meth:`Run.save <emoser.experiments.Run.save>` (what
``python -m emoser train`` calls) writes it, and :func:`load_trained` reads it back with
everything :func:`predict_wave` needs (classes, rate, framing, normalization).

Chapter: chapters/12_your_voice.ipynb
"""
from __future__ import annotations

import os

import numpy as np
import torch

from ..prep.framing import frame_signal
from ..prep.normalize import Normalizer, PerUtteranceNormalizer
from ..training.checkpoints import CheckpointError, load_checkpoint

__all__ = ["REQUIRED_META", "load_trained", "normalizer_from_meta", "predict_wave"]

#: What a checkpoint must hold beside the weights to classify a new recording.
REQUIRED_META = ("classes", "rate", "frame_length", "hop", "normalizer")


def normalizer_from_meta(meta: dict):
    """The normalizer a checkpoint's ``normalizer`` entry describes (None: no normalization).

    Chapter: chapters/12_your_voice.ipynb
    """
    spec = dict(meta["normalizer"])
    mode = spec.pop("mode", "global")  # checkpoints of the first format had no mode
    if mode == "global":
        return Normalizer(mean=float(spec["mean"]), std=float(spec["std"]))
    if mode == "per_utterance":
        return PerUtteranceNormalizer()
    if mode == "none":
        return None
    raise CheckpointError(f"unknown normalization {mode!r} in the checkpoint")


def load_trained(path: str | os.PathLike) -> tuple[torch.nn.Module, dict]:
    """Load a checkpoint written by ``python -m emoser train`` and check that it is usable.

    Returns:
        tuple: the model (evaluation mode, CPU) and its meta data.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not a usable checkpoint (see :func:`emoser.training.load_checkpoint`),
            or it lacks what :func:`predict_wave` needs, or its class names do not match
            the model's outputs.

    Chapter: chapters/12_your_voice.ipynb
    """
    model, meta = load_checkpoint(path)
    missing = [k for k in REQUIRED_META if meta.get(k) is None]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)}: retrain it with "
                              "'python -m emoser train'")
    n_out = getattr(model, "numClass", None)
    if n_out is not None and len(meta["classes"]) != int(n_out):
        raise CheckpointError(f"{path} names {len(meta['classes'])} classes but its model has "
                              f"{n_out} outputs; retrain it with 'python -m emoser train'")
    try:
        normalizer_from_meta(meta)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: its normalization entry is unusable ({exc})") from exc
    return model, meta


def predict_wave(model: torch.nn.Module, meta: dict, wave: np.ndarray) -> np.ndarray:
    """Class probabilities (float64, in ``meta["classes"]`` order) of one waveform.

    The waveform must already be at ``meta["rate"]``; it is normalized and framed as in
    training.

    Raises:
        ValueError: the normalized waveform or the probabilities are not finite (e.g. a
            corrupt file, or a model whose weights hold NaN).

    Chapter: chapters/12_your_voice.ipynb
    """
    normalizer = normalizer_from_meta(meta)
    x = np.asarray(wave, dtype=np.float64)
    if normalizer is not None:
        x = np.asarray(normalizer.apply(x), dtype=np.float64)
    frames = frame_signal(x, int(meta["frame_length"]), int(meta["hop"]))
    dtype = next(model.parameters()).dtype
    batch = torch.as_tensor(frames, dtype=dtype).unsqueeze(0)
    if not torch.isfinite(batch).all():  # checked in the model's dtype: float32 overflows sooner
        raise ValueError(f"the normalized recording holds NaN or inf in {dtype} (samples far "
                         "outside the range of audio, or an unusable normalization)")
    with torch.no_grad():
        logits = model(batch, torch.tensor([len(frames)]))
    probabilities = torch.softmax(logits.double(), dim=1)[0].numpy()
    if not np.isfinite(probabilities).all():
        raise ValueError("the model gives NaN probabilities (its weights or the input are not "
                         "finite)")
    return probabilities
