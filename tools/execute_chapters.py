"""Re-execute the chapter notebooks in place, top to bottom, and clean what they store.

Usage (from the repository root)::

    python tools/execute_chapters.py                 # every notebook chapter in _toc.yml
    python tools/execute_chapters.py 02_framing 06   # chapters whose names start with these
    python tools/execute_chapters.py chapters/05_audionet.ipynb

Each notebook runs in a fresh ``python3`` kernel whose working directory is ``chapters/``,
with at most 1800 s per cell. When a cell fails, the notebook is left as it was and the
script exits with status 1. After a successful run the notebook is cleaned before it is
saved (see :func:`clean_notebook`): audio players are removed (TESS recordings must never be
stored in a committed notebook), except a player whose every embedded file is one of the few
TESS files the book may embed, byte for byte (``emoser.course.EMBEDDABLE_TESS``, checked by
SHA-256 against the published checksums); outputs of cells tagged ``remove-output`` are cleared,
widget state is dropped, and empty code cells are deleted so execution counts run 1, 2, 3, ...

A cell that displays an ``ipywidgets.interact`` with more than one control can make nbclient
wait out the whole cell timeout after the cell has finished (jupyter/nbclient#312; nbval, which
CI uses, is not affected). For chapters 2 and 12 pass a short ``--timeout``, e.g. 60 s.

The kernels see ``TQDM_DISABLE=1`` (no progress bars in stored outputs) and the inline
matplotlib backend. ``MPLBACKEND=Agg`` must *not* reach a kernel: it silently stops figures
from being captured, and the book would show none.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import hashlib
import os
import re
import sys
import time
from pathlib import Path
from typing import Iterable, Iterator

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
CELL_TIMEOUT_S = 1800
KERNEL_NAME = "python3"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
KERNEL_ENV = {"TQDM_DISABLE": "1", "MPLBACKEND": INLINE_BACKEND}
WIDGET_MIME_PREFIX = "application/vnd.jupyter.widget"
ENV_NEW_RESULTS = "EMOSER_NEW_RESULTS"  # emoser.course.reproduce.ENV_NEW_RESULTS (a test checks)


def toc_files(root: Path = ROOT) -> list[str]:
    """Return the documents of ``_toc.yml`` in book order (root first), without extensions."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if key in node:
                    found.append(str(node[key]))
            for key in ("parts", "chapters", "sections"):
                walk(node.get(key))
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return found


def chapter_notebooks(root: Path = ROOT) -> list[Path]:
    """Return the notebook chapters listed in ``_toc.yml`` that exist, in book order."""
    paths = [root / f"{doc}.ipynb" for doc in toc_files(root)]
    return [p for p in paths if p.is_file()]


def select_chapters(names: Iterable[str], root: Path = ROOT) -> list[Path]:
    """Map command-line names (paths, stems or stem prefixes) to chapter notebooks.

    Raises:
        FileNotFoundError: when a name matches no chapter.
    """
    chapters = chapter_notebooks(root)
    selected: list[Path] = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.is_file():
            matches = [path.resolve()]
        else:
            stem = path.name.removesuffix(".ipynb")
            matches = [p for p in chapters if p.stem == stem] or [
                p for p in chapters if p.stem.startswith(stem)]
        if not matches:
            known = ", ".join(p.stem for p in chapters) or "none"
            raise FileNotFoundError(f"no chapter notebook matches {name!r} (chapters: {known})")
        selected.extend(m for m in matches if m not in selected)
    return selected


def _is_audio(output: dict) -> bool:
    data = output.get("data", {}) or {}
    if any(mime.startswith("audio/") for mime in data):
        return True
    html = data.get("text/html", "")
    if isinstance(html, list):
        html = "".join(html)
    return "<audio" in html.lower()


_DATA_AUDIO = re.compile(r"data:audio/[\w.+-]+;base64,([A-Za-z0-9+/=\s]*)")


def audio_payloads(output: dict) -> list[bytes | None]:
    """The audio files an output embeds: ``audio/*`` data and ``data:audio/...`` URLs in HTML.

    An entry is None when a payload is not valid base64 (it can never be an allowed file).
    """
    data = output.get("data", {}) or {}
    encoded = []
    for mime, value in data.items():
        text = "".join(value) if isinstance(value, list) else str(value)
        if mime.startswith("audio/"):
            encoded.append(text)
        elif mime == "text/html":
            encoded += _DATA_AUDIO.findall(text)
    payloads: list[bytes | None] = []
    for text in encoded:
        try:
            payloads.append(base64.b64decode("".join(text.split()), validate=True))
        except (binascii.Error, ValueError):
            payloads.append(None)
    return payloads


def allowed_audio_checksums() -> set[str]:
    """SHA-256 digests of the TESS files a stored notebook may embed (the published ones)."""
    from emoser.course import embeddable_checksums

    return set(embeddable_checksums().values())


def is_allowed_audio(output: dict, allowed: set[str]) -> bool:
    """True when ``output`` embeds at least one file and every one is an allowed TESS file."""
    payloads = audio_payloads(output)
    return bool(payloads) and all(
        p is not None and hashlib.sha256(p).hexdigest() in allowed for p in payloads)


