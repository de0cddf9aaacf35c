"""TESS file names and discovery: which recordings are below a folder, and what they are.

Labels come from the file name (``YAF_back_happy.wav`` -> speaker YAF, word "back", emotion
"happy"), never from folder names, which differ between distributions (``OAF_Fear``,
``YAF_pleasant_surprised``, an archive extracted twice inside itself, ...).

Chapter: chapters/01_data.ipynb
"""

from __future__ import annotations

import filecmp
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

__all__ = [
    "candidate_files",
    "EMOTIONS",
    "SPEAKERS",
    "AUDIO_SUFFIXES",
    "Recording",
    "Catalog",
    "normalize_emotion",
    "normalize_speaker",
    "parse_name",
    "find_recordings",
]

#: The seven TESS emotions, in the course's fixed order (class index = position here).
EMOTIONS = ("angry", "disgust", "fear", "happy", "neutral", "ps", "sad")
#: The two TESS speakers: older (64) and younger (26) actress.
SPEAKERS = ("OAF", "YAF")
#: File suffixes taken for recordings (some TESS ``.wav`` files are really AIFF).
AUDIO_SUFFIXES = (".wav", ".aif", ".aiff")

_EMOTION_ALIASES = {
    **{e: e for e in EMOTIONS},
    "pleasant_surprise": "ps", "pleasant_surprised": "ps", "pleasantsurprise": "ps",
    "pleasant surprise": "ps", "pleasant-surprise": "ps", "surprise": "ps", "surprised": "ps",
    "anger": "angry", "disgusted": "disgust", "fearful": "fear", "sadness": "sad",
}
# "OA" is a known misspelling of "OAF" in one published file name (OA_bite_neutral.wav).
_SPEAKER_ALIASES = {"OAF": "OAF", "OA": "OAF", "YAF": "YAF"}


def normalize_emotion(name: str) -> str:
    """Map an emotion token or alias to its canonical name in :data:`EMOTIONS`.

    ``"ps"``, ``"pleasant_surprise"``, ``"Pleasant surprise"`` all give ``"ps"``.

    Raises:
        ValueError: unknown emotion, naming the valid ones.

    Chapter: chapters/01_data.ipynb
    """
    key = str(name).strip().lower()
    if key in _EMOTION_ALIASES:
        return _EMOTION_ALIASES[key]
    key = key.replace(" ", "_").replace("-", "_")
    if key in _EMOTION_ALIASES:
        return _EMOTION_ALIASES[key]
    raise ValueError(f"unknown emotion {name!r}; expected one of {', '.join(EMOTIONS)} "
                     "(or 'pleasant_surprise' for ps)")


def normalize_speaker(name: str) -> str:
    """Map a speaker token to ``"OAF"`` or ``"YAF"`` (``"OA"`` is the known misspelling of OAF).

    Raises:
        ValueError: unknown speaker.

    Chapter: chapters/01_data.ipynb
    """
    key = str(name).strip().upper()
    if key in _SPEAKER_ALIASES:
        return _SPEAKER_ALIASES[key]
    raise ValueError(f"unknown speaker {name!r}; expected one of {', '.join(SPEAKERS)}")


def parse_name(path: str | os.PathLike) -> tuple[str, str, str]:
    """Read speaker, word and emotion from a TESS file name.

    Args:
        path: a file name or path such as ``".../OAF_Fear/OAF_back_fear.wav"``.

    Returns:
        tuple: ``(speaker, word, emotion)``, e.g. ``("OAF", "back", "fear")``; speaker in
        :data:`SPEAKERS`, emotion in :data:`EMOTIONS`.

    Raises:
        ValueError: the name is not ``SPEAKER_word_emotion.ext`` or has an unknown token.

    Chapter: chapters/01_data.ipynb
    """
    p = Path(path)
    parts = p.stem.split("_")
    if len(parts) < 3:
        raise ValueError(f"{p}: not a TESS file name (expected SPEAKER_word_emotion.wav)")
    try:
        speaker = normalize_speaker(parts[0])
    except ValueError:
        raise ValueError(f"{p}: unknown speaker prefix {parts[0]!r} "
                         f"(expected one of {', '.join(SPEAKERS)})") from None
    # the emotion is the last token, or the last two for "pleasant_surprise(d)"
    for n_em in (2, 1):
        if len(parts) - n_em < 2:
            continue
        token = "_".join(parts[-n_em:]).lower()
        if token in _EMOTION_ALIASES:
            return speaker, "_".join(parts[1:-n_em]).lower(), _EMOTION_ALIASES[token]
    raise ValueError(f"{p}: unknown emotion token {parts[-1]!r} "
                     f"(expected one of {', '.join(EMOTIONS)})")


