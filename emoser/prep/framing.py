"""Framing and batching of raw waveforms.

A waveform of arbitrary length becomes a sequence of equal-length frames
(``T × D``); a batch of such sequences is zero-padded to ``N × T × D`` and
travels together with the true lengths ``N``.

Chapter: chapters/02_framing.ipynb
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..common import as_numpy
from .normalize import Normalizer

__all__ = [
    "ms_to_samples",
    "count_frames",
    "check_framing",
    "frame_signal",
    "pad_sequences",
    "FrameDataset",
    "collate_frames",
]


def ms_to_samples(ms: float, rate: int) -> int:
    """Convert a duration in milliseconds into a number of samples.

    Rounds half up to the nearest integer and never returns less than 1.

    Chapter: chapters/02_framing.ipynb

    Args:
        ms (float): Duration in milliseconds (> 0).
        rate (int): Sampling rate in Hz (> 0).

    Returns:
        int: Number of samples, e.g. ``ms_to_samples(20, 24414) == 488``.

    Raises:
        ValueError: If ``ms`` or ``rate`` is not positive.
    """
    if not ms > 0:
        raise ValueError(f"ms must be positive, got {ms!r}")
    if not rate > 0:
        raise ValueError(f"rate must be a positive number of Hz, got {rate!r}")
    return max(1, int(math.floor(ms * rate / 1000.0 + 0.5)))


def count_frames(n: int, frame_length: int, hop: int) -> int:
    """How many frames :func:`frame_signal` cuts from ``n`` samples (the last one zero-padded).

    Chapter: chapters/02_framing.ipynb
    """
    n_frames = 1 + math.ceil(max(n - frame_length, 0) / hop)
    return min(n_frames, math.ceil(n / hop))  # hop > frame_length: no all-zero frame at the end


def check_framing(wave, frame_length, hop):
    """Check the arguments of :func:`frame_signal`; return ``wave`` as a 1-D NumPy array,
    ``frame_length`` and ``hop`` as ints (``hop=None``: ``frame_length``).

    Chapter: chapters/02_framing.ipynb

    Raises:
        ValueError: For an empty or non-1-D waveform or a non-positive frame length / hop.
    """
    wave = as_numpy(wave)
    if wave.ndim != 1:
        raise ValueError(f"frame_signal expects a 1-D waveform, got shape {wave.shape}")
    if wave.size == 0:
        raise ValueError("frame_signal got an empty waveform (0 samples): nothing to frame")
    frame_length = int(frame_length)
    hop = frame_length if hop is None else int(hop)
    if frame_length < 1:
        raise ValueError(f"frame_length must be >= 1, got {frame_length}")
    if hop < 1:
        raise ValueError(f"hop must be >= 1, got {hop}")
    return wave, frame_length, hop


def frame_signal(wave, frame_length, hop=None):
    """Cut a 1-D waveform into equal-length frames.

    Frames start at ``0, hop, 2·hop, …``; the last frame is the first one that
    reaches the end of the waveform and is zero-padded. ``hop == frame_length``
    (the default) gives non-overlapping frames, a smaller hop overlapping ones.
    A waveform shorter than one frame gives a single zero-padded frame.

    Chapter: chapters/02_framing.ipynb

    Args:
        wave: 1-D ``np.ndarray`` or ``torch.Tensor`` with at least one sample.
        frame_length (int): Samples per frame (>= 1).
        hop (int | None): Samples between frame starts (>= 1); ``None`` means ``frame_length``.

    Returns:
        np.ndarray: ``(n_frames, frame_length)``, same dtype as ``wave``.
        Example: ``frame_signal(np.arange(7), 3) -> [[0,1,2],[3,4,5],[6,0,0]]``.
    """
    wave, frame_length, hop = check_framing(wave, frame_length, hop)
    n_frames = count_frames(wave.size, frame_length, hop)
    padded = np.zeros((n_frames - 1) * hop + frame_length, dtype=wave.dtype)  # zeros at the end
    used = min(wave.size, padded.size)  # (a hop longer than the frame may skip the tail)
    padded[:used] = wave[:used]
    starts = np.arange(n_frames) * hop  # frame k holds padded[k·hop : k·hop + frame_length]
    return padded[starts[:, None] + np.arange(frame_length)]


def pad_sequences(seqs: Sequence, dtype: torch.dtype = torch.float32, device=None):
    """Zero-pad a list of frame sequences into one batch tensor.

    Chapter: chapters/02_framing.ipynb

    Args:
        seqs: List of ``(T_i, D)`` arrays or tensors, all with the same ``D`` and ``T_i >= 1``.
        dtype (torch.dtype): dtype of the batch. Defaults to ``torch.float32``.
        device: Where to create the batch (default: CPU).

    Returns:
        tuple: ``x`` (``N × max(T_i) × D`` tensor, zeros after each sequence's end) and
        ``lengths`` (``LongTensor`` of the ``T_i``).

    Raises:
        ValueError: For an empty list, a sequence that is not 2-D or has no frames,
            or mismatching frame sizes.
    """
    if len(seqs) == 0:
        raise ValueError("pad_sequences got an empty list of sequences")
    tensors = [s if isinstance(s, torch.Tensor) else torch.as_tensor(np.asarray(s)) for s in seqs]
    dim = None
    for k, s in enumerate(tensors):
        if s.ndim != 2:
            raise ValueError(f"sequence {k} must be 2-D (frames × frame_length), "
                             f"got shape {tuple(s.shape)}")
        if s.shape[0] == 0:
            raise ValueError(f"sequence {k} has no frames")
        if dim is None:
            dim = s.shape[1]
        elif s.shape[1] != dim:
            raise ValueError(f"sequence {k} has frames of {s.shape[1]} samples, "
                             f"sequence 0 has {dim}")
    lengths = torch.tensor([s.shape[0] for s in tensors], dtype=torch.long)
    x = torch.zeros(len(tensors), int(lengths.max()), dim, dtype=dtype, device=device)
    for k, s in enumerate(tensors):
        x[k, : s.shape[0]] = s
    return x, lengths


class FrameDataset(Dataset):
    """Waveforms turned into frame sequences once, up front.

    Each item is ``(frames, label)`` with ``frames`` a ``T_i × frame_length``
    tensor; use :func:`collate_frames` in the ``DataLoader`` to pad per batch.

    Chapter: chapters/02_framing.ipynb

    Args:
        waves: List of 1-D waveforms.
        labels: One integer class per waveform.
        frame_length (int): Samples per frame.
        hop (int | None): Samples between frame starts (``None``: no overlap).
        normalizer (Normalizer | None): Applied to each waveform before framing
            (fit it on the training waveforms only).
        dtype (torch.dtype): dtype of the stored frames. Defaults to ``torch.float32``.

    Attributes:
        frames (list[torch.Tensor]): The precomputed frame sequences.
        labels (np.ndarray): Integer labels.
        lengths (np.ndarray): Number of frames of each sequence.
    """

    def __init__(self, waves, labels, frame_length: int, hop: int | None = None,
                 normalizer: Normalizer | None = None, dtype: torch.dtype = torch.float32):
        waves = list(waves)
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) != len(waves):
            raise ValueError(f"FrameDataset got {len(waves)} waveforms "
                             f"but labels of shape {labels.shape}")
        if len(labels) and not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integers (class indices), got dtype {labels.dtype}")
        self.frame_length = int(frame_length)
        self.hop = self.frame_length if hop is None else int(hop)
        self.normalizer = normalizer
        self.dtype = dtype
        self.labels = labels.astype(np.int64)
        np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
        self.frames = []
        for k, w in enumerate(waves):
            w = as_numpy(w)
            if w.size == 0:
                raise ValueError(f"waveform {k} is empty (0 samples)")
            if normalizer is not None:
                w = normalizer.apply(w.astype(np.float64))
            frames = frame_signal(w, self.frame_length, self.hop).astype(np_dtype, copy=False)
            self.frames.append(torch.from_numpy(frames))
        self.lengths = np.array([f.shape[0] for f in self.frames], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index):
        return self.frames[index], int(self.labels[index])


def collate_frames(batch):
    """Collate ``(frames, label)`` items into a padded batch.

    Pads to the longest sequence of this batch, not of the whole set.

    Chapter: chapters/02_framing.ipynb

    Args:
        batch: List of ``(frames T_i × D tensor, label int)``.

    Returns:
        tuple: ``x`` (``N × max(T_i) × D``), ``lengths`` (``LongTensor N``),
        ``y`` (``LongTensor N``).
    """
    if len(batch) == 0:
        raise ValueError("collate_frames got an empty batch")
    seqs = [b[0] for b in batch]
    dtype = seqs[0].dtype if isinstance(seqs[0], torch.Tensor) else torch.float32
    x, lengths = pad_sequences(seqs, dtype=dtype)
    y = torch.tensor([int(b[1]) for b in batch], dtype=torch.long)
    return x, lengths, y
