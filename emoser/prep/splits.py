"""Train/test splits: stratified random, by speaker, and by word.

Every function returns sorted ``np.int64`` index arrays into the data set, so the
same indices select waveforms, labels and records alike.

Chapter: chapters/06_training.ipynb, chapters/10_speaker_independent.ipynb
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["stratified_split", "speaker_split", "word_disjoint_split", "record_field",
           "speaker_indices", "random_indices"]


def _as_index(idx) -> np.ndarray:
    return np.sort(np.asarray(idx, dtype=np.int64))


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be a fraction strictly between 0 and 1, got {value!r}")


def stratified_split(labels, test_size: float = 0.3,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split indices at random so that every class keeps the same proportion.

    For each class with ``n`` examples, ``floor(n * test_size + 0.5)`` of them
    (rounded half up) go to the test set and the rest to training. With the
    course's data (200 happy, 199 sad, ``test_size=0.3``) that is 60 + 60 test
    and 140 + 139 training examples. Classes are shuffled with a NumPy generator
    seeded by ``seed``: the same seed always gives the same split.

    Args:
        labels (array-like of int or str): one label per example.
        test_size (float): fraction of each class held out (default 0.3).
        seed (int): random seed (default 0).

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(train_idx, test_idx)``, sorted, disjoint,
        together covering ``range(len(labels))``.

    Raises:
        ValueError: ``labels`` is empty or ``test_size`` is not in (0, 1).

    Chapter: chapters/06_training.ipynb
    """
    _check_fraction("test_size", test_size)
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D sequence, got shape {labels.shape}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in np.unique(labels):  # sorted order: independent of the data's order of classes
        members = np.flatnonzero(labels == cls)
        members = members[rng.permutation(members.size)]
        n_test = int(np.floor(members.size * test_size + 0.5))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return _as_index(np.concatenate(train)), _as_index(np.concatenate(test))