@dataclass(frozen=True)
class Recording:
    """One TESS recording: where it is and what it is.

    Chapter: chapters/01_data.ipynb
    """

    path: Path
    speaker: str
    word: str
    emotion: str

    @property
    def key(self) -> tuple[str, str, str]:
        """``(speaker, word, emotion)``: what identifies a recording, whatever its folder."""
        return (self.speaker, self.word, self.emotion)


@dataclass
class Catalog:
    """The recordings found below a folder (a table with path, speaker, word, emotion).

    Attributes:
        records: the recordings, sorted by emotion (in :data:`EMOTIONS` order), speaker, word.
        duplicates_dropped: identical copies of a recording found more than once and kept once.
        duplicates: ``(kept, dropped)`` path pairs.
        ignored: ``(path, reason)`` for audio-named files that were not taken (``strict=False``).
        root: the folder searched.

    Chapter: chapters/01_data.ipynb
    """

    records: list[Recording]
    duplicates_dropped: int = 0
    duplicates: list[tuple[Path, Path]] = field(default_factory=list)
    ignored: list[tuple[Path, str]] = field(default_factory=list)
    root: Path | None = None

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Recording]:
        return iter(self.records)

    def __getitem__(self, i):
        return self.records[i]

    @property
    def paths(self) -> list[Path]:
        """The recordings' paths, in catalogue order."""
        return [r.path for r in self.records]

    def labels(self, classes: Iterable[str] | None = None) -> np.ndarray:
        """Class index of every recording: position of its emotion in ``classes``.

        Args:
            classes: emotion names (aliases allowed); default: the emotions present, in
                :data:`EMOTIONS` order.

        Returns:
            np.ndarray: int64 labels, one per record.

        Raises:
            ValueError: a record's emotion is not among ``classes``.
        """
        classes = (self.classes() if classes is None
                   else tuple(normalize_emotion(c) for c in classes))
        index = {c: i for i, c in enumerate(classes)}
        missing = sorted({r.emotion for r in self.records} - set(index))
        if missing:
            raise ValueError(f"recordings with emotions {missing} are not among classes {classes}")
        return np.array([index[r.emotion] for r in self.records], dtype=np.int64)

    def classes(self) -> tuple[str, ...]:
        """The emotions present, in :data:`EMOTIONS` order."""
        present = {r.emotion for r in self.records}
        return tuple(e for e in EMOTIONS if e in present)

    def counts(self) -> dict[str, int]:
        """Number of recordings per ``SPEAKER_emotion`` group."""
        c = Counter(f"{r.speaker}_{r.emotion}" for r in self.records)
        return dict(sorted(c.items()))

    def filter(self, emotions: Iterable[str] | None = None,
               speakers: Iterable[str] | None = None) -> "Catalog":
        """Return a catalogue with only the given emotions and speakers (None = all)."""
        ems = None if emotions is None else {normalize_emotion(e) for e in _as_tuple(emotions)}
        sps = None if speakers is None else {normalize_speaker(s) for s in _as_tuple(speakers)}
        keep = [r for r in self.records
                if (ems is None or r.emotion in ems) and (sps is None or r.speaker in sps)]
        return Catalog(keep, self.duplicates_dropped, list(self.duplicates), list(self.ignored),
                       self.root)

    def summary(self) -> str:
        """One line: file count, per-group counts, duplicates dropped."""
        groups = ", ".join(f"{k} {v}" for k, v in self.counts().items())
        s = f"{len(self)} recordings ({groups})"
        if self.duplicates_dropped:
            s += f"; {self.duplicates_dropped} duplicate copies dropped"
        if self.ignored:
            s += f"; {len(self.ignored)} files ignored"
        return s

    def __repr__(self) -> str:
        return f"Catalog({self.summary()}, root={str(self.root)!r})"


def _as_tuple(x) -> tuple:
    return (x,) if isinstance(x, str) else tuple(x)


#: Folders never searched for recordings, and why (hidden folders are skipped as well, and
#: any folder with a ``pyvenv.cfg``: a Python virtual environment).
_SKIPPED_FOLDERS = {
    "__MACOSX": "macOS resource forks",
    "site-packages": "installed Python packages",
    "__pycache__": "Python cache",
    "node_modules": "installed JavaScript packages",
    ".git": "version control",
    ".venv": "Python virtual environment",
    ".cache": "cache folder",
}


def _skip_reason(folder: Path) -> str | None:
    """Why ``folder`` is not searched for recordings, or None."""
    if folder.name in _SKIPPED_FOLDERS:
        return _SKIPPED_FOLDERS[folder.name]
    if folder.name.startswith("."):
        return "hidden folder"
    if (folder / "pyvenv.cfg").is_file():
        return "Python virtual environment"
    return None


