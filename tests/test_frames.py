"""Known-answer and behaviour tests for emoser.frames."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from emoser.prep import (
    FrameDataset,
    Normalizer,
    collate_frames,
    frame_signal,
    ms_to_samples,
    pad_sequences,
)


# ---------------------------------------------------------------- ms_to_samples
def test_ms_to_samples_known_answers():
    assert ms_to_samples(20, 24414) == 488  # 488.28
    assert ms_to_samples(40, 24414) == 977  # 976.56
    assert ms_to_samples(25, 16000) == 400
    assert ms_to_samples(0.5, 3000) == 2  # 1.5 rounds half up
    assert ms_to_samples(0.01, 1000) == 1  # never below one sample


@pytest.mark.parametrize("ms, rate", [(0, 24414), (-5, 24414), (20, 0)])
def test_ms_to_samples_rejects_nonpositive(ms, rate):
    with pytest.raises(ValueError):
        ms_to_samples(ms, rate)


# ---------------------------------------------------------------- Normalizer
def test_normalizer_known_stats_over_concatenation():
    # concatenation [1, 2, 3, 4, 5, 6, 7, 8, 9]: mean 5, population variance 60/9
    norm = Normalizer.fit([np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0, 7.0, 8.0, 9.0])])
    assert norm.mean == pytest.approx(5.0, abs=1e-12)
    assert norm.std == pytest.approx(np.sqrt(60 / 9), abs=1e-12)
    # not the mean of per-wave means (2 and 6.5 -> 4.25)
    assert norm.mean != pytest.approx(4.25)


def test_normalizer_single_wave_and_tensor_input():
    norm = Normalizer.fit(torch.tensor([0.0, 2.0]))
    assert (norm.mean, norm.std) == (1.0, 1.0)


def test_normalizer_applies_training_stats_to_other_sets():
    train = [np.array([0.0, 2.0, 4.0], dtype=np.float32)]
    norm = Normalizer.fit(train)
    out = norm.apply(np.array([2.0, 2.0 + norm.std], dtype=np.float32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(norm(train[0]).mean(), 0.0, atol=1e-6)
    np.testing.assert_allclose(norm(train[0]).std(), 1.0, atol=1e-6)
    t = norm(torch.tensor([2.0], dtype=torch.float64))
    assert t.dtype == torch.float64 and abs(float(t)) < 1e-12
    assert len(norm.apply_all(train * 3)) == 3


@pytest.mark.parametrize("waves", [[], [np.array([])], [np.ones(5)]])
def test_normalizer_rejects_empty_or_constant(waves):
    with pytest.raises(ValueError):
        Normalizer.fit(waves)


# ---------------------------------------------------------------- frame_signal
def test_frame_signal_no_overlap_pads_last_frame():
    wave = np.arange(7)
    out = frame_signal(wave, 3)
    np.testing.assert_array_equal(out, [[0, 1, 2], [3, 4, 5], [6, 0, 0]])
    out[0, 0] = 99  # a writable copy, not a view of the input
    assert wave[0] == 0


def test_frame_signal_exact_multiple_has_no_extra_frame():
    np.testing.assert_array_equal(frame_signal(np.arange(6), 3), [[0, 1, 2], [3, 4, 5]])


def test_frame_signal_overlap():
    np.testing.assert_array_equal(frame_signal(np.arange(7), 3, hop=2),
                                  [[0, 1, 2], [2, 3, 4], [4, 5, 6]])
    np.testing.assert_array_equal(frame_signal(np.arange(1, 7), 4, hop=2),
                                  [[1, 2, 3, 4], [3, 4, 5, 6]])
    np.testing.assert_array_equal(frame_signal(np.arange(1, 8), 4, hop=2),
                                  [[1, 2, 3, 4], [3, 4, 5, 6], [5, 6, 7, 0]])


def test_frame_signal_hop_larger_than_frame_never_gives_empty_frame():
    np.testing.assert_array_equal(frame_signal(np.arange(10), 3, hop=5), [[0, 1, 2], [5, 6, 7]])


def test_frame_signal_too_short_gives_one_padded_frame():
    np.testing.assert_array_equal(frame_signal(np.array([5.0, 6.0]), 4), [[5.0, 6.0, 0.0, 0.0]])


def test_frame_signal_empty_raises():
    with pytest.raises(ValueError, match="empty"):
        frame_signal(np.array([]), 4)


@pytest.mark.parametrize("length, hop", [(0, None), (3, 0)])
def test_frame_signal_rejects_bad_sizes(length, hop):
    with pytest.raises(ValueError):
        frame_signal(np.arange(5), length, hop)


def test_frame_signal_rejects_2d():
    with pytest.raises(ValueError, match="1-D"):
        frame_signal(np.zeros((2, 3)), 2)


def test_frame_signal_tensor_input_and_dtype():
    out = frame_signal(torch.arange(5, dtype=torch.float32), 2)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0, 1], [2, 3], [4, 0]])


def test_frame_signal_course_default_frame_count():
    wave = np.random.default_rng(0).standard_normal(52_000).astype(np.float32)
    out = frame_signal(wave, 500)
    assert out.shape == (104, 500)  # ceil(52000 / 500)
    np.testing.assert_array_equal(out.ravel()[:52_000], wave)
    assert not out.ravel()[52_000:].any()


# ---------------------------------------------------------------- batching
def test_pad_sequences_shapes_lengths_and_zeros():
    seqs = [np.ones((2, 3)), 2 * np.ones((4, 3)), torch.full((1, 3), 3.0)]
    x, lengths = pad_sequences(seqs)
    assert x.shape == (3, 4, 3) and x.dtype == torch.float32
    assert lengths.dtype == torch.long and lengths.tolist() == [2, 4, 1]
    assert torch.all(x[0, :2] == 1) and torch.all(x[0, 2:] == 0)
    assert torch.all(x[1] == 2)
    assert torch.all(x[2, 0] == 3) and torch.all(x[2, 1:] == 0)
    assert pad_sequences(seqs, dtype=torch.float64)[0].dtype == torch.float64


@pytest.mark.parametrize("seqs", [[], [np.zeros((0, 3))], [np.zeros(3)],
                                  [np.zeros((2, 3)), np.zeros((2, 4))]])
def test_pad_sequences_rejects_bad_input(seqs):
    with pytest.raises(ValueError):
        pad_sequences(seqs)


def _toy_waves():
    rng = np.random.default_rng(1)
    return [rng.standard_normal(n).astype(np.float32) for n in (10, 25, 7, 40)]


def test_frame_dataset_precomputes_normalized_frames():
    waves = _toy_waves()
    norm = Normalizer.fit(waves[:2])
    ds = FrameDataset(waves, [0, 1, 0, 1], frame_length=8, normalizer=norm)
    assert len(ds) == 4
    np.testing.assert_array_equal(ds.lengths, [2, 4, 1, 5])
    frames, label = ds[1]
    assert isinstance(frames, torch.Tensor) and frames.dtype == torch.float32
    assert frames.shape == (4, 8) and label == 1 and isinstance(label, int)
    expected = frame_signal(norm(waves[1]), 8)
    np.testing.assert_allclose(frames.numpy(), expected, atol=1e-6)
    assert ds[1][0] is ds.frames[1]  # no recomputation per item
    ds64 = FrameDataset(waves, [0, 1, 0, 1], 8, hop=4, dtype=torch.float64)
    assert ds64[0][0].dtype == torch.float64
    np.testing.assert_array_equal(ds64.lengths, [2, 6, 1, 9])


def test_frame_dataset_checks_labels():
    with pytest.raises(ValueError):
        FrameDataset(_toy_waves(), [0, 1], frame_length=8)


def test_collate_pads_to_longest_in_batch_not_whole_set():
    ds = FrameDataset(_toy_waves(), [0, 1, 0, 1], frame_length=8)
    x, lengths, y = collate_frames([ds[0], ds[2]])
    assert x.shape == (2, 2, 8)  # longest in batch is 2, whole set has 5
    assert lengths.tolist() == [2, 1] and y.tolist() == [0, 0]
    assert torch.all(x[1, 1] == 0)
    loader = DataLoader(ds, batch_size=2, shuffle=False, collate_fn=collate_frames)
    shapes = [tuple(b[0].shape) for b in loader]
    assert shapes == [(2, 4, 8), (2, 5, 8)]


@pytest.mark.parametrize("n, frame_length, hop", [(1, 5, 5), (5, 5, 5), (6, 5, 5), (12, 5, 2),
                                                  (7, 3, 7), (1000, 500, 1)])
def test_count_frames_is_what_frame_signal_cuts(n, frame_length, hop):
    from emoser.prep import count_frames, frame_signal

    frames = frame_signal(np.ones(n, dtype=np.float32), frame_length, hop)
    assert count_frames(n, frame_length, hop) == len(frames)
