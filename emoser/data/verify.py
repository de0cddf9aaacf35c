"""Checking a TESS copy against the published SHA-256 checksums shipped with the package.

Chapter: chapters/01_data.ipynb
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .tess import _candidate_files

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
        unknown: audio files whose name is not in the checksum list.
        ok: paths that match their checksum.

    Chapter: chapters/01_data.ipynb
    """

    missing: list[str] = field(default_factory=list)
    altered: list[Path] = field(default_factory=list)
    unknown: list[Path] = field(default_factory=list)
    ok: list[Path] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        """True when no file is altered or unknown (files may be missing: a subset is fine)."""
        return not self.altered and not self.unknown

    @property
    def complete(self) -> bool:
        """True when intact and nothing is missing."""
        return self.intact and not self.missing

    def summary(self, limit: int = 5) -> str:
        """Counts, and the first ``limit`` names of each problem."""
        def names(xs):
            shown = ", ".join(Path(x).name if not isinstance(x, str) else x for x in xs[:limit])
            return shown + (", ..." if len(xs) > limit else "")
        s = f"{len(self.ok)} ok, {len(self.missing)} missing, {len(self.altered)} altered, " \
            f"{len(self.unknown)} unknown"
        for label, xs in (("altered", self.altered), ("unknown", self.unknown),
                          ("missing", self.missing)):
            if xs:
                s += f"\n  {label}: {names(xs)}"
        return s

    def __str__(self) -> str:
        return self.summary()


def verify(folder: str | os.PathLike, checksums: str | os.PathLike | dict | None = None
           ) -> VerifyReport:
    """Check every audio file below ``folder`` against the published checksums (by file name).

    Args:
        folder: a TESS copy in any layout.
        checksums: TSV path or dict (see :func:`load_checksums`); default: the shipped list.

    Returns:
        VerifyReport: missing, altered, unknown and ok files.

    Raises:
        FileNotFoundError: ``folder`` does not exist.

    Chapter: chapters/01_data.ipynb
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist or is not a folder")
    table = load_checksums(checksums)
    report = VerifyReport()
    seen: set[str] = set()
    for path in _candidate_files(folder):
        entry = table.get(path.name)
        if entry is None:
            report.unknown.append(path)
            continue
        seen.add(path.name)
        if path.stat().st_size == entry.bytes and sha256_file(path) == entry.sha256:
            report.ok.append(path)
        else:
            report.altered.append(path)
    report.missing = sorted(set(table) - seen)
    return report
