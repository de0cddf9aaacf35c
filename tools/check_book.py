"""Check the built book the way a reader sees it: in a real (headless) browser.

Usage (from the repository root, after ``jupyter-book build .``)::

    python tools/check_book.py _build/html [--screenshots _build/screenshots]

The HTML folder is served on 127.0.0.1 (a free port, a thread of this process). For
``index.html`` and every page of ``_toc.yml`` it checks:

1. the page is served with HTTP 200;
2. every ``<img>`` of the page points to a file of the build that exists and is not empty;
3. a chapter whose notebook stores image outputs shows at least one image from ``_images/``;
4. in Debian's Chromium (headless, driven through the DevTools protocol): no console error,
   no uncaught exception, no failed request for a file of the book, no broken image;
5. what a reader sees: MathJax comes from the book itself (so formulas render offline), no raw
   ``\\(``, ``\\[`` or ``$$`` is left in the rendered prose, and no code cell is wider than
   its block (no horizontal scrolling);
6. no scaffolding in the code a reader sees: no code block shows ``glue(``, ``assert `` or
   ``NBVAL_`` (``tools/tag_cells.py`` moves them into hidden cells); every audio player has
   the TESS credit and licence next to it, in the same figure;

and saves a 1280×2000 screenshot of each page into the screenshots folder. Requests to other
hosts (a CDN for MathJax, say) are not failures: the check may run offline. They are listed
as notes. Exit status 1 with the list of problems, 0 when there is none.
"""
from __future__ import annotations

import argparse
import base64
import collections
import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from execute_chapters import ROOT, toc_files  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--hide-scrollbars", "--mute-audio"]
WINDOW = (1280, 2000)
HIDDEN_OUTPUT_TAGS = {"remove-output", "remove-cell"}


# --------------------------------------------------------------------------- static checks

class _ImageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs).get("src") or "")


def image_sources(html: str) -> list[str]:
    """Return the ``src`` of every ``<img>`` in ``html``, in document order ("" when missing)."""
    parser = _ImageParser()
    parser.feed(html)
    parser.close()
    return parser.sources


def repository_url(root: Path = ROOT) -> str:
    """Return the repository address configured in ``_config.yml`` (its only home)."""
    import yaml

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    return config["repository"]["url"]


def book_pages(root: Path = ROOT) -> list[str]:
    """Return the HTML pages to check: ``index.html`` and one per ``_toc.yml`` entry."""
    return ["index.html"] + [f"{doc}.html" for doc in toc_files(root)]


def notebook_has_figures(path: Path) -> bool:
    """True when the notebook stores an image output in a cell whose output the book shows."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        if HIDDEN_OUTPUT_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        for out in cell.get("outputs", []):
            if any(m.startswith("image/") for m in out.get("data", {}) or {}):
                return True
    return False


def figure_pages(root: Path = ROOT) -> set[str]:
    """Pages (``chapters/xx.html``) whose notebook stores figures, so the page must show some."""
    return {f"{doc}.html" for doc in toc_files(root)
            if (root / f"{doc}.ipynb").is_file() and notebook_has_figures(root / f"{doc}.ipynb")}


def local_file(html_dir: Path, page: str, src: str) -> Path | None:
    """Map an ``<img src>`` of ``page`` to a file under ``html_dir``; None when not local."""
    parts = urlsplit(src)
    if parts.scheme or parts.netloc or src.startswith("data:"):
        return None
    target = urljoin("/" + page, unquote(parts.path))
    return html_dir / target.lstrip("/")


def check_page_files(html_dir: Path, page: str, must_have_figure: bool = False) -> list[str]:
    """Check one built page without a browser: it exists, and so does every image it shows.

    Returns:
        list[str]: problems, each naming the page and the image.
    """
    html_dir = Path(html_dir)
    path = html_dir / page
    if not path.is_file():
        return [f"{page}: page missing from the build"]
    problems = []
    figures = 0
    for src in image_sources(path.read_text(encoding="utf-8", errors="replace")):
        if not src:
            problems.append(f"{page}: <img> without src")
            continue
        if src.startswith("data:"):
            if len(src.partition(",")[2]) == 0:
                problems.append(f"{page}: empty inline image")
            continue
        file = local_file(html_dir, page, src)
        if file is None:
            continue  # an image on another host: not part of the book
        if not file.is_file():
            problems.append(f"{page}: image {src} not found in the build")
        elif file.stat().st_size == 0:
            problems.append(f"{page}: image {src} is empty (0 bytes)")
        elif "_images" in file.relative_to(html_dir).parts[:1]:
            figures += 1
    if must_have_figure and figures == 0:
        problems.append(f"{page}: its notebook stores figures "
                        "but the page shows no image from _images/")
    return problems


def check_files(html_dir: Path, pages: list[str], with_figures: set[str]) -> list[str]:
    """Run :func:`check_page_files` on every page; return all problems."""
    problems = []
    for page in pages:
        problems += check_page_files(html_dir, page, page in with_figures)
    return problems


# --------------------------------------------------------------------------- serving

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature from the base class
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # browser closed a tab early
            super().handle_error(request, client_address)


@dataclass
class Server:
    """The HTML folder served on 127.0.0.1 from a thread; use as a context manager."""

    directory: Path
    httpd: _QuietServer | None = None

    def __enter__(self) -> "Server":
        handler = functools.partial(_QuietHandler, directory=str(self.directory))
        self.httpd = _QuietServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def http_status(url: str) -> int:
    """Return the HTTP status of a GET of ``url``."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


