"""Downloading TESS from the Borealis Dataverse: resumable, safely extracted, checksum-verified.

The archive is streamed to ``<target>.download.part`` beside the target folder (an interrupted
transfer resumes from there with an HTTP Range request, or restarts if the server cannot resume),
extracted into a temporary folder beside the target (entries with absolute paths, ``..``
components or links are refused), every recording is checked against the shipped SHA-256 list,
sorted into ``<target>/<SPEAKER>_<emotion>/<file>``, and only then moved into place with one
atomic rename. A failure leaves no half-made data folder behind. A transfer that stalls (less
than ``stall_bytes`` arriving in ``stall_seconds``) gives up with a message that says so, and an
existing folder that does not hold TESS is never written into.

Chapter: chapters/01_data.ipynb
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import stat
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from .cache import cache_dir
from .tess import SPEAKERS, candidate_files, parse_name
from .verify import load_checksums, sha256_file

__all__ = ["TESS_DOI", "TESS_URL", "DownloadError", "UnsafeArchiveError", "ChecksumError",
           "download_tess"]

#: DOI of the Toronto Emotional Speech Set (Dupuis & Pichora-Fuller, 2010; CC BY-NC-ND 4.0).
TESS_DOI = "10.5683/SP2/E8H2MF"
#: Dataverse API URL returning the whole data set as one zip archive (about 270 MB).
TESS_URL = ("https://borealisdata.ca/api/access/dataset/:persistentId/"
            f"?persistentId=doi:{TESS_DOI}")

_MANUAL = (f"Alternatively download TESS by hand from https://doi.org/{TESS_DOI}, unpack it "
           "anywhere and set EMOSER_TESS_DIR to that folder.")
_MAX_UNPACKED = 8 << 30  # refuse archives claiming more than 8 GiB unpacked
_MAX_NESTING = 3
#: A transfer gives up when less than STALL_BYTES arrive in STALL_SECONDS (it resumes later).
STALL_SECONDS = 60.0
STALL_BYTES = 1 << 20


class DownloadError(RuntimeError):
    """The download failed; the message says what failed and what was kept.

    Chapter: chapters/01_data.ipynb
    """


class UnsafeArchiveError(DownloadError):
    """An archive entry would land outside the extraction folder (absolute path, ``..``, link).

    Chapter: chapters/01_data.ipynb
    """


class ChecksumError(DownloadError):
    """Extracted recordings do not match the published checksums (or some are missing).

    Chapter: chapters/01_data.ipynb
    """


class _TransferError(Exception):
    """A transient transfer problem worth retrying (connection dropped, cut off, stalled, 5xx)."""


def _size(n: float) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} bytes"


def _local_error(exc: OSError, what: str, path: Path | None = None) -> DownloadError:
    """A DownloadError naming the local file and the system's own words for the cause."""
    where = path if path is not None else exc.filename
    return DownloadError(f"cannot {what} {where}: {exc.strerror or exc}")


def _stall_rule(stall_seconds: float, stall_bytes: int) -> str:
    return f"less than {_size(stall_bytes)} arrives in {stall_seconds:g} s"


def _total_from_content_range(value: str | None) -> int | None:
    m = re.search(r"/(\d+)\s*$", value or "")
    return int(m.group(1)) if m else None


