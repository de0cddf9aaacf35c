"""Splits: stratified proportions, seeding, disjointness, speaker and word splits."""
import numpy as np
import pytest

import emoser
from emoser.prep import speaker_split, stratified_split, word_disjoint_split


def course_labels():
    # the course's data: 200 happy (0) then 199 sad (1), ordered by class like the original
    return np.array([0] * 200 + [1] * 199)


def test_stratified_counts_per_class_for_course_data():
    labels = course_labels()
    tr, te = stratified_split(labels, test_size=0.3, seed=0)
    # 200 * 0.3 = 60 and 199 * 0.3 = 59.7 -> rounded half up to 60
    assert np.bincount(labels[tr]).tolist() == [140, 139]
    assert np.bincount(labels[te]).tolist() == [60, 60]


def test_stratified_is_disjoint_covering_sorted_int64():
    labels = course_labels()
    tr, te = stratified_split(labels, 0.3, seed=3)
    assert tr.dtype == np.int64 and te.dtype == np.int64
    assert np.all(np.diff(tr) > 0) and np.all(np.diff(te) > 0)
    assert np.intersect1d(tr, te).size == 0
    assert np.array_equal(np.union1d(tr, te), np.arange(len(labels)))


def test_stratified_seeding():
    labels = course_labels()
    a = stratified_split(labels, 0.3, seed=0)
    b = stratified_split(labels, 0.3, seed=0)
    c = stratified_split(labels, 0.3, seed=1)
    assert np.array_equal(a[1], b[1]) and np.array_equal(a[0], b[0])
    assert not np.array_equal(a[1], c[1])


def test_stratified_rounds_half_up_and_accepts_strings():
    labels = np.array(["a"] * 5 + ["b"] * 3 + ["c"] * 10)
    tr, te = stratified_split(labels, test_size=0.5, seed=0)
    # 2.5 -> 3, 1.5 -> 2, 5 -> 5
    assert sorted(labels[te].tolist()) == ["a"] * 3 + ["b"] * 2 + ["c"] * 5
    assert len(tr) == 8


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5])
def test_stratified_rejects_bad_fraction(bad):
    with pytest.raises(ValueError, match="test_size"):
        stratified_split([0, 1, 0, 1], test_size=bad)


def test_stratified_rejects_empty():
    with pytest.raises(ValueError, match="non-empty"):
        stratified_split([], 0.3)


def test_train_reexports_stratified_split():
    assert emoser.prep.stratified_split is stratified_split


def test_speaker_split():
    speakers = np.array(["YAF", "OAF", "YAF", "OAF", "XYZ"])
    tr, te = speaker_split(speakers, ["YAF"], "OAF")
    assert tr.tolist() == [0, 2] and te.tolist() == [1, 3]
    assert tr.dtype == np.int64
    with pytest.raises(ValueError, match="both"):
        speaker_split(speakers, ["YAF"], ["YAF", "OAF"])
    with pytest.raises(ValueError, match="no example"):
        speaker_split(speakers, ["YAF"], ["ABC"])


def test_word_disjoint_split_holds_out_whole_words():
    words = np.repeat([f"w{i}" for i in range(50)], 2)  # each word in two emotions
    labels = np.tile([0, 1], 50)
    tr, va = word_disjoint_split(words, labels, val_size=0.2, seed=0)
    assert set(words[tr]).isdisjoint(set(words[va]))
    assert np.array_equal(np.union1d(tr, va), np.arange(100))
    assert len(va) == 20  # 10 words of two examples each
    assert np.bincount(labels[va]).tolist() == [10, 10]
    again = word_disjoint_split(words, labels, val_size=0.2, seed=0)
    other = word_disjoint_split(words, labels, val_size=0.2, seed=1)
    assert np.array_equal(va, again[1]) and not np.array_equal(va, other[1])


def test_word_disjoint_split_reports_missing_class():
    words = ["a", "b", "c", "d"]
    labels = [0, 0, 0, 1]  # class 1 only in word d: one side always lacks it
    with pytest.raises(ValueError, match="missing"):
        word_disjoint_split(words, labels, val_size=0.25, seed=0)
    tr, va = word_disjoint_split(words, None, val_size=0.25, seed=0)  # without labels: no check
    assert len(va) == 1 and len(tr) == 3
