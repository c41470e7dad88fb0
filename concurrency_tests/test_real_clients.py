"""The lab's acceptance test with real programs: Chromium, curl, requests, http.client and wrk."""

# Strategy: every test starts the server under test in one mode on a fresh copy of the demo site
# (www/ plus a large binary file), then lets a real client loose on it: Chromium loads page.html
# (statuses, a screenshot compared with python -m http.server's rendering of the same folder,
# other clients served while it holds its speculative connections), three HTTP clients download
# files byte for byte, and wrk hammers the page. Idle raw sockets repeat Chrome's trick on purpose.

from __future__ import annotations

import contextlib
import functools
import http.client
import random
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

from concurrency_tests.real_clients import (
    BrowserSession,
    chromium_path,
    describe_mismatch,
    differing_fraction,
    open_browser,
    reference_server,
    require_module,
    require_program,
    run_wrk,
    unavailable,
)
from concurrency_tests.support import client_connections, open_idle_connections, wait_for
from harness.client import exchange, patience
from harness.server import ServerFactory, ServerProcess

if TYPE_CHECKING:
    from playwright.sync_api import Playwright

PAGE = "page.html"
SUBRESOURCES = ("style.css", "images/background.png", "images/packets.png")
LARGE_FILE, LARGE_SIZE = "files/large.bin", 16 * 1024 * 1024
DOWNLOADS = (PAGE, LARGE_FILE)
DOWNLOAD_TIMEOUT_S = 60.0
# Chrome opens up to 6 connections per host. A server blocked by an idle connection answers only
# once that connection times out (ours after 10 s), so "prompt" is well under that.
IDLE_SOCKETS = 6
PROMPT_S = 5.0
MAX_DIFFERING_PIXELS = 0.001
# wrk's own 2 s timeout would count one slow answer on a busy machine (pytest -n auto) as a
# socket error; 10 s still catches a server that stops answering.
WRK_OPTIONS = ("-t2", "-c10", "-d3s", "--timeout", "10s")
WRK_PROBE = b"GET /page.html HTTP/1.1\r\nHost: localhost\r\n\r\n"
IDLE_SOURCE = "SPEC: a client that connects and sends nothing must not stop anyone else"
Fetched = tuple[int, bytes]


def url_of(server: ServerProcess, path: str) -> str:
    """Return the URL of `path` (relative to the served folder) on `server`."""
    return f"http://{server.host}:{server.port}/{path}"


# Fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def demo_site(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A staging copy of the project's www/ plus LARGE_FILE, copied again for each server."""
    source = pytestconfig.rootpath / "www"
    missing = [name for name in (PAGE, *SUBRESOURCES) if not (source / name).is_file()]
    if missing:
        unavailable(f"the demo site {source} lacks {', '.join(missing)}")
    staged = tmp_path_factory.mktemp("demo-site") / "www"
    shutil.copytree(source, staged)
    (staged / LARGE_FILE).parent.mkdir(exist_ok=True)
    (staged / LARGE_FILE).write_bytes(random.Random(LARGE_FILE).randbytes(LARGE_SIZE))
    return staged


@pytest.fixture
def demo_server(server_factory: ServerFactory, mode: str, demo_site: Path) -> ServerProcess:
    """The server under test in `mode`, serving its own fresh copy of the demo site."""
    return server_factory(mode, tree=demo_site)


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    """Playwright's driver, started once per worker (browsers are launched per test)."""
    sync_api = require_module("playwright.sync_api")
    with sync_api.sync_playwright() as driver:
        yield driver


@pytest.fixture
def browser(playwright_driver: Playwright, tmp_path: Path) -> Iterator[BrowserSession]:
    """A headless Chromium of this test's own, on a new empty profile folder."""
    with open_browser(playwright_driver, chromium_path(), tmp_path / "profile") as session:
        yield session


# Clients ------------------------------------------------------------------------------------


def fetch_with_curl(url: str) -> Fetched:
    """GET `url` with the curl program; return (status, body)."""
    curl, timeout = require_program("curl"), download_timeout(url)
    with tempfile.TemporaryDirectory() as folder:
        body = Path(folder, "body")
        argv = [curl, "--silent", "--show-error", "--max-time", str(int(timeout))]
        argv += ["--output", str(body), "--write-out", "%{http_code}", url]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 10)
        if done.returncode != 0:
            raise ConnectionError(f"curl exited {done.returncode}: {done.stderr.strip()}")
        return int(done.stdout), body.read_bytes()


def fetch_with_requests(url: str, timeout: float = DOWNLOAD_TIMEOUT_S) -> Fetched:
    """GET `url` with requests, giving up after `timeout` s of silence; return (status, body)."""
    response = requests.get(url, timeout=min(timeout, download_timeout(url)))
    return response.status_code, response.content