def _fetch_once(url: str, part: Path, progress: bool, timeout: float,
                stall: tuple[float, int] = (STALL_SECONDS, STALL_BYTES)) -> None:
    stall_seconds, stall_bytes = stall
    timeout = min(timeout, stall_seconds)  # a silent connection is a stall too
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "emoser (course package; python urllib)"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            if _total_from_content_range(exc.headers.get("Content-Range")) == have:
                return  # the part file is already complete
            part.unlink()
            raise _TransferError("server refused to resume; restarting from the beginning")
        if exc.code >= 500:
            raise _TransferError(f"HTTP {exc.code} {exc.reason}")
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}. {_MANUAL}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, socket.gaierror):  # no name service: offline, retrying is futile
            host = urllib.parse.urlsplit(url).hostname
            raise DownloadError(f"{url}: cannot look up {host} ({reason.strerror or reason}); "
                                "are you offline? No data folder was created. " + _MANUAL)
        raise _TransferError(f"cannot connect: {reason}")
    with resp:
        length = resp.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if have and resp.status == 206:
            mode, total = "ab", _total_from_content_range(resp.headers.get("Content-Range"))
        else:  # the server sent everything again
            mode, have, total = "wb", 0, length
        got = 0
        from tqdm.auto import tqdm
        bar_opts = {} if progress else {"disable": True}  # TQDM_DISABLE still applies
        try:
            fh = open(part, mode)  # noqa: SIM115 - closed below
        except OSError as exc:
            raise _local_error(exc, "write", part) from exc
        window, in_window = time.monotonic(), 0  # bytes that arrived since ``window``
        with fh, tqdm(total=total, initial=have, unit="B", unit_scale=True, desc="TESS",
                      **bar_opts) as bar:
            while True:
                try:
                    chunk = resp.read1(1 << 16)  # what has arrived: a trickle cannot hide
                except TimeoutError:
                    raise _TransferError(f"stalled: nothing arrived in {timeout:g} s "
                                         f"(after {have + got} bytes)")
                except (http.client.HTTPException, OSError) as exc:
                    raise _TransferError(f"connection lost after {have + got} bytes ({exc!r})")
                if not chunk:
                    break
                try:
                    fh.write(chunk)
                except OSError as exc:
                    raise _local_error(exc, "write", part) from exc
                got += len(chunk)
                in_window += len(chunk)
                bar.update(len(chunk))
                now = time.monotonic()
                if now - window >= stall_seconds:
                    if in_window < stall_bytes:
                        raise _TransferError(
                            f"stalled: only {in_window} bytes arrived in the last "
                            f"{now - window:.0f} s (after {have + got} bytes; the download "
                            f"gives up when {_stall_rule(stall_seconds, stall_bytes)})")
                    window, in_window = now, 0
    if length is not None and got < length:
        raise _TransferError(f"transfer cut off after {have + got} of {have + length} bytes")


def _fetch(url: str, part: Path, progress: bool, retries: int, timeout: float,
           backoff: float, stall: tuple[float, int] = (STALL_SECONDS, STALL_BYTES)) -> None:
    sidecar = part.with_name(part.name + ".json")
    try:
        previous = json.loads(sidecar.read_text())["url"] if sidecar.exists() else None
    except (OSError, ValueError, KeyError):
        previous = None
    if part.exists() and previous != url:
        part.unlink()  # a part file from another URL cannot be resumed
    try:
        sidecar.write_text(json.dumps({"url": url}))
    except OSError as exc:
        raise _local_error(exc, "write", sidecar) from exc
    for attempt in range(retries + 1):
        try:
            _fetch_once(url, part, progress, timeout, stall)
            return
        except _TransferError as exc:
            last = exc
            if attempt < retries:
                time.sleep(backoff * 2 ** attempt)
        except DownloadError:  # not worth retrying (offline, HTTP 404, cannot write)
            if not part.exists():
                sidecar.unlink(missing_ok=True)  # nothing to resume: leave nothing behind
            raise
    kept = part.stat().st_size if part.exists() else 0
    if kept:
        kept_note = (f"{kept} bytes are kept in {part}; downloading again resumes "
                     "(delete that file to start over)")
    else:
        part.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)
        kept_note = "Nothing was kept"
    raise DownloadError(
        f"downloading {url} failed after {retries + 1} attempt(s): {last}. {kept_note}. "
        f"No data folder was created. {_MANUAL}")


def _check_member(info: zipfile.ZipInfo, archive: Path) -> None:
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in name.split("/"):
        raise UnsafeArchiveError(f"{archive.name}: entry {info.filename!r} would be extracted "
                                 "outside the target folder; archive refused")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise UnsafeArchiveError(f"{archive.name}: entry {info.filename!r} is a symbolic link; "
                                 "archive refused")


def _safe_extract(archive: Path, dest: Path, depth: int = 0) -> None:
    """Extract ``archive`` into ``dest`` after checking every entry; unpack nested zips too."""
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                _check_member(info, archive)
            if sum(i.file_size for i in infos) > _MAX_UNPACKED:
                raise UnsafeArchiveError(f"{archive.name}: claims more than 8 GiB unpacked; "
                                         "refused")
            dest.mkdir(parents=True, exist_ok=True)
            root = dest.resolve()
            for info in infos:
                if not (dest / info.filename).resolve().is_relative_to(root):
                    raise UnsafeArchiveError(f"{archive.name}: entry {info.filename!r} escapes "
                                             "the target folder; archive refused")
                zf.extract(info, dest)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise DownloadError(f"{archive.name} is not a complete zip archive ({exc})") from exc
    if depth < _MAX_NESTING:
        for inner in sorted(dest.rglob("*.zip")):
            _safe_extract(inner, inner.with_name(inner.stem + "_unzipped"), depth + 1)
            inner.unlink()


