"""Conformance checks that need code rather than a table row."""

# Strategy: each test starts its own server (server_factory) so it can watch that server alone:
# its memory while a 2 GiB sparse file streams (sampled from another thread's download), its
# answer for a file it cannot read (started unprivileged, since root reads anything), and its
# survival when clients hang up mid-download. Failure messages start with what is checked and
# the rule it comes from, then what came back.

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable

import pytest

from harness.client import Reply, exchange
from harness.evidence import example, exit_words, response_words
from harness.fixtures import SPARSE_NAME, SPARSE_SIZE
from harness.server import ServerFactory, ServerProcess

DOWNLOAD = b"GET /10mb.bin HTTP/1.0\r\n\r\n"
DEATH_WAIT = 2.0
MIB = 1024 * 1024
RSS_SLACK = 256 * MIB
BIG_TIMEOUT = 120.0


def _message(what: str, source: str, sent: bytes, reply: Reply | None, problem: str) -> str:
    """Return a failure message: check and rule, the problem, what was sent, what came back."""
    lines = [f"{what} ({source}): {problem}", f"sent: {sent!r}"]
    return "\n".join(lines + (["got:", reply.describe()] if reply else []))


def _download_watching_rss(server: ServerProcess, request: bytes) -> tuple[Reply, int, int]:
    """Download in a thread while sampling the server tree's RSS; return (reply, base, peak)."""
    baseline = server.rss()
    peak, result = baseline, {}

    def download() -> None:
        result["reply"] = exchange(
            server.port, request, timeout=BIG_TIMEOUT, host=server.host, body_limit=64 * 1024
        )

    worker = threading.Thread(target=download)
    worker.start()
    while worker.is_alive():
        peak = max(peak, server.rss())
        worker.join(0.02)
    return result["reply"], baseline, peak


@pytest.mark.lab("lab5.large-files")
def test_huge_file_is_streamed_with_flat_memory(mode: str, server_factory: ServerFactory) -> None:
    """A 2 GiB file comes back whole while the server's memory stays flat."""
    server = server_factory(mode)
    request = f"GET /{SPARSE_NAME} HTTP/1.0\r\n\r\n".encode()
    reply, baseline, peak = _download_watching_rss(server, request)
    what, source = (
        "2 GiB sparse file",
        "lab5: return a file of any size without reading it into memory",
    )
    if reply.status != 200 or reply.body_received != SPARSE_SIZE or reply.body.strip(b"\0"):
        problem = f"expected 200 and {SPARSE_SIZE} zero bytes, got {reply.body_received} bytes"
        pytest.fail(_message(what, source, request, reply, problem), pytrace=False)
    if peak - baseline > RSS_SLACK:
        problem = f"server RSS grew from {baseline // MIB} MiB to {peak // MIB} MiB while sending"
        pytest.fail(_message(what, source, request, reply, problem), pytrace=False)
    server.assert_alive()


@pytest.mark.tier("recommended")
def test_unreadable_file_is_403(mode: str, server_factory: ServerFactory) -> None:
    """A file the server may not read (mode 000) is answered 403 with an HTML page."""
    server = server_factory(mode, unprivileged=True)
    request = b"GET /unreadable.txt HTTP/1.0\r\n\r\n"
    reply = exchange(server.port, request, host=server.host)
    html = (reply.header("Content-Type") or "").lower().startswith("text/html") and reply.body
    if reply.status != 403 or not html:
        problem = "expected 403 with an HTML body"
        source = "lab5: other errors get the appropriate code; RFC9110-15.5.4"
        pytest.fail(_message("unreadable file", source, request, reply, problem), pytrace=False)
    server.assert_alive()


def _hang_up_mid_download(server: ServerProcess, request: bytes) -> None:
    """Request a big file, read one byte, then close with a reset (SO_LINGER 0).

    A server that already died (refused, reset) ends the attempt quietly: the check after says so.
    """
    try:
        with socket.create_connection((server.host, server.port), timeout=5) as sock:
            sock.sendall(request)
            sock.recv(1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        return


@pytest.mark.lab("lab5.client-abort")
def test_server_survives_clients_hanging_up(
    mode: str, server_factory: ServerFactory, record_property: Callable[[str, object], None]
) -> None:
    """Clients that reset the connection mid-download do not kill the server."""
    server = server_factory(mode)
    for _ in range(3):
        _hang_up_mid_download(server, DOWNLOAD)
    request = b"GET /page.html HTTP/1.0\r\n\r\n"
    reply = exchange(server.port, request, host=server.host)
    if reply.status != 200 or server.exit_status() is not None:
        status = server.wait_exit(DEATH_WAIT)
        shown = example(
            DOWNLOAD + b" (read 1 byte, then reset the connection; 3 times)",
            response_words(reply),
            "the server keeps serving: 200 for the next request",
            exit_status=status,
            stderr_tail=server.stderr_tail(),
        )
        record_property("evidence", [shown])
        record_property("finding", "crash" if status is not None else None)
        problem = "the server stopped serving after clients hung up mid-download"
        if status is not None:
            problem += f" ({exit_words(status)}): " + server.death_report()
        source = "lab6: serve many clients; a client may hang up at any time"
        pytest.fail(_message("client hang-up", source, request, reply, problem), pytrace=False)