def fetch_with_http_client(url: str) -> Fetched:
    """GET `url` with the standard library's http.client; return (status, body)."""
    host_port, path = url.removeprefix("http://").split("/", 1)
    connection = http.client.HTTPConnection(host_port, timeout=download_timeout(url))
    try:
        connection.request("GET", "/" + path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def download_timeout(url: str) -> float:
    """Return how long a client may wait on `url`: DOWNLOAD_TIMEOUT_S, or less for a server in
    a mode found answering nothing (harness.client.patience)."""
    return patience(urllib.parse.urlsplit(url).port or 80, DOWNLOAD_TIMEOUT_S)


FETCHERS: dict[str, Callable[[str], Fetched]] = {
    "curl": fetch_with_curl,
    "requests": fetch_with_requests,
    "http.client": fetch_with_http_client,
}


def get_on(sock: socket.socket, server: ServerProcess, path: str) -> Fetched:
    """Send GET /`path` on an already open socket and read the response with http.client."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=PROMPT_S)
    connection.sock = sock
    sock.settimeout(PROMPT_S)
    connection.request("GET", "/" + path)
    response = connection.getresponse()
    return response.status, response.read()


def answer_on_idle(sock: socket.socket, server: ServerProcess, site: Path) -> str:
    """Use a preconnected socket; return "served", "closed" (timed out by the server) or why not."""
    try:
        fetched = get_on(sock, server, PAGE)
    except (ConnectionResetError, BrokenPipeError):  # includes RemoteDisconnected
        return "closed"
    except (OSError, http.client.HTTPException) as exc:
        return f"{type(exc).__name__}: {exc}"
    return content_problem(fetched, (site / PAGE).read_bytes()) or "served"


def assert_served_promptly(server: ServerProcess, site: Path, situation: str) -> None:
    """Fetch the page and its subresources with requests, each within PROMPT_S seconds."""
    prompt = functools.partial(fetch_with_requests, timeout=PROMPT_S)
    for path in (PAGE, *SUBRESOURCES):
        problem = fetch_problem(prompt, url_of(server, path), (site / path).read_bytes())
        assert_no_problem(server, problem, f"GET /{path} {situation}")


def assert_no_problem(server: ServerProcess, problem: str, what: str) -> None:
    """Fail with "`what`: `problem`" if there is a problem, or with the death report if the
    server under test died."""
    if problem:
        server.assert_alive()
    assert not problem, f"{what}: {problem}"


def fetch_problem(fetch: Callable[[str], Fetched], url: str, expected: bytes) -> str:
    """GET `url` with `fetch`; return "" if it got 200 and exactly `expected`, else what it got."""
    started = time.monotonic()
    try:
        fetched = fetch(url)
    except (OSError, http.client.HTTPException) as exc:  # requests' errors are OSErrors
        waited = time.monotonic() - started
        return f"failed after {waited:.1f} s: {type(exc).__name__}: {exc}"
    return content_problem(fetched, expected)


def content_problem(fetched: Fetched, expected: bytes) -> str:
    """Return "" if `fetched` is a 200 carrying exactly `expected`, else what came instead."""
    status, body = fetched
    if fetched == (200, expected):
        return ""
    return f"status {status}, {describe_mismatch(expected, body)}"


# Tests --------------------------------------------------------------------------------------


@pytest.mark.lab("lab5.large-files")
@pytest.mark.parametrize("client", FETCHERS)
def test_clients_download_page_and_large_file_byte_for_byte(
    demo_server: ServerProcess, demo_site: Path, client: str, record_property: Callable
) -> None:
    """curl, requests and http.client each get page.html and a 16 MiB file, intact, with 200."""
    record_property("source", "lab 5: GET serves the file; SPEC: files of any size are streamed")
    for path in DOWNLOADS:
        expected = (demo_site / path).read_bytes()
        problem = fetch_problem(FETCHERS[client], url_of(demo_server, path), expected)
        assert_no_problem(demo_server, problem, f"{client} GET /{path}")
    demo_server.assert_alive()


@pytest.mark.tier("recommended")
def test_chromium_gets_page_and_every_subresource_with_200(
    demo_server: ServerProcess, browser: BrowserSession, record_property: Callable
) -> None:
    """Chromium loads page.html, its stylesheet, background and image, each with 200."""
    record_property("source", "lab 5: serve a webpage with multiple resources to Chrome")
    visit = browser.visit(url_of(demo_server, PAGE))
    problems = [visit.error] if visit.error else []
    for path in (PAGE, *SUBRESOURCES):
        statuses = visit.statuses("/" + path)
        if not statuses or set(statuses) != {200}:
            problems.append(f"/{path}: {statuses or 'no response'}")
    problems += [f"{path} failed: {why}" for path, why in visit.failures]
    problem = f"{'; '.join(problems)}\n  {visit.describe()}" if problems else ""
    assert_no_problem(demo_server, problem, f"Chromium loading /{PAGE}")


@pytest.mark.tier("recommended")
def test_chromium_renders_page_like_reference_server(
    demo_server: ServerProcess, browser: BrowserSession, tmp_path: Path, record_property: Callable
) -> None:
    """The page Chromium renders from the server matches its rendering via python -m http.server."""
    record_property("source", "lab 5/6 acceptance: the styled page with its background in Chrome")
    with reference_server(demo_server.folder) as port:
        expected = browser.screenshot(f"http://127.0.0.1:{port}/{PAGE}", tmp_path / "reference.png")
    assert not (expected.error or expected.failures), f"reference failed: {expected.describe()}"
    actual = browser.screenshot(url_of(demo_server, PAGE), tmp_path / "actual.png")
    assert_no_problem(demo_server, actual.error and actual.describe(), f"Chromium loading /{PAGE}")
    differing = differing_fraction(tmp_path / "reference.png", tmp_path / "actual.png")
    assert differing <= MAX_DIFFERING_PIXELS, (
        f"Chromium's rendering of /{PAGE} differs from python -m http.server's in "
        f"{differing:.2%} of pixels (tolerance {MAX_DIFFERING_PIXELS:.2%}); screenshots in "
        f"{tmp_path}\n  from the server: {actual.describe()}\n  reference: {expected.describe()}"
    )


@pytest.mark.tier("recommended")
def test_others_served_while_chromium_holds_its_connections(
    demo_server: ServerProcess, demo_site: Path, browser: BrowserSession, record_property: Callable
) -> None:
    """With Chromium's tab open on the page, holding speculative connections, another client is
    still served at once. On a second visit Chromium preconnects sockets from what it learned
    (it keeps them when the page comes from its cache), and a preconnect hint adds one more."""
    record_property("source", IDLE_SOURCE)
    for _ in range(2):
        visit = browser.visit(url_of(demo_server, PAGE))
        assert_no_problem(demo_server, visit.error and visit.describe(), f"Chromium on /{PAGE}")
    browser.preconnect(url_of(demo_server, ""))
    wait_for(lambda: client_connections(demo_server) >= 1, 2.0)
    held = client_connections(demo_server)
    record_property("chromium_open_connections", held)
    situation = f"while Chromium holds {held} open connection(s) to the server"
    assert_served_promptly(demo_server, demo_site, situation)
    demo_server.assert_alive()


@pytest.mark.tier("recommended")
def test_others_served_while_idle_connections_wait_then_idle_ones_served(
    demo_server: ServerProcess, demo_site: Path, record_property: Callable
) -> None:
    """Six connections that send nothing (as Chrome's preconnects) block no one; used later,
    each gets its answer, or is closed cleanly if the server timed it out (Chrome retries)."""
    record_property("source", IDLE_SOURCE)
    idle = open_idle_connections(demo_server, IDLE_SOCKETS)
    with contextlib.ExitStack() as stack:
        for sock in idle:
            stack.enter_context(sock)
        assert_served_promptly(
            demo_server, demo_site, f"while {IDLE_SOCKETS} idle connections wait"
        )
        answers = [answer_on_idle(sock, demo_server, demo_site) for sock in idle]
    problems = [answer for answer in answers if answer not in ("served", "closed")]
    record_property("idle_connections_closed_by_server", answers.count("closed"))
    assert not problems, f"GET /{PAGE} sent late on a preconnected socket: {'; '.join(problems)}"
    demo_server.assert_alive()


@pytest.mark.tier("recommended")
def test_wrk_sees_no_socket_errors_and_no_error_statuses(
    demo_server: ServerProcess, record_property: Callable
) -> None:
    """A short wrk run (2 threads, 10 connections, 3 s) gets only good answers, no socket errors.

    wrk speaks HTTP/1.1 keep-alive; after a response that says `Connection: close` (or is
    HTTP/1.0) and is complete by its Content-Length, wrk simply reconnects, so our server's
    closing costs no error: checked against it, wrk prints no "Socket errors" line at all. Any
    read error then means a truncated or reset response. Only a server that sends no
    Content-Length (its body ends at close, as HTTP/1.0 allows) makes wrk count exactly one read
    error per complete response; those, and only those, are forgiven.
    """
    record_property("source", "lab 6: benchmark every mode with wrk against page.html")
    wrk = require_program("wrk")
    probe = exchange(demo_server.port, WRK_PROBE, host=demo_server.host)
    assert probe.status == 200, f"GET /{PAGE} before running wrk:\n{probe.describe()}"
    report = run_wrk(wrk, url_of(demo_server, PAGE), WRK_OPTIONS)
    forgiven = report.requests if probe.content_length is None else 0
    errors = report.socket_errors | {"read": max(0, report.socket_errors["read"] - forgiven)}
    record_property("wrk_requests", report.requests)
    assert report.requests > 0, f"wrk completed no request:\n{report.output}"
    assert not any(errors.values()) and not report.non_2xx_3xx, (
        f"wrk {' '.join(WRK_OPTIONS)}: socket errors {errors} (read errors forgiven: {forgiven}),"
        f" {report.non_2xx_3xx} responses with status >= 400\n{report.output}"
    )
    demo_server.assert_alive()