def candidate_files(root: Path, skipped: list | None = None) -> Iterator[Path]:
    """Audio-named files below ``root``, skipping hidden entries, environment and cache
    folders (:data:`_SKIPPED_FOLDERS`, virtual environments) and macOS ``__MACOSX`` forks.

    Linked folders are followed, each real folder searched once: a link back up the tree (a
    loop) or a second link to a folder already searched is not entered again. Every folder not
    searched, and every broken link, is appended to ``skipped`` as ``(path, reason)``.

    Chapter: chapters/01_data.ipynb
    """
    def note(path: Path, why: str) -> None:
        if skipped is not None:
            skipped.append((path, why))

    searched: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in searched:
            note(Path(dirpath), f"link to a folder searched already ({real})")
            dirnames[:] = []
            continue
        searched.add(real)
        keep = []
        for name in sorted(dirnames):
            why = _skip_reason(Path(dirpath) / name)
            if why is None:
                keep.append(name)
            else:
                note(Path(dirpath) / name, why)
        dirnames[:] = keep
        for name in sorted(filenames):
            if name.startswith(".") or not name.lower().endswith(AUDIO_SUFFIXES):
                continue
            path = Path(dirpath) / name
            if not path.exists():
                note(path, "broken link")
                continue
            yield path


def _same_content(a: Path, b: Path) -> bool:
    try:
        return filecmp.cmp(a, b, shallow=False)
    except OSError:
        return False


def find_recordings(root: str | os.PathLike, emotions: Iterable[str] | None = None,
                    speakers: Iterable[str] | None = None, *, strict: bool = True) -> Catalog:
    """Find every TESS recording below ``root``, recursively, whatever the folder names.

    Args:
        root: folder to search.
        emotions: keep only these (aliases such as "pleasant_surprise" allowed); None = all.
        speakers: keep only these ("OAF", "YAF"); None = both.
        strict (bool): a ``.wav``/``.aif(f)`` file whose name is not a TESS name raises; with
            False it is listed in ``Catalog.ignored`` instead. Hidden files, ``__MACOSX`` and
            names not starting with a speaker prefix are always ignored.

    Returns:
        Catalog: the records (identical copies kept once; ``duplicates_dropped`` counts them).

    Raises:
        FileNotFoundError: ``root`` is missing, or no recordings (matching the filter) are found.
        ValueError: an unknown emotion or speaker (in a file name or the filter), or two
            different files claiming the same speaker/word/emotion (both paths named).

    Example:
        >>> find_recordings(tess_dir, emotions=("happy", "sad"),
        ...                 speakers=("YAF",))  # doctest: +SKIP

    Chapter: chapters/01_data.ipynb
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist or is not a folder")
    ems = None if emotions is None else {normalize_emotion(e) for e in _as_tuple(emotions)}
    sps = None if speakers is None else {normalize_speaker(s) for s in _as_tuple(speakers)}

    found: dict[tuple[str, str, str], Recording] = {}
    duplicates: list[tuple[Path, Path]] = []
    ignored: list[tuple[Path, str]] = []
    n_seen = 0
    for path in candidate_files(root):
        prefix = path.name.split("_", 1)[0].upper()
        if prefix not in _SPEAKER_ALIASES:
            ignored.append((path, "not a TESS file name"))
            continue
        try:
            rec = Recording(path, *parse_name(path))
        except ValueError as exc:
            if strict:
                raise
            ignored.append((path, str(exc)))
            continue
        n_seen += 1
        if ((ems is not None and rec.emotion not in ems)
                or (sps is not None and rec.speaker not in sps)):
            continue
        other = found.get(rec.key)
        if other is None:
            found[rec.key] = rec
            continue
        if not _same_content(other.path, rec.path):
            raise ValueError(
                f"two different files claim {rec.speaker} / {rec.word!r} / {rec.emotion}: "
                f"{other.path} and {rec.path}; remove one of them")
        # keep the copy nearest the root (then the first in sorted order)
        keep, drop = sorted((other.path, rec.path), key=lambda q: (len(q.parts), str(q)))
        found[rec.key] = Recording(keep, *rec.key)
        duplicates.append((keep, drop))

    if n_seen == 0:
        raise FileNotFoundError(
            f"no TESS recordings (files named SPEAKER_word_emotion.wav, e.g. YAF_back_happy.wav) "
            f"found below {root}")
    if not found:
        raise FileNotFoundError(
            f"no recordings below {root} match emotions={sorted(ems) if ems else 'all'}, "
            f"speakers={sorted(sps) if sps else 'all'} ({n_seen} other recordings are there)")
    order = {e: i for i, e in enumerate(EMOTIONS)}
    records = sorted(found.values(), key=lambda r: (order[r.emotion], r.speaker, r.word))
    return Catalog(records, len(duplicates), duplicates, ignored, root)
