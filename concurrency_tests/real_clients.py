"""Real programs as clients of the server under test: headless Chromium, curl, wrk, a reference."""

# Strategy: each program sits behind one small function or context manager that always reaps
# what it starts and turns what went wrong into data a test can put in its message. A program
# or package that is missing skips the test on a developer's machine and fails it under CI, so
# CI proves every real client ran. Chromium is driven by Playwright (reasons on open_browser);
# the reference rendering comes from `python -m http.server` serving the very same folder.

from __future__ import annotations

import contextlib
import importlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, NoReturn
from urllib.parse import urlsplit

import pytest

from harness.server import free_port

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Playwright, Request, Response

CHROMIUM_ENV = "CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
# --headless and --user-data-dir are added by Playwright itself (headless=True, and the fresh
# profile folder given to launch_persistent_context); the rest are passed as they are.
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT = {"width": 1024, "height": 768}
BROWSER_TIMEOUT_MS = 20_000
PIXEL_THRESHOLD = 16
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_REQUESTS = re.compile(r"(\d+) requests in ")
_FALSE = ("", "0", "false", "no")
_PRECONNECT_SCRIPT = """origin => {
    const hint = document.createElement("link");
    hint.rel = "preconnect";
    hint.href = origin;
    document.head.append(hint);
}"""


def in_ci() -> bool:
    """Say whether the CI environment variable is set (to anything but an empty or false value)."""
    return os.environ.get("CI", "").strip().lower() not in _FALSE


def unavailable(reason: str) -> NoReturn:
    """Skip the test because `reason`; under CI, fail it instead (CI must run every client)."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def require_program(*names: str, env: str = "") -> str:
    """Return the path of the first program found ($`env` first, then `names` on PATH)."""
    override = os.environ.get(env, "") if env else ""
    for candidate in (override, *names):
        found = shutil.which(candidate) if candidate else None
        if found:
            return found
    hint = f" (or set {env})" if env else ""
    unavailable(f"{' / '.join(names)} is not installed{hint}")


def chromium_path() -> str:
    """Return the Chromium to drive: $CHROMIUM, else `chromium` or `chromium-browser` on PATH."""
    return require_program(*CHROMIUM_NAMES, env=CHROMIUM_ENV)


def require_module(name: str) -> ModuleType:
    """Import and return Python module `name`, or skip (fail under CI) when it is missing."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        unavailable(
            f"Python package for {name} is not installed ({exc}); "
            "install the suite's extra: pip install -c constraints.txt -e '.[test]'"
        )


def describe_mismatch(expected: bytes, got: bytes) -> str:
    """Return how `got` differs from `expected`: both sizes and the first differing offset."""
    if got == expected:
        return "identical"
    common = min(len(got), len(expected))
    offset = next((i for i in range(common) if got[i] != expected[i]), common)
    shown = got[offset : offset + 16]
    return (
        f"got {len(got)} bytes, expected {len(expected)}; first difference at {offset}: {shown!r}"
    )


# Chromium -----------------------------------------------------------------------------------