# --------------------------------------------------------------------------- browser

@dataclass
class PageReport:
    """What the browser saw on one page."""

    errors: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)


def classify_events(events: list[dict], session: str, base_url: str,
                    report: PageReport | None = None) -> PageReport:
    """Sort the DevTools events of one tab into the book's errors and other hosts' failures.

    Counted: ``console.error``/``console.assert`` calls, uncaught exceptions, error log entries,
    failed requests and HTTP errors. Anything whose URL is not under ``base_url`` goes to
    ``report.external``; the browser's own ``/favicon.ico`` request is ignored.
    """
    report = report if report is not None else PageReport()
    requests: dict[str, str] = {}
    for event in events:
        if event.get("sessionId") != session:
            continue
        method, params = event.get("method"), event.get("params", {})
        message = url = None
        if method == "Network.requestWillBeSent":
            requests[params["requestId"]] = params["request"]["url"]
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = [a.get("value", a.get("description", "")) for a in params.get("args", [])]
            frames = params.get("stackTrace", {}).get("callFrames", [])
            url = frames[0].get("url", "") if frames else ""
            message = "console error: " + " ".join(str(a) for a in args)
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            url = details.get("url", "")
            text = details.get("exception", {}).get("description") or details.get("text", "")
            message = f"uncaught exception: {text}"
        elif (method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error"
              and params["entry"].get("source") != "network"):  # Network.* events cover those
            entry = params["entry"]
            url = entry.get("url", "")
            message = f"console error ({entry.get('source')}): {entry.get('text')} {url}".rstrip()
        elif method == "Network.loadingFailed" and not params.get("canceled"):
            url = requests.get(params.get("requestId"), "")
            message = f"request failed: {url} ({params.get('errorText')})"
        elif method == "Network.responseReceived" and params["response"].get("status", 200) >= 400:
            url = params["response"]["url"]
            message = f"HTTP {params['response']['status']} for {url}"
        if message is None:
            continue
        if url == base_url + "favicon.ico":
            continue  # the browser asks for it by itself; the book declares no favicon
        external = bool(url) and not url.startswith(base_url) and not url.startswith("data:")
        target = report.external if external else report.errors
        if message not in target:
            target.append(message)
    return report