def strip_audio(nb, allowed: set[str] | None = None) -> int:
    """Remove every output that carries audio (``audio/*`` data or an HTML ``<audio>``),
    except players of allowed TESS files (``allowed``: their SHA-256 digests; default
    :func:`allowed_audio_checksums`).

    Returns:
        int: the number of outputs removed.
    """
    allowed = allowed_audio_checksums() if allowed is None else allowed
    removed = 0
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        kept = [out for out in cell.get("outputs", [])
                if not _is_audio(out) or is_allowed_audio(out, allowed)]
        removed += len(cell.get("outputs", [])) - len(kept)
        cell["outputs"] = kept
    return removed


def clear_tagged_outputs(nb, tag: str = "remove-output") -> int:
    """Clear the outputs of code cells tagged ``tag``; return how many cells had outputs."""
    cleared = 0
    for cell in nb.cells:
        if cell.get("cell_type") == "code" and tag in cell.get("metadata", {}).get("tags", []):
            if cell.get("outputs"):
                cleared += 1
            cell["outputs"] = []
    return cleared


def clear_widget_state(nb) -> int:
    """Drop widget state and widget views (they need JavaScript from a CDN to show anything).

    An output whose only data was a widget view is removed; otherwise its text fallback is kept.
    Returns the number of outputs changed or removed.
    """
    nb.metadata.pop("widgets", None)
    changed = 0
    for cell in nb.cells:
        cell.get("metadata", {}).pop("widgets", None)
        if cell.get("cell_type") != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data and any(m.startswith(WIDGET_MIME_PREFIX) for m in data):
                changed += 1
                for mime in [m for m in data if m.startswith(WIDGET_MIME_PREFIX)]:
                    del data[mime]
                if set(data) <= {"text/plain"}:
                    continue  # only "HBox(children=...)" or nothing left: drop it
            kept.append(out)
        cell["outputs"] = kept
    return changed


def drop_empty_code_cells(nb) -> int:
    """Delete code cells with no source (the kernel skips them, leaving no execution count)."""
    before = len(nb.cells)
    nb.cells = [c for c in nb.cells
                if not (c.get("cell_type") == "code" and not "".join(c.get("source", "")).strip())]
    return before - len(nb.cells)


def clean_notebook(nb) -> dict:
    """Apply every cleaning step to an executed notebook; return what each step did."""
    return {
        "audio outputs removed": strip_audio(nb),
        "remove-output cells cleared": clear_tagged_outputs(nb),
        "widget outputs dropped": clear_widget_state(nb),
        "empty code cells deleted": drop_empty_code_cells(nb),
    }


@contextlib.contextmanager
def kernel_environment(extra: dict | None = None) -> Iterator[None]:
    """Temporarily set the environment that kernels started inside the block inherit."""
    values = {**KERNEL_ENV, **(extra or {})}
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def execute_notebook(path: Path, timeout: int = CELL_TIMEOUT_S, kernel_name: str = KERNEL_NAME,
                     new_results: bool = False):
    """Execute ``path`` top to bottom in a fresh kernel (cwd: its folder); return the notebook.

    A chapter's headline cells compare their values with the stored notebook
    (:func:`emoser.course.check_reproduced`); ``new_results`` accepts new values instead.

    Raises:
        nbclient.exceptions.CellExecutionError: when a cell raises.
    """
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=False,
                            record_timing=False,
                            resources={"metadata": {"path": str(Path(path).parent)}})
    with kernel_environment({ENV_NEW_RESULTS: "1"} if new_results else None):
        client.execute()
    return nb


def chapters_from_command_line(names: list[str]) -> list[Path] | None:
    """The chapters named on a command line (all in ``_toc.yml`` when none are), or None after
    printing one error line (an unknown name, or no chapter notebooks at all)."""
    try:
        paths = select_chapters(names) if names else chapter_notebooks()
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    if not paths:
        print("error: no chapter notebooks found in _toc.yml", file=sys.stderr)
        return None
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*",
                        help="chapter paths, names or name prefixes (default: all in _toc.yml)")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S, help="seconds per cell")
    parser.add_argument("--kernel", default=KERNEL_NAME, help="kernel name")
    parser.add_argument("--new-results", action="store_true",
                        help="accept headline values that differ from the stored chapter "
                             "(default: a chapter whose headline numbers change fails)")
    args = parser.parse_args(argv)

    from nbclient.exceptions import CellExecutionError

    paths = chapters_from_command_line(args.chapters)
    if paths is None:
        return 2

    failed: list[str] = []
    total = time.perf_counter()
    for path in paths:
        name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        print(f"executing {name} ...", flush=True)
        start = time.perf_counter()
        try:
            nb = execute_notebook(path, timeout=args.timeout, kernel_name=args.kernel,
                                  new_results=args.new_results)
        except CellExecutionError as exc:
            print(f"FAILED {name} after {time.perf_counter() - start:.1f} s; notebook left "
                  f"unchanged:\n{exc}", file=sys.stderr, flush=True)
            failed.append(str(name))
            continue
        report = clean_notebook(nb)
        nbformat.write(nb, path)
        done = ", ".join(f"{k}: {v}" for k, v in report.items() if v)
        print(f"  {name}: {time.perf_counter() - start:.1f} s" + (f" ({done})" if done else ""),
              flush=True)
    print(f"{len(paths) - len(failed)}/{len(paths)} chapters executed in "
          f"{time.perf_counter() - total:.1f} s")
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
