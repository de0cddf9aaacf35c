"""Checking a TESS copy against the published SHA-256 checksums shipped with the package.

Chapter: chapters/01_data.ipynb
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .tess import candidate_files, parse_name

__all__ = ["Checksum", "VerifyReport", "load_checksums", "sha256_file", "verify"]


@dataclass(frozen=True)
class Checksum:
    """One row of ``tess-sha256.tsv``: a published file's name, digest and size.

    Chapter: chapters/01_data.ipynb
    """

    file: str
    sha256: str
    bytes: int
    folder: str = ""


def load_checksums(source: str | os.PathLike | dict | None = None) -> dict[str, Checksum]:
    """Read a checksum list (``folder, file, sha256, bytes`` TSV) keyed by file name.

    Args:
        source: a TSV path, an already-built ``{file: Checksum}`` dict, or None for the list of
            all 2800 published TESS files shipped with the package.

    Returns:
        dict: ``{file name: Checksum}``.

    Chapter: chapters/01_data.ipynb
    """
    if isinstance(source, dict):
        return source
    if source is None:
        text = resources.files("emoser.data").joinpath("tess-sha256.tsv").read_text("utf-8")
    else:
        text = Path(source).read_text("utf-8")
    out: dict[str, Checksum] = {}
    for i, line in enumerate(text.splitlines()):
        cols = line.rstrip("\n").split("\t")
        if i == 0 and cols[:2] == ["folder", "file"]:
            continue
        if len(cols) != 4:
            if line.strip():
                raise ValueError(f"{source or 'tess-sha256.tsv'} line {i + 1}: expected 4 columns")
            continue
        folder, name, digest, size = cols
        out[name] = Checksum(name, digest.lower(), int(size), folder)
    return out


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 digest of a file (read in 1 MiB blocks).

    Chapter: chapters/01_data.ipynb
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class VerifyReport:
    """Result of :func:`verify`.

    Attributes:
        missing: names in the checksum list not found in the folder.
        altered: paths whose content differs from the published file of that name.
        unknown: files named like TESS recordings (``SPEAKER_word_emotion.wav``) whose name is
            not in the checksum list.
        ok: paths that match their checksum.
        ignored: audio files whose name is no TESS name (e.g. test files of an installed
            package): not part of a TESS copy, so neither unknown nor altered.
        skipped: ``(folder, reason)`` for every folder not searched (hidden, environment and
            cache folders, a link to a folder searched already) and every broken link.
        folder: the folder searched.
        files_seen: audio files looked at (TESS names or not).

    Chapter: chapters/01_data.ipynb
    """

    missing: list[str] = field(default_factory=list)
    altered: list[Path] = field(default_factory=list)
    unknown: list[Path] = field(default_factory=list)
    ok: list[Path] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    folder: Path | None = None
    files_seen: int = 0

    @property
    def found(self) -> int:
        """Files with TESS names that were checked (ok, altered or unknown)."""
        return len(self.ok) + len(self.altered) + len(self.unknown)

    @property
    def intact(self) -> bool:
        """True when TESS files were found and none is altered or unknown (files may be
        missing: a subset is fine; a folder without any TESS file is not a TESS copy)."""
        return self.found > 0 and not self.altered and not self.unknown

    @property
    def complete(self) -> bool:
        """True when intact and nothing is missing."""
        return self.intact and not self.missing

    def searched(self, limit: int = 5) -> str:
        """One line: the folder, the audio files looked at, the folders skipped (the first
        ``limit`` of them, with the reason)."""
        def rel(path: Path) -> str:
            try:
                return str(path.relative_to(self.folder)) if self.folder else str(path)
            except ValueError:
                return str(path)
        s = f"searched {self.folder}: {self.files_seen} audio files looked at"
        if self.ignored:
            s += f" ({len(self.ignored)} without a TESS name, ignored)"
        if self.skipped:
            shown = "; ".join(f"{rel(p)} ({why})" for p, why in self.skipped[:limit])
            more = "; ..." if len(self.skipped) > limit else ""
            s += f", {len(self.skipped)} skipped: {shown}{more}"
        return s

    def summary(self, limit: int = 5) -> str:
        """What was searched, the counts, and the first ``limit`` names of each problem."""
        def names(xs):
            shown = ", ".join(Path(x).name if not isinstance(x, str) else x for x in xs[:limit])
            return shown + (", ..." if len(xs) > limit else "")
        s = f"{len(self.ok)} ok, {len(self.missing)} missing, {len(self.altered)} altered, " \
            f"{len(self.unknown)} unknown"
        if self.folder is not None:
            s = self.searched(limit) + "\n" + s
        if not self.found:
            s += "\n  no TESS files (named SPEAKER_word_emotion.wav, e.g. YAF_back_happy.wav) found"
        for label, xs in (("altered", self.altered), ("unknown", self.unknown),
                          ("missing", self.missing)):
            if xs:
                s += f"\n  {label}: {names(xs)}"
        return s

    def __str__(self) -> str:
        return self.summary()


def _tess_name(path: Path) -> bool:
    try:
        parse_name(path)
    except ValueError:
        return False
    return True


def verify(folder: str | os.PathLike, checksums: str | os.PathLike | dict | None = None
           ) -> VerifyReport:
    """Check every audio file below ``folder`` against the published checksums (by file name).

    Hidden, environment and cache folders (``.venv`` or any folder with a ``pyvenv.cfg``,
    ``site-packages``, ``__pycache__``, ``.git``, ``node_modules``, ``.cache``) are not
    searched; linked folders are followed, each real folder once. The report says what was
    searched and skipped; audio files whose name is no TESS name are ignored, not unknown.

    Args:
        folder: a TESS copy in any layout.
        checksums: TSV path or dict (see :func:`load_checksums`); default: the shipped list.

    Returns:
        VerifyReport: missing, altered, unknown and ok files; ``found == 0`` when the folder
        holds no TESS file at all (then it is not ``intact``).

    Raises:
        FileNotFoundError: ``folder`` does not exist.

    Chapter: chapters/01_data.ipynb
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist or is not a folder")
    table = load_checksums(checksums)
    report = VerifyReport(folder=folder)
    seen: set[str] = set()
    for path in candidate_files(folder, report.skipped):
        report.files_seen += 1
        entry = table.get(path.name)
        if entry is None:
            (report.unknown if _tess_name(path) else report.ignored).append(path)
            continue
        seen.add(path.name)
        if path.stat().st_size == entry.bytes and sha256_file(path) == entry.sha256:
            report.ok.append(path)
        else:
            report.altered.append(path)
    report.missing = sorted(set(table) - seen)
    return report