class Chromium:
    """Headless Chromium driven through the DevTools protocol (``websocket-client``)."""

    def __init__(self, executable: str = CHROMIUM, timeout: float = 30.0) -> None:
        import websocket

        if not Path(executable).is_file():
            raise FileNotFoundError(
                f"{executable} not found: install Debian's Chromium (apt-get install -y chromium)")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="check-book-chromium-")
        # Chromium's own chatter; a pipe could fill and block it
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}",
             f"--window-size={WINDOW[0]},{WINDOW[1]}", "--remote-debugging-port=0", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.is_file() and len(port_file.read_text().splitlines()) >= 2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.log.seek(0)
                err = self.log.read().decode(errors="replace")
                self.close()
                raise RuntimeError(f"Chromium did not start its DevTools endpoint:\n{err[-2000:]}")
            time.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=timeout,
                                              suppress_origin=True)
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        """Send one DevTools command and wait for its answer (events are kept meanwhile)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"DevTools {method} failed: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, session: str, timeout: float) -> bool:
        """Collect events until ``method`` arrives for ``session`` or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        if any(e.get("method") == method and e.get("sessionId") == session for e in self.events):
            return True
        while (left := deadline - time.monotonic()) > 0:
            self.ws.settimeout(left)
            try:
                event = json.loads(self.ws.recv())
            except Exception:  # websocket timeout
                break
            finally:
                self.ws.settimeout(self.timeout)
            self.events.append(event)
            if event.get("method") == method and event.get("sessionId") == session:
                return True
        return False

    def visit(self, url: str, base_url: str, screenshot: Path | None,
              settle: float = 1.5) -> PageReport:
        """Load ``url`` in a new tab, report errors and save a screenshot."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget",
                            {"targetId": target, "flatten": True})["sessionId"]
        report = PageReport()
        try:
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.send(f"{domain}.enable", session=session)
            self.send("Emulation.setDeviceMetricsOverride",
                      {"width": WINDOW[0], "height": WINDOW[1], "deviceScaleFactor": 1,
                       "mobile": False}, session=session)
            self.events = [e for e in self.events if e.get("sessionId") != session]
            nav = self.send("Page.navigate", {"url": url}, session=session)
            if nav.get("errorText"):
                report.errors.append(f"navigation failed: {nav['errorText']}")
                return report
            if not self.wait_for("Page.loadEventFired", session, self.timeout):
                report.errors.append(f"page did not finish loading within {self.timeout:.0f} s")
            self.wait_for("never.arrives", session, settle)  # late scripts, e.g. MathJax
            broken = self.send("Runtime.evaluate", {
                "expression": "JSON.stringify(Array.from(document.images)"
                              ".filter(i => i.complete && i.naturalWidth === 0)"
                              ".map(i => i.currentSrc || i.src))",
                "returnByValue": True}, session=session)["result"].get("value", "[]")
            for src in json.loads(broken):
                (report.errors if src.startswith(base_url) else report.external).append(
                    f"broken image {src}")
            report.errors += reader_view_problems(self, session, base_url)
            classify_events(self.events, session, base_url, report)
            if screenshot is not None:
                shot = self.send("Page.captureScreenshot", {"format": "png"}, session=session)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
        finally:
            self.send("Target.closeTarget", {"targetId": target})
            self.events = [e for e in self.events if e.get("sessionId") != session]
        return report

    def evaluate(self, expression: str, session: str):
        """The value of a JavaScript expression in the page (JSON-compatible)."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True}, session=session)
        return result["result"].get("value")

    def close(self) -> None:
        if getattr(self, "ws", None) is not None:
            try:
                self.ws.close()
            except Exception:
                pass
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------- what a reader sees

#: MathJax is done typesetting (or absent): wait for it before reading the page's text.
_MATHJAX_DONE = ("(window.MathJax && MathJax.startup && MathJax.startup.promise) "
                 "? MathJax.startup.promise.then(() => true) : Promise.resolve(false)")
#: The page's prose as a reader sees it: code blocks, scripts and styles left out.
_PROSE_TEXT = """(() => { const c = document.querySelector('main') || document.body;
  const k = c.cloneNode(true);
  k.querySelectorAll('pre, code, script, style, .highlight').forEach(e => e.remove());
  return k.innerText; })()"""
#: Code blocks whose lines are wider than the block (the reader would have to scroll).
_WIDE_CODE = """JSON.stringify(Array.from(document.querySelectorAll(
  'div.cell_input div.highlight pre, article div[class^="highlight-"] div.highlight pre'))
  .filter(p => !p.closest('.cell_output'))
  .filter(p => p.scrollWidth > p.clientWidth + 1)
  .map(p => (p.innerText.split('\\n').reduce((a, b) => a.length >= b.length ? a : b, ''))
  .slice(0, 60)))"""
#: The text of every code block the reader sees (notebook inputs and code in the prose).
_CODE_TEXT = """JSON.stringify(Array.from(document.querySelectorAll(
  'div.cell_input div.highlight pre, article div[class^="highlight-"] div.highlight pre'))
  .filter(p => !p.closest('.cell_output')).map(p => p.innerText))"""
#: Audio players without the licence next to them (in their <figure>).
_UNCREDITED_AUDIO = """Array.from(document.querySelectorAll('audio')).filter(a =>
  !((a.closest('figure') || {}).innerText || '').includes('CC BY-NC-ND 4.0')).length"""
