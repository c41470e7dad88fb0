"""Lab rules that one test each checks once per mode, not once per conformance case.

Strategy: a defect that would otherwise fail every case (an HTTP/1.1 status line, a connection
left open after the response) is judged here, once, with its own finding id; the conformance
cases read responses by Content-Length and never charge it again. The other rules here need a
server of their own: the real 5 s delay, nothing printed on stdout per request, and the 404 page
read from the served folder rather than from the working directory (which holds a decoy page).
Each failure attaches evidence (harness/evidence.py) for the scorecard.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest

from concurrency_tests.support import DELAY, MIN_DELAY
from harness.client import Reply, exchange
from harness.evidence import example, response_words
from harness.fixtures import DECOY_404_MARKER, expected_content
from harness.server import ServerFactory, ServerProcess

PAGE = b"GET /page.html HTTP/1.0\r\n\r\n"
MISSING = b"GET /no-such-page.html HTTP/1.0\r\n\r\n"
POST = b"POST /page.html HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello"
CLOSE_WAIT = 3.0
DELAY_SLACK = 10.0
QUIET_REQUESTS = 6
DECOY_PAGES = ("404.html", "www/404.html")


def fail_with(record: pytest.FixtureRequest, evidence: list[dict], message: str) -> None:
    """Attach the evidence to the test's record and fail with `message` (no traceback)."""
    record.node.user_properties.append(("evidence", evidence))
    pytest.fail(message, pytrace=False)


def ask(server: ServerProcess, request: bytes, **options: float) -> Reply:
    """Send one request to the server and return the reply."""
    return exchange(server.port, request, host=server.host, **options)


def plant_decoys(server: ServerProcess) -> None:
    """Put decoy 404 pages in the server's working directory (wherever its harness put it).

    Never inside the served folder, nor elsewhere in the fixture tree than its cwd/ (the tree is
    verified unchanged at teardown).
    """
    try:
        cwd = Path(f"/proc/{server.pid}/cwd").resolve(strict=True)
    except OSError:
        return
    tree = server.tree
    if tree is not None and cwd.is_relative_to(tree.base) and cwd != tree.workdir:
        return
    for name in DECOY_PAGES:
        decoy = cwd / name
        if decoy.resolve().is_relative_to(server.folder.resolve()):
            continue
        with contextlib.suppress(OSError):
            decoy.parent.mkdir(parents=True, exist_ok=True)
            decoy.write_bytes(b"<html><body>" + DECOY_404_MARKER + b"</body></html>\n")


@pytest.mark.lab("lab5.http10")
def test_responses_are_http10(
    mode: str, server_factory: ServerFactory, request: pytest.FixtureRequest
) -> None:
    """A 200, a 404 and a 405 all start with an `HTTP/1.0 ` status line."""
    server = server_factory(mode)
    wrong = []
    for sent in (PAGE, MISSING, POST):
        reply = ask(server, sent)
        if reply.outcome != "response" or reply.version != "HTTP/1.0":
            wrong.append(example(sent, response_words(reply), "a status line HTTP/1.0 NNN ..."))
    if wrong:
        fail_with(
            request,
            wrong,
            f"lab 5: responses are HTTP/1.0, but {len(wrong)} of 3 responses were not "
            f"(first: {wrong[0]['response'].splitlines()[0]!r})",
        )


@pytest.mark.lab("lab5.http10-close")
def test_connection_is_closed_after_the_response(
    mode: str, server_factory: ServerFactory, request: pytest.FixtureRequest
) -> None:
    """After an HTTP/1.0 response the server closes the connection (within 3 s of the body)."""
    server = server_factory(mode)
    reply = ask(server, PAGE, close_wait=CLOSE_WAIT)
    if reply.outcome == "response" and not reply.error and reply.closed_by_server:
        return
    request.node.user_properties.append(("finding", "left-open"))
    got = response_words(reply)
    expected = f"the response, then the server closes the connection (waited {CLOSE_WAIT:g} s)"
    fail_with(
        request,
        [example(PAGE, got, expected)],
        f"lab 5 (HTTP/1.0): the server must close the connection after its response; "
        f"it was still open {CLOSE_WAIT:g} s after the body ({reply.outcome}: "
        f"{reply.error or 'the body came complete'})",
    )


@pytest.mark.lab("lab5.delay")
def test_delay_holds_the_response_five_seconds(
    mode: str, server_factory: ServerFactory, request: pytest.FixtureRequest
) -> None:
    """With -d, the response comes about 5 s after the request, and is still correct."""
    server = server_factory(mode, delay=True)
    started = time.monotonic()
    reply = ask(server, PAGE, timeout=DELAY + DELAY_SLACK)
    took = time.monotonic() - started
    correct = reply.status == 200 and reply.body == expected_content("page.html")
    if correct and MIN_DELAY <= took <= DELAY + DELAY_SLACK:
        return
    got = f"{response_words(reply, DELAY + DELAY_SLACK)} after {took:.2f} s"
    fail_with(
        request,
        [example(PAGE, got, f"200 with page.html, {DELAY:g} s after the request")],
        f"lab 5: with -d the server waits {DELAY:g} s before responding; the response came "
        f"after {took:.2f} s ({'correct' if correct else 'not the file'})",
    )


@pytest.mark.lab("lab5.class-norms")
def test_nothing_is_printed_on_stdout_per_request(
    mode: str, server_factory: ServerFactory, request: pytest.FixtureRequest
) -> None:
    """Without -v, serving requests prints no line per request on stdout (a banner is fine)."""
    server = server_factory(mode)
    banner = server.stdout_text().count("\n")
    for sent in (PAGE, MISSING, POST) * (QUIET_REQUESTS // 3):
        ask(server, sent)
    server.stop()
    printed = server.stdout_text().splitlines()[banner:]
    if len(printed) < QUIET_REQUESTS:
        return
    shown = "\n".join(printed[:3])
    fail_with(
        request,
        [example(PAGE, f"stdout: {shown}", "nothing on stdout per request (stderr is for logs)")],
        f"lab 5 class norms: logs and errors go to stderr, but {QUIET_REQUESTS} requests "
        f"printed {len(printed)} lines on stdout, e.g.:\n{shown}",
    )


@pytest.mark.lab("lab5.404")
def test_404_page_comes_from_the_served_folder(
    mode: str, server_factory: ServerFactory, request: pytest.FixtureRequest
) -> None:
    """A 404's page is the served folder's 404.html or the server's own, never one from its cwd.

    The server's working directory holds decoy `404.html` and `www/404.html` pages.
    """
    server = server_factory(mode)
    plant_decoys(server)
    reply = ask(server, MISSING)
    if reply.status == 404 and DECOY_404_MARKER not in reply.body:
        return
    expected = "404 with the served folder's 404.html (or the server's own page)"
    decoy = DECOY_404_MARKER in reply.body
    fail_with(
        request,
        [example(MISSING, response_words(reply), expected)],
        "lab 5: a missing file gets 404 with an error page from the folder given with -f; "
        + (
            "this one came from the server's working directory (a decoy 404.html there)"
            if decoy
            else f"got {reply.outcome} {reply.status}"
        ),
    )