def _collect(extracted: Path, staging: Path, table: dict, require_complete: bool) -> int:
    """Verify the extracted recordings and move them into ``staging/<SPEAKER>_<emotion>/``."""
    found: dict[str, Path] = {}
    altered, unknown = [], []
    by_digest = {c.sha256: name for name, c in table.items()}
    for path in candidate_files(extracted):
        entry = table.get(path.name)
        if entry is None:
            if path.name.split("_", 1)[0].upper() in SPEAKERS + ("OA",):
                # a published file under another name is still that file: install it by its
                # published name, so that verify() recognises it later
                name = by_digest.get(sha256_file(path))
                if name is None:
                    unknown.append(path)
                elif name not in found:
                    found[name] = path
            continue
        if path.stat().st_size != entry.bytes or sha256_file(path) != entry.sha256:
            altered.append(path)
        elif path.name not in found:
            found[path.name] = path  # identical extra copies (nested extractions) are dropped
    problems = []
    if altered:
        problems.append(f"{len(altered)} file(s) differ from the published checksums: "
                        + ", ".join(str(p.relative_to(extracted)) for p in altered[:5]))
    if unknown:
        problems.append(f"{len(unknown)} recording(s) not in the checksum list: "
                        + ", ".join(str(p.relative_to(extracted)) for p in unknown[:5]))
    missing = sorted(set(table) - set(found))
    if missing and require_complete:
        note = ""
        if any(extracted.rglob("MANIFEST.TXT")):
            note = " (see MANIFEST.TXT in the archive: the server may have left files out)"
        problems.append(f"{len(missing)} of {len(table)} published recordings are missing from "
                        f"the archive{note}: " + ", ".join(missing[:5]))
    if problems:
        raise ChecksumError("download rejected, nothing was installed: " + "; ".join(problems))
    for name, path in found.items():
        speaker, _word, emotion = parse_name(name)
        folder = staging / f"{speaker}_{emotion}"
        folder.mkdir(parents=True, exist_ok=True)
        os.replace(path, folder / name)
    return len(found)


def _published_held(folder: Path, table: dict, limit: int = 200_000) -> int:
    """How many names of the checksum list are files under ``folder`` (links not followed)."""
    names, seen = set(), 0
    for _root, _dirs, files in os.walk(folder):
        names.update(f for f in files if f in table)
        seen += len(files)
        if len(names) == len(table) or seen > limit:  # a huge folder is not a TESS copy
            break
    return len(names)