#: What bookkeeping looks like in code: glue calls, checks, nbval's markers.
SCAFFOLDING = ("glue(", "assert ", "NBVAL_")
#: Scripts that load MathJax, by address.
_MATHJAX_SCRIPTS = """JSON.stringify(Array.from(document.scripts).map(s => s.src)
  .filter(s => /mathjax/i.test(s)))"""


def scaffolding_in_code(blocks: list[str]) -> list[str]:
    """Problems for code blocks that show bookkeeping (:data:`SCAFFOLDING`), one per kind.

    Example:
        >>> scaffolding_in_code(["x = 1", "assert x == 1"])
        ["1 code block(s) show 'assert ', e.g. 'assert x == 1'"]
    """
    problems = []
    for word in SCAFFOLDING:
        hits = [block for block in blocks if word in block]
        if hits:
            line = next(ln for ln in hits[0].splitlines() if word in ln).strip()
            problems.append(f"{len(hits)} code block(s) show {word!r}, e.g. {line[:70]!r}")
    return problems


def reader_view_problems(browser: "Chromium", session: str, base_url: str) -> list[str]:
    """What a reader would trip over: raw LaTeX, MathJax from another host, wide code cells,
    bookkeeping in the code."""
    problems = []
    scripts = json.loads(browser.evaluate(_MATHJAX_SCRIPTS, session) or "[]")
    for src in scripts:
        if not src.startswith(base_url):
            problems.append(f"MathJax is loaded from another host ({src}): offline readers "
                            "see raw LaTeX")
    if scripts:
        browser.evaluate(_MATHJAX_DONE, session)
    text = browser.evaluate(_PROSE_TEXT, session) or ""
    for raw in ("\\(", "\\[", "$$"):
        if raw in text:
            at = text.index(raw)
            problems.append(f"raw math {raw!r} in the rendered text: "
                            f"...{' '.join(text[max(0, at - 30):at + 30].split())}...")
    wide = json.loads(browser.evaluate(_WIDE_CODE, session) or "[]")
    if wide:
        problems.append(f"{len(wide)} code cell(s) wider than their block, e.g. {wide[0]!r}")
    problems += scaffolding_in_code(json.loads(browser.evaluate(_CODE_TEXT, session) or "[]"))
    uncredited = browser.evaluate(_UNCREDITED_AUDIO, session) or 0
    if uncredited:
        problems.append(f"{uncredited} audio player(s) without the credit and licence next to it")
    return problems


# --------------------------------------------------------------------------- main

def screenshot_name(page: str) -> str:
    """``chapters/01_data.html`` -> ``chapters__01_data.png``."""
    return page.removesuffix(".html").replace("/", "__") + ".png"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", type=Path, help="the built HTML folder, e.g. _build/html")
    parser.add_argument("--root", type=Path, default=ROOT, help="book root with _toc.yml")
    parser.add_argument("--screenshots", type=Path, default=None,
                        help="screenshot folder (default: <html_dir>/../screenshots)")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", CHROMIUM))
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to load one page")
    args = parser.parse_args(argv)

    html_dir = args.html_dir.resolve()
    if not html_dir.is_dir():
        print(f"error: {html_dir} is not a folder (build the book first)", file=sys.stderr)
        return 2
    shots = (args.screenshots or html_dir.parent / "screenshots").resolve()
    pages = book_pages(args.root)
    with_figures = figure_pages(args.root)
    start = time.perf_counter()

    problems = check_files(html_dir, pages, with_figures)
    notes: list[str] = []
    with Server(html_dir) as server, Chromium(args.chromium, timeout=args.timeout) as browser:
        for page in pages:
            url = server.base_url + page
            status = http_status(url)
            if status != 200:
                problems.append(f"{page}: HTTP {status}")
                continue
            report = browser.visit(url, server.base_url, shots / screenshot_name(page))
            problems += [f"{page}: {p}" for p in report.errors]
            notes += report.external
            print(f"  {page}: {'ok' if not report.errors else f'{len(report.errors)} problem(s)'}",
                  flush=True)

    for note, count in collections.Counter(notes).items():
        print(f"note: {note} (on {count} page(s); another host, not a failure: "
              "the check may run offline)")
    print(f"checked {len(pages)} pages ({len(with_figures)} with figures) in "
          f"{time.perf_counter() - start:.1f} s; screenshots in {shots}")
    if problems:
        print(f"\n{len(problems)} problem(s) in the built book:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print("book OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
