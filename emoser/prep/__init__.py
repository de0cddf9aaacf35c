"""emoser.prep: from waveforms to what the model reads (normalizing, framing, splitting).

Chapter: chapters/02_framing.ipynb
"""
from .framing import (
    FrameDataset,
    collate_frames,
    count_frames,
    frame_signal,
    ms_to_samples,
    pad_sequences,
)
from .normalize import (
    NORMALIZATIONS,
    Normalizer,
    PerUtteranceNormalizer,
    make_normalizer,
    per_speaker_standardized,
    speaker_normalized,
)
from .splits import (
    random_indices,
    record_field,
    speaker_indices,
    speaker_split,
    stratified_split,
    word_disjoint_split,
)

__all__ = [
    "ms_to_samples", "count_frames", "frame_signal", "pad_sequences", "FrameDataset",
    "collate_frames",
    "Normalizer", "PerUtteranceNormalizer", "NORMALIZATIONS", "make_normalizer",
    "speaker_normalized", "per_speaker_standardized", "stratified_split", "speaker_split",
    "word_disjoint_split", "record_field", "speaker_indices", "random_indices",
]