def download_tess(target: str | os.PathLike | None = None, url: str = TESS_URL,
                  progress: bool = True, *, checksums: str | os.PathLike | dict | None = None,
                  force: bool = False, retries: int = 3, timeout: float = 60.0,
                  backoff: float = 1.0, require_complete: bool = True,
                  stall_seconds: float = STALL_SECONDS, stall_bytes: int = STALL_BYTES,
                  archive: str | os.PathLike | None = None) -> Path:
    """Download TESS, verify every recording, and install it atomically.

    Args:
        target: destination folder (default ``<cache>/tess``, see :func:`cache_dir`). Must not
            exist yet, or be empty, unless ``force``. An existing folder that holds every
            recording of the checksum list (by name) is returned as is; any other non-empty
            folder is refused (DownloadError) rather than written into.
        url (str): archive URL (default: the Borealis Dataverse API for doi:10.5683/SP2/E8H2MF).
        progress (bool): show a tqdm progress bar (``TQDM_DISABLE=1`` also hides it).
        checksums: checksum list (default: the shipped ``tess-sha256.tsv``).
        force (bool): replace an existing target (only after the new copy verified).
        retries (int): extra attempts after a dropped or cut-off transfer (each resumes).
        timeout (float): socket timeout in seconds.
        backoff (float): seconds before the first retry (doubling each time).
        require_complete (bool): every file in the checksum list must be in the archive.
        stall_seconds (float), stall_bytes (int): give up (keeping the partial file) when less
            than ``stall_bytes`` arrive in ``stall_seconds`` (default 1 MiB in 60 s), so a
            connection that trickles cannot hang forever.
        archive: keep the downloaded zip archive at this path (e.g. on Google Drive, see
            ``emoser.course.colab``) instead of a temporary file beside ``target``. When it
            already holds a complete zip archive, it is installed from there without any
            download; an interrupted transfer resumes there; an archive that proves broken or
            incomplete is deleted, so that the next call downloads it afresh.

    Returns:
        Path: the installed folder, laid out as ``<SPEAKER>_<emotion>/<file>``.

    Raises:
        DownloadError: transfer failed or stalled (the partial file is kept for resuming), the
            host cannot be looked up (offline), a local file cannot be written (the message
            names it and the cause), the target is a file or a non-empty folder without TESS,
            or the archive is broken; UnsafeArchiveError / ChecksumError (subclasses) for unsafe
            entries or recordings that do not match the published checksums.

    Chapter: chapters/01_data.ipynb
    """
    target = Path(target).expanduser() if target is not None else cache_dir() / "tess"
    if not stall_seconds > 0 or not stall_bytes >= 0:
        raise ValueError(f"stall_seconds={stall_seconds!r}, stall_bytes={stall_bytes!r}: "
                         "expected a positive time and a byte count")
    if target.exists() and not target.is_dir():
        raise DownloadError(f"{target} exists and is not a folder; choose a folder to download "
                            "TESS into")
    table = load_checksums(checksums)
    try:
        nonempty = target.is_dir() and any(target.iterdir())
    except OSError as exc:
        raise _local_error(exc, "read the folder", target) from exc
    if nonempty and not force:
        held = _published_held(target, table)
        if held == len(table):
            return target
        if held == 0:
            raise DownloadError(f"{target} is not empty and holds no TESS recordings; refusing "
                                "to download into it (choose a new or empty folder)")
        raise DownloadError(f"{target} holds only {held} of the {len(table)} TESS recordings; "
                            f"check it with 'python -m emoser verify {target}', or download into "
                            "a new or empty folder")
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _local_error(exc, "create the folder", exc.filename or parent) from exc
    if archive is None:
        part = parent / f".{target.name}.download.part"
    else:
        part = Path(archive).expanduser()
        try:
            part.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _local_error(exc, "create the folder", exc.filename or part.parent) from exc
    if archive is None or not zipfile.is_zipfile(part):  # a kept, complete archive: no download
        _fetch(url, part, progress, retries, timeout, backoff, (stall_seconds, stall_bytes))
    try:
        _install(part, target, table, url, require_complete)
    except DownloadError:
        raise
    except OSError as exc:  # the download is fine and kept: only unpacking or moving failed
        raise _local_error(exc, f"unpack the download into {parent}:",
                           exc.filename or parent) from exc
    if archive is None:
        part.unlink(missing_ok=True)
    part.with_name(part.name + ".json").unlink(missing_ok=True)
    return target


def _install(part: Path, target: Path, table: dict, url: str, require_complete: bool) -> None:
    """Extract, verify and sort the downloaded archive, then move it into ``target``."""
    parent = target.parent
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-work-", dir=parent))
    try:
        try:
            _safe_extract(part, work / "extracted")
            staging = work / "staging"
            staging.mkdir()
            n = _collect(work / "extracted", staging, table, require_complete)
        except DownloadError:
            part.unlink(missing_ok=True)  # the content is bad: resuming it cannot help
            part.with_name(part.name + ".json").unlink(missing_ok=True)
            raise
        (staging / "TESS-SOURCE.txt").write_text(
            "Toronto Emotional Speech Set (TESS), Kate Dupuis and M. Kathleen Pichora-Fuller,\n"
            f"University of Toronto, 2010. doi:{TESS_DOI}. Licence: CC BY-NC-ND 4.0.\n"
            f"Downloaded from {url} on {time.strftime('%Y-%m-%d')}; {n} recordings verified "
            "against their published SHA-256 checksums by emoser.\n")
        old = None
        if target.is_dir():
            if any(target.iterdir()):
                old = work / "previous"
                os.replace(target, old)
            else:
                target.rmdir()
        try:
            os.replace(staging, target)
        except OSError:
            if old is not None:
                os.replace(old, target)
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
