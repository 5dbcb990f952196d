"""The rendered book in a real browser: headless Chromium opens every page of the book built at ci.

It checks that every image loads, that MathJax typesets every equation, that every internal link
and anchor resolves, that search finds chapter 2, and that each chapter offers its executed
notebook for download. Chromium is driven through the DevTools protocol over a pipe (no driver, no
download); without Debian's ``chromium`` the test is skipped.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from conftest import BuiltBook

from nsdelib.book.runner import chapter_source, is_notebook, toc_entries

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="the browser test needs Chromium: `apt-get install chromium` (Debian/Ubuntu, as root)",
    ),
]
TIMEOUT_S = 60.0
# sphinx-thebe 0.3.1 adds its inline config script twice under Jupyter Book 1 (the second `const`
# fails); harmless here, since the book does not enable thebe.
KNOWN_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",)

# Runs in each page once it has loaded: waits for lazy images and for MathJax's first typesetting pass.
PAGE_REPORT = """(async () => {
  const images = [...document.images];
  await Promise.all(images.map(img => { img.loading = "eager"; return img.decode().catch(() => null); }));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
  const maths = [...document.querySelectorAll(".math")];
  const article = document.querySelector("article.bd-article") || document.body;
  return {
    images: images.map(img => ({src: img.currentSrc || img.src, width: img.naturalWidth})),
    maths: maths.length,
    untypeset: maths.filter(m => !m.querySelector("mjx-container")).map(m => m.textContent.slice(0, 80)),
    errors: [...document.querySelectorAll("mjx-merror")].map(e => e.textContent.slice(0, 80)),
    links: [...document.querySelectorAll("a[href]")].map(a => a.href),
    ids: [...document.querySelectorAll("[id]")].map(e => e.id)
      .concat([...document.querySelectorAll("a[name]")].map(a => a.name)),
    downloads: [...document.querySelectorAll("a.btn-download-source-button")].map(a => a.href),
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    figures: [...document.querySelectorAll("figure")].map(f => ({
      numbered: !!f.querySelector(".caption-number"), image: !!f.querySelector("img"),
      caption: (f.querySelector("figcaption") || {textContent: ""}).textContent.trim().slice(0, 80)})),
    nan_cells: [...document.querySelectorAll("td, th")].filter(c => /^\\s*(nan|NaN|None)\\s*$/.test(c.textContent)).length,
    reprs: [...document.querySelectorAll("td, div.cell_output pre, article p")].map(c => c.textContent)
      .filter(t => /\\{'|\\('[^']*', /.test(t)).map(t => t.slice(0, 80)),
    wide_tables: [...document.querySelectorAll("article table")]
      .filter(t => t.getBoundingClientRect().width > article.clientWidth + 1 || t.scrollWidth > t.clientWidth + 1)
      .map(t => t.innerText.slice(0, 60)),
  };
})()"""

# Makes the first code cell and the first text output of a page very wide: they must scroll in their box.
WIDEN_CELLS = """(() => {
  const boxes = [document.querySelector("div.cell_input pre"), document.querySelector("div.cell_output pre")];
  boxes.forEach(box => { box.textContent = "x = " + "1 + ".repeat(800) + "1"; });
  return {boxes: boxes.map(box => box.scrollWidth > box.clientWidth),
          overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth};
})()"""
# Jupyter Book's index.html only redirects to the root chapter; the browser checks the chapter.
REDIRECT = re.compile(r'<meta http-equiv="Refresh" content="0; url=([^"]+)"')
SEARCH_RESULTS = "[...document.querySelectorAll('#search-results li a')].map(a => a.href)"


class Chromium:
    """Headless Chromium driven through the DevTools protocol over ``--remote-debugging-pipe``."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_browser, self._send_fd = os.pipe()
        self._receive_fd, from_browser = os.pipe()

        def pipes_as_fd_3_and_4() -> None:  # the protocol's fixed descriptors, in the child only
            os.dup2(to_browser, 3)
            os.dup2(from_browser, 4)

        flags = ["--headless", "--remote-debugging-pipe", f"--user-data-dir={profile}", "--window-size=1280,900",
                 "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-dev-shm-usage"]
        if os.geteuid() == 0:
            flags.append("--no-sandbox")  # Chromium refuses to sandbox itself as root (CI)
        self.process = subprocess.Popen(
            [executable, *flags, "about:blank"], preexec_fn=pipes_as_fd_3_and_4, close_fds=False,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session=self.session)
        self.call("Runtime.enable", session=self.session)

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._receive_fd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self._receive_fd, 1 << 20) if ready else b""
            if not chunk:
                raise TimeoutError("Chromium did not answer in time" if not ready else "Chromium exited")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one protocol command and return its result; events met meanwhile are kept in ``events``."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._send_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str) -> dict[str, Any]:
        """The next event ``method`` of the page (kept or yet to come)."""
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            for event in self.events:
                if event.get("method") == method and event.get("sessionId") == self.session:
                    self.events.remove(event)
                    return event
            self.events.append(self._receive(deadline))

    def open(self, url: str) -> None:
        """Load ``url`` in the page and wait for its load event."""
        self.events.clear()
        result = self.call("Page.navigate", session=self.session, url=url)
        if "errorText" in result:
            raise RuntimeError(f"{url}: {result['errorText']}")
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        reply = self.call("Runtime.evaluate", session=self.session, expression=expression,
                          awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression[:60]}...: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def errors(self) -> list[str]:
        """Uncaught JavaScript exceptions the page has thrown since it was opened."""
        return [e["params"]["exceptionDetails"].get("exception", {}).get("description", "")
                or e["params"]["exceptionDetails"]["text"]
                for e in self.events if e.get("method") == "Runtime.exceptionThrown"]

    def close(self) -> None:
        """Ask the browser to quit, then make sure it has."""
        try:
            self.call("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._send_fd)
        os.close(self._receive_fd)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """No access log on stderr."""


@pytest.fixture(scope="module")
def site(built_book: BuiltBook) -> Iterator[str]:
    """The rendered book served over HTTP on localhost (as a reader's browser would get it)."""
    handler = functools.partial(_QuietHandler, directory=str(built_book.html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    """One headless Chromium for the module."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="nsde-chromium-") as profile:
        chromium = Chromium(CHROMIUM, Path(profile))
        yield chromium
        chromium.close()


def _local_file(html: Path, url: str) -> Path:
    """The file of the build that ``url`` (a link within the site) names."""
    path = unquote(urlsplit(url).path).lstrip("/")
    return html / path / "index.html" if path == "" or path.endswith("/") else html / path


@pytest.fixture(scope="module")
def pages(built_book: BuiltBook, site: str, browser: Chromium) -> dict[str, dict[str, Any]]:
    """What the browser found on every rendered page (by path in the build; redirects left out)."""
    html = built_book.html
    found = {}
    for page in sorted(p for p in html.rglob("*.html") if not p.relative_to(html).parts[0].startswith("_")):
        name = page.relative_to(html).as_posix()
        if REDIRECT.search(page.read_text()):
            continue
        browser.open(site + name)
        found[name] = browser.evaluate(PAGE_REPORT)
        found[name]["scripts"] = [e for e in browser.errors() if not any(known in e for known in KNOWN_ERRORS)]
    return found


def test_pages_render_without_script_errors_or_sideways_scrolling(
    built_book: BuiltBook, pages: dict[str, dict[str, Any]]
) -> None:
    problems = [f"{name}: JavaScript error {error}" for name, page in pages.items() for error in page["scripts"]]
    problems += [f"{name}: the page scrolls sideways by {page['overflow']} px"
                 for name, page in pages.items() if page["overflow"] > 0]
    print(f"browser check: {len(pages)} pages opened (and index.html, which redirects)")
    redirect = REDIRECT.search((built_book.html / "index.html").read_text())
    assert redirect and redirect.group(1) in pages, "index.html must lead to the root chapter"
    assert "search.html" in pages and len(pages) > len(toc_entries())
    assert not problems, "\n".join(problems)


def test_wide_code_and_outputs_scroll_inside_their_box(site: str, browser: Chromium) -> None:
    browser.open(site + "chapters/ch02_nsde_theory.html")
    widened = browser.evaluate(WIDEN_CELLS)
    assert widened == {"boxes": [True, True], "overflow": 0}, widened


def test_every_image_loads(pages: dict[str, dict[str, Any]]) -> None:
    images = [(name, image) for name, page in pages.items() for image in page["images"]]
    print(f"browser check: {len(images)} images loaded on {len({name for name, _ in images})} pages")
    assert images
    assert not [f"{name}: {image['src']}" for name, image in images if image["width"] == 0]


def test_mathjax_typesets_every_equation(pages: dict[str, dict[str, Any]]) -> None:
    with_maths = {name: page for name, page in pages.items() if page["maths"]}
    problems = [f"{name}: left {text!r} untypeset" for name, page in with_maths.items() for text in page["untypeset"]]
    problems += [f"{name}: error in {text!r}" for name, page in with_maths.items() for text in page["errors"]]
    print(f"browser check: {sum(p['maths'] for p in with_maths.values())} equations typeset by MathJax "
          f"on {len(with_maths)} pages")
    assert "chapters/ch02_nsde_theory.html" in with_maths
    assert not problems, "\n".join(problems)


def test_every_internal_link_and_anchor_resolves(built_book: BuiltBook, site: str,
                                                 pages: dict[str, dict[str, Any]]) -> None:
    html = built_book.html
    ids = {html / name: set(page["ids"]) for name, page in pages.items()}
    links = {(name, url) for name, page in pages.items() for url in page["links"] if url.startswith(site)}
    problems = []
    for name, url in sorted(links):
        target = _local_file(html, url)
        fragment = unquote(urlsplit(url).fragment)
        if not target.is_file():
            problems.append(f"{name}: {url} points at a missing file")
        elif fragment and fragment not in ids.get(target, set()):
            problems.append(f"{name}: {url} points at a missing anchor")
    targets = {url for _, url in links}
    print(f"browser check: {len(links)} internal links (page, target) resolved, {len(targets)} distinct targets")
    assert links
    assert not problems, "\n".join(problems)


def test_search_finds_chapter_2(site: str, browser: Chromium) -> None:
    browser.open(site + "search.html?q=Euler")
    deadline = time.monotonic() + TIMEOUT_S
    while not (found := browser.evaluate(SEARCH_RESULTS)) and time.monotonic() < deadline:
        time.sleep(0.2)
    print(f"browser check: search for 'Euler' found {len(found)} page(s): {', '.join(sorted(found))}")
    assert any(urlsplit(url).path.endswith("/chapters/ch02_nsde_theory.html") for url in found), found


def test_each_chapter_offers_its_executed_notebook_for_download(built_book: BuiltBook, site: str,
                                                                pages: dict[str, dict[str, Any]]) -> None:
    chapters = [entry for entry in toc_entries() if is_notebook(chapter_source(entry))]
    problems = []
    for entry in chapters:
        offered = [url for url in pages[f"{entry}.html"]["downloads"] if url.endswith(".ipynb")]
        notebook = _local_file(built_book.html, offered[0]) if offered else None
        if notebook is None or not notebook.is_file():
            problems.append(f"{entry}: the download button offers no existing notebook ({offered})")
            continue
        metadata = json.loads(notebook.read_text())["metadata"]
        if metadata["kernelspec"]["name"] != "python3" or "papermill" not in metadata:
            problems.append(f"{entry}: {offered[0]} is not the executed notebook with the python3 kernel")
    print(f"browser check: {len(chapters) - len(problems)} of {len(chapters)} chapters offer their notebook")
    assert not problems, "\n".join(problems)


def test_every_figure_is_numbered_captioned_and_shows_an_image(pages: dict[str, dict[str, Any]]) -> None:
    figures = [(name, figure) for name, page in pages.items() for figure in page["figures"]]
    problems = [f"{name}: {figure}" for name, figure in figures
                if not (figure["numbered"] and figure["caption"] and figure["image"])]
    print(f"browser check: {len(figures)} figures numbered, captioned and drawn")
    assert figures
    assert not problems, "\n".join(problems)


def test_tables_show_no_nan_and_no_raw_repr(pages: dict[str, dict[str, Any]]) -> None:
    problems = [f"{name}: {page['nan_cells']} table cells read nan/None" for name, page in pages.items()
                if page["nan_cells"]]
    problems += [f"{name}: raw repr {text!r}" for name, page in pages.items() for text in page["reprs"]]
    assert not problems, "\n".join(problems)


def test_no_table_is_wider_than_the_text_column_at_1280_px(pages: dict[str, dict[str, Any]]) -> None:
    problems = [f"{name}: {text!r}" for name, page in pages.items() for text in page["wide_tables"]]
    assert not problems, "\n".join(problems)