def speaker_split(speakers: Sequence[str], train_speakers: Iterable[str],
                  test_speakers: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """Split indices by speaker: train on some voices, test on others.

    Args:
        speakers (sequence of str): the speaker of each example (e.g. ``"YAF"``).
        train_speakers (iterable of str): speakers whose examples form the training set.
        test_speakers (iterable of str): speakers whose examples form the test set.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(train_idx, test_idx)``, sorted. Examples
        of speakers in neither list are left out.

    Raises:
        ValueError: a speaker is in both lists, or one side selects no example.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    if isinstance(train_speakers, str):
        train_speakers = [train_speakers]
    if isinstance(test_speakers, str):
        test_speakers = [test_speakers]
    train_set, test_set = set(train_speakers), set(test_speakers)
    both = train_set & test_set
    if both:
        raise ValueError(f"speakers {sorted(both)} are in both the training and the test list")
    speakers = np.asarray(speakers)
    train = np.flatnonzero(np.isin(speakers, list(train_set)))
    test = np.flatnonzero(np.isin(speakers, list(test_set)))
    present = sorted(set(speakers.tolist()))
    for side, idx, wanted in (("training", train, train_set), ("test", test, test_set)):
        if idx.size == 0:
            raise ValueError(f"no example for the {side} speakers {sorted(wanted)}; "
                             f"speakers present: {present}")
    return _as_index(train), _as_index(test)


def word_disjoint_split(words: Sequence[str], labels=None, val_size: float = 0.2,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Hold out whole words: no word appears on both sides.

    In TESS every word is spoken in every emotion, so a random split of the
    examples lets a model meet the same word (same phonemes, same duration) in
    training and in validation. Holding out words instead gives a validation set
    for model selection that does not reward memorising words. The unique words
    are shuffled with ``seed`` and assigned to validation until it holds at
    least ``val_size`` of the examples.

    Args:
        words (sequence of str): the word of each example.
        labels (array-like | None): labels of the examples; when given, every
            class must occur on both sides (else ValueError).
        val_size (float): target fraction of examples in the validation set (default 0.2).
        seed (int): random seed (default 0).

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(train_idx, val_idx)``, sorted and disjoint,
        covering all examples.

    Raises:
        ValueError: fewer than two distinct words, ``val_size`` not in (0, 1), or a
            class missing on one side.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    _check_fraction("val_size", val_size)
    words = np.asarray(words)
    unique = np.unique(words)
    if unique.size < 2:
        raise ValueError(f"need at least two distinct words to hold some out, got {unique.size}")
    rng = np.random.default_rng(seed)
    order = unique[rng.permutation(unique.size)]
    counts = {w: int(c) for w, c in zip(*np.unique(words, return_counts=True))}
    target = val_size * words.size
    val_words, n_val = [], 0
    for w in order[:-1]:  # at least one word stays in training
        if n_val >= target:
            break
        val_words.append(w)
        n_val += counts[w]
    in_val = np.isin(words, val_words)
    train, val = np.flatnonzero(~in_val), np.flatnonzero(in_val)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != words.shape:
            raise ValueError(f"labels has {labels.size} entries but words has {words.size}")
        classes = set(labels.tolist())
        for side, idx in (("training", train), ("validation", val)):
            missing = classes - set(labels[idx].tolist())
            if missing:
                raise ValueError(f"class(es) {sorted(missing)} missing from the {side} side of the "
                                 f"word split (seed {seed}); try another seed or a larger val_size")
    return _as_index(train), _as_index(val)


def record_field(data, name: str) -> np.ndarray:
    """One field of every record of ``data`` (e.g. ``"speaker"`` or ``"word"``) as an array.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    records = getattr(data, "records", None)
    if records is None or len(records) != len(data.labels):
        raise ValueError(f"data needs one record (with a `{name}`) per example, e.g. a TessData")
    return np.asarray([getattr(r, name) for r in records])


def speaker_indices(data, train_speaker: str | Sequence[str], test_speaker: str | Sequence[str],
                    val_size: float = 0.2,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train on some voices, validate on held-out words of the same voices, test on others.

    The validation set is carved out of the *training* speaker's recordings by
    :func:`emoser.splits.word_disjoint_split` (no word on both sides, every class on
    both sides), so nothing about the test speaker is used before the final test.

    Args:
        data: a :class:`emoser.data.TessData` (needs ``labels`` and ``records`` with
            ``speaker`` and ``word``).
        train_speaker (str | sequence of str): speaker(s) to train on, e.g. ``"YAF"``.
        test_speaker (str | sequence of str): speaker(s) to test on, e.g. ``"OAF"``.
        val_size (float): fraction of the training speaker's examples held out (whole words).
        seed (int): which words are held out.

    Returns:
        tuple[np.ndarray, np.ndarray, np.ndarray]: ``(train_idx, val_idx, test_idx)``,
        sorted and disjoint.

    Raises:
        ValueError: a speaker on both sides or missing, or a class missing on one side.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    speakers = record_field(data, "speaker")
    words = record_field(data, "word")
    labels = np.asarray(data.labels)
    train, test = speaker_split(speakers, train_speaker, test_speaker)
    tr, va = word_disjoint_split(words[train], labels[train], val_size=val_size, seed=seed)
    return train[tr], train[va], test


def random_indices(data, test_size: float = 0.3, val_size: float = 0.2,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A stratified random test split, then a word-disjoint validation set from the training part.

    Args:
        data: a :class:`emoser.data.TessData` (needs ``labels`` and ``records`` with ``word``).
        test_size (float): fraction of each class held out for testing (stratified, seeded).
        val_size (float): fraction of the training examples held out for validation (whole words).
        seed (int): seed of both splits.

    Returns:
        tuple[np.ndarray, np.ndarray, np.ndarray]: ``(train_idx, val_idx, test_idx)``,
        sorted and disjoint.

    Chapter: chapters/10_speaker_independent.ipynb
    """
    words = record_field(data, "word")
    labels = np.asarray(data.labels)
    train, test = stratified_split(labels, test_size=test_size, seed=seed)
    tr, va = word_disjoint_split(words[train], labels[train], val_size=val_size, seed=seed)
    return train[tr], train[va], test
