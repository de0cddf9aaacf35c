"""One call from "which emotions" to waveforms and labels: :func:`load_tess`.

Chapter: chapters/01_data.ipynb
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..common import DEFAULT_RATE
from .audio import LoadReport, load_waveforms
from .config import TessDownloadFailed, TessNotFoundError, resolve_data_dir
from .download import TESS_DOI
from .standin import make_standin_corpus, standin_info, standin_source
from .tess import EMOTIONS, Recording, find_recordings, normalize_emotion

__all__ = ["TessData", "load_tess"]


@dataclass
class TessData:
    """Waveforms, labels and provenance of a loaded task.

    Attributes:
        waves: 1-D float32 arrays at ``rate``.
        labels: int64 class indices into ``classes``.
        classes: emotion names, in :data:`EMOTIONS` order.
        records: the :class:`Recording` of each wave.
        report: what loading resampled or skipped.
        source: ``"TESS (real recordings, ...)"`` or
            ``"STAND-IN synthetic corpus (...), not TESS"``;
            it names no folder, so a chapter can print it without storing a machine's path.
        is_standin: True when the data are the generated stand-in, not TESS.
        rate: sampling rate in Hz.
        duplicates_dropped: identical copies found more than once and kept once.

    Chapter: chapters/01_data.ipynb
    """

    waves: list[np.ndarray]
    labels: np.ndarray
    classes: tuple[str, ...]
    records: list[Recording]
    report: LoadReport
    source: str
    is_standin: bool
    rate: int = DEFAULT_RATE
    duplicates_dropped: int = 0
    root: Path | None = None

    def __len__(self) -> int:
        return len(self.waves)

    def counts(self) -> dict[str, int]:
        """Number of recordings per class."""
        c = Counter(int(i) for i in self.labels)
        return {name: c.get(i, 0) for i, name in enumerate(self.classes)}

    @property
    def speakers(self) -> tuple[str, ...]:
        """Speakers present, sorted."""
        return tuple(sorted({r.speaker for r in self.records}))

    def summary(self) -> str:
        """A few lines for a chapter: source, counts per class, speakers, rate, durations."""
        secs = np.array([len(w) for w in self.waves]) / self.rate if self.waves else np.zeros(1)
        lines = [
            f"source: {self.source}",
            f"{len(self)} recordings: " + ", ".join(f"{k} {v}" for k, v in self.counts().items()),
            f"speakers: {', '.join(self.speakers)}; rate {self.rate} Hz; "
            f"durations {secs.min():.2f}-{secs.max():.2f} s (mean {secs.mean():.2f} s)",
        ]
        if self.duplicates_dropped:
            lines.append(f"duplicate copies dropped: {self.duplicates_dropped}")
        if self.report.resampled:
            lines.append("resampled: " + ", ".join(f"{Path(p).name} ({r} Hz)"
                                                   for p, r in self.report.resampled))
        if self.report.skipped:
            lines.append("SKIPPED: " + ", ".join(f"{Path(p).name} ({why})"
                                                 for p, why in self.report.skipped))
        if self.is_standin:
            lines.append("NOTE: results on this stand-in corpus are NOT TESS results.")
        return "\n".join(lines)

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts().items())
        tag = "STAND-IN, not TESS" if self.is_standin else "TESS"
        return (f"TessData({len(self)} recordings [{tag}]: {counts}; "
                f"speakers={','.join(self.speakers)}; rate={self.rate})")


def load_tess(emotions: Iterable[str] = ("happy", "sad"), speakers: Iterable[str] = ("YAF",),
              path: str | os.PathLike | None = None, rate: int = DEFAULT_RATE,
              allow_standin: bool = True, *, download: bool | None = None,
              standin: bool = False, skip_bad: bool = False, cache: bool = True,
              progress: bool = False) -> TessData:
    """Find, filter and load a TESS task; fall back to the stand-in corpus when there is no TESS.

    The folder comes from :func:`resolve_data_dir` (``path``, ``$EMOSER_TESS_DIR``, the cache,
    a download when asked or in Colab). When none is found and ``allow_standin`` is True, the
    generated stand-in corpus is used with a printed warning and ``is_standin=True``; so it is
    when the automatic download in Colab fails (a broken, truncated or unreachable archive: one
    warning line saying why). A set but wrong ``path`` or ``$EMOSER_TESS_DIR`` is always an
    error, never a fallback, and so is a failed download asked for with ``download=True``.

    Args:
        emotions: emotions to load (default happy and sad: the original exercise).
        speakers: speakers to load (default the younger actress, YAF).
        path: TESS folder (any layout).
        rate (int): working rate in Hz (files at other rates are resampled).
        allow_standin (bool): use the stand-in corpus when no TESS can be found.
        download (bool | None): see :func:`resolve_data_dir`.
        standin (bool): use the stand-in corpus even if TESS is available.
        skip_bad (bool): skip unreadable/empty/silent files (listed in ``report.skipped``).
        cache (bool): use the decoded-audio cache.
        progress (bool): progress bar while decoding.

    Returns:
        TessData: waves, labels (indices into ``classes``), classes (requested emotions in
        :data:`EMOTIONS` order), records, report, source, is_standin.

    Example:
        >>> data = load_tess()          # YAF happy vs sad  # doctest: +SKIP
        >>> print(data.summary())       # doctest: +SKIP

    Chapter: chapters/01_data.ipynb
    """
    emotions = (emotions,) if isinstance(emotions, str) else tuple(emotions)
    speakers = (speakers,) if isinstance(speakers, str) else tuple(speakers)
    wanted = {normalize_emotion(e) for e in emotions}
    classes = tuple(e for e in EMOTIONS if e in wanted)
    if not classes or not speakers:
        raise ValueError("load_tess needs at least one emotion and one speaker")
    if standin:
        root = make_standin_corpus()
    else:
        try:
            root = resolve_data_dir(path, download=download)
        except TessNotFoundError as exc:
            if not allow_standin:
                raise
            root = make_standin_corpus()
            if isinstance(exc, TessDownloadFailed):  # one line: what failed, what happens now
                print(f"WARNING: {str(exc).rstrip('.')}. This run goes on with the "
                      f"{standin_source(root)}; its results are not TESS results.",
                      file=sys.stderr)
            else:
                print(f"WARNING: no TESS copy found, using the {standin_source(root)}.\n"
                      f"Its results are not TESS results. {exc}", file=sys.stderr)
    is_standin = standin_info(root) is not None
    source = standin_source(root) if is_standin else f"TESS (real recordings, DOI {TESS_DOI})"
    catalog = find_recordings(root, emotions=classes, speakers=speakers)
    absent = [c for c in classes if c not in catalog.classes()]
    if absent:
        raise FileNotFoundError(f"no recordings of {', '.join(absent)} for speakers "
                                f"{', '.join(speakers)} below {root} (found: {catalog.summary()})")
    waves, report = load_waveforms(catalog.records, rate=rate, skip_bad=skip_bad, cache=cache,
                                   progress=progress)
    skipped = {Path(p) for p, _ in report.skipped}
    records = [r for r in catalog.records if r.path not in skipped]
    labels = np.array([classes.index(r.emotion) for r in records], dtype=np.int64)
    return TessData(waves, labels, classes, records, report, source, is_standin, int(rate),
                    catalog.duplicates_dropped, Path(root))