@dataclass
class Visit:
    """What Chromium did for one page load: every response and failed request, by URL path."""

    url: str
    responses: list[tuple[str, int, str]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    error: str = ""

    def on_response(self, response: Response) -> None:
        """Record one response (Playwright event handler)."""
        content_type = response.headers.get("content-type", "no Content-Type")
        self.responses.append((urlsplit(response.url).path, response.status, content_type))

    def on_failure(self, request: Request) -> None:
        """Record one failed request (Playwright event handler)."""
        self.failures.append((urlsplit(request.url).path, request.failure or "failed"))

    def statuses(self, path: str) -> list[int]:
        """Return the statuses of every response for `path`, in order."""
        return [status for seen, status, _ in self.responses if seen == path]

    def describe(self) -> str:
        """Return one line listing what was fetched, what failed, and any navigation error."""
        parts = [f"{path} {status} ({kind})" for path, status, kind in self.responses]
        parts += [f"{path} FAILED {why}" for path, why in self.failures]
        text = ", ".join(parts) or "nothing fetched"
        return f"{text}; {self.error}" if self.error else text


class BrowserSession:
    """One headless Chromium with one open tab; the tab (and its sockets) stays open."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.page: Page = context.pages[0] if context.pages else context.new_page()

    def visit(self, url: str) -> Visit:
        """Load `url`, wait for the network to go idle and fonts to load; return the Visit."""
        visit = Visit(url)
        self.page.on("response", visit.on_response)
        self.page.on("requestfailed", visit.on_failure)
        try:
            self.page.goto(url, wait_until="networkidle")
            self.page.evaluate("document.fonts.ready.then(() => true)")
        except require_module("playwright.sync_api").Error as exc:  # also its TimeoutError
            visit.error = f"loading {url} failed: {str(exc).splitlines()[0]}"
        finally:
            self.page.remove_listener("response", visit.on_response)
            self.page.remove_listener("requestfailed", visit.on_failure)
        return visit

    def preconnect(self, origin: str) -> None:
        """Add a `<link rel=preconnect>` hint to the open page: Chromium opens a socket to
        `origin` and sends nothing on it, exactly its speculative connection."""
        self.page.evaluate(_PRECONNECT_SCRIPT, origin)

    def screenshot(self, url: str, path: Path) -> Visit:
        """Load `url` and save the viewport to `path` (animations stopped, caret hidden)."""
        visit = self.visit(url)
        if not visit.error:
            self.page.screenshot(path=path, animations="disabled", caret="hide")
        return visit


@contextlib.contextmanager
def open_browser(driver: Playwright, executable: str, profile: Path) -> Iterator[BrowserSession]:
    """Launch Chromium `executable` on the new empty profile folder `profile`; close it after.

    Playwright, not Selenium: it reports every response (URL, status) and failed request as
    events, where Selenium needs performance logs of raw DevTools JSON; it waits for
    "networkidle" itself; its screenshots stop animations and wait for fonts; and it needs no
    chromedriver matching the browser's version. Its wheel carries its own driver, and with
    `executable_path` it never downloads a browser.
    """
    profile.mkdir(parents=True)
    context = driver.chromium.launch_persistent_context(
        profile,
        executable_path=executable,
        headless=True,
        args=list(CHROMIUM_FLAGS),
        viewport=VIEWPORT,
        device_scale_factor=1,
        reduced_motion="reduce",
    )
    try:
        context.set_default_timeout(BROWSER_TIMEOUT_MS)
        yield BrowserSession(context)
    finally:
        context.close()


def differing_fraction(reference: Path, actual: Path) -> float:
    """Return the fraction of pixels where any channel differs by more than PIXEL_THRESHOLD.

    Returns 1.0 when the two images do not even have the same size.
    """
    image = require_module("PIL.Image")
    chops = require_module("PIL.ImageChops")
    with image.open(reference) as first, image.open(actual) as second:
        if first.size != second.size:
            return 1.0
        diff = chops.difference(first.convert("RGB"), second.convert("RGB"))
    red, green, blue = diff.split()
    histogram = chops.lighter(chops.lighter(red, green), blue).histogram()
    return sum(histogram[PIXEL_THRESHOLD + 1 :]) / (diff.width * diff.height)


# The reference server -----------------------------------------------------------------------


@contextlib.contextmanager
def reference_server(folder: Path, attempts: int = 5) -> Iterator[int]:
    """Serve `folder` with `python -m http.server` on a free loopback port; yield the port."""
    for _ in range(attempts):
        port = free_port()
        argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1"]
        argv += ["--directory", str(folder), str(port)]
        quiet = subprocess.DEVNULL
        process = subprocess.Popen(argv, stdin=quiet, stdout=quiet, stderr=quiet)
        try:
            if _await_port(process, port):
                yield port
                return
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    raise RuntimeError(f"python -m http.server did not start in {attempts} attempts")


def _await_port(process: subprocess.Popen, port: int, timeout: float = 10.0) -> bool:
    """Wait until something accepts on `port`; False if `process` exited or time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return True
        time.sleep(0.05)
    return False


# wrk ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkReport:
    """The counts one wrk run reported; `output` is its whole stdout."""

    requests: int
    socket_errors: dict[str, int]
    non_2xx_3xx: int
    output: str


def parse_wrk(output: str) -> WrkReport:
    """Parse wrk's report.

    wrk prints its "Socket errors" and "Non-2xx or 3xx responses" lines only when a count is
    non-zero, so an absent line means zero. Raises ValueError when there is no request count
    (wrk did not run).
    """
    requests = _REQUESTS.search(output)
    if requests is None:
        raise ValueError(f"no 'N requests in' line in wrk's output: {output[:300]!r}")
    errors = _SOCKET_ERRORS.search(output)
    counts = map(int, errors.groups()) if errors else (0, 0, 0, 0)
    kinds = ("connect", "read", "write", "timeout")
    non_2xx = _NON_2XX.search(output)
    return WrkReport(
        requests=int(requests.group(1)),
        socket_errors=dict(zip(kinds, counts, strict=True)),
        non_2xx_3xx=int(non_2xx.group(1)) if non_2xx else 0,
        output=output,
    )


def run_wrk(wrk: str, url: str, options: tuple[str, ...]) -> WrkReport:
    """Run `wrk OPTIONS URL` and return its parsed report; AssertionError if wrk itself fails."""
    done = subprocess.run(
        [wrk, *options, url], capture_output=True, text=True, errors="replace", timeout=60
    )
    assert done.returncode == 0, f"wrk exited {done.returncode}: {done.stderr or done.stdout}"
    return parse_wrk(done.stdout)
