"""What every mode shares about a connection: the settings, its log, and the polite close.

Strategy: a response ends with `end_of_response` (shut our sending side), then the connection
lingers: `discard_input` drops what the client still sends until it closes, for at most
DRAIN_SECONDS. Closing at once would make the kernel answer unread input with a reset, which
destroys the part of the response the client has not read yet. The blocking modes serve through
httpd/transfer.py, the event loops (select, async) call the same two functions.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from dataclasses import dataclass

from httpd.protocol import HttpError, Request
from httpd.responses import Response

LOG = logging.getLogger("http_server")
RECV_SIZE = 65536
DRAIN_SECONDS = 2.0
DRAIN_LIMIT = 64 * 1024 * 1024
DISCARD_SLICE = 1024 * 1024
HEAD_TIMEOUT = 20.0


@dataclass(frozen=True)
class Settings:
    """What every mode needs to serve: the folder, the delay, the bounds, the pool size, and
    whether hidden paths (a segment starting with a dot) are served."""

    root: str
    delay: float
    timeout: float
    workers: int | None = None
    dotfiles: bool = False
    head_timeout: float = HEAD_TIMEOUT
    max_connections: int = 1024


class ConnectionLog(logging.LoggerAdapter):
    """Prefixes every message with the connection it is about, and times its request."""

    received_at = 0.0

    def process(self, msg: str, kwargs: dict) -> tuple[str, dict]:
        """Add the `[fd N peer]` tag to `msg`."""
        return f"[{self.extra['tag']}] {msg}", kwargs

    def received(self, outcome: Request | HttpError) -> None:
        """Log (with -v) the request head that arrived, and start timing its answer."""
        self.received_at = time.monotonic()
        self.debug("received %s", describe(outcome))

    def answered(self, response: Response) -> None:
        """Log (with -v) the status, the file's path, the bytes sent and the time taken
        since the head arrived (the -d delay included): "answered 200 /a.html, 1260 bytes in
        0.4 ms"."""
        if not self.isEnabledFor(logging.DEBUG):
            return
        path = f" {response.path}" if response.path else ""
        size = len(response.body) + (response.file_size if response.file is not None else 0)
        took = (time.monotonic() - self.received_at) * 1000
        self.debug("answered %d%s, %d bytes in %.1f ms", response.status, path, size, took)


def connection_log(conn: socket.socket) -> ConnectionLog:
    """Return a logger tagged with the socket's fd, and its peer when debugging."""
    tag = f"fd {conn.fileno()}"
    if LOG.isEnabledFor(logging.DEBUG):
        try:
            host, port = conn.getpeername()[:2]
            tag += f" {host}:{port}"
        except OSError:
            pass
    return ConnectionLog(LOG, {"tag": tag})


def describe(outcome: Request | HttpError) -> str:
    """Summarise a parse outcome in a few words for the debug log."""
    if isinstance(outcome, HttpError):
        return f"bad request ({outcome})"
    return f"{outcome.method} {outcome.target} {outcome.version}"


def end_of_response(conn: socket.socket) -> None:
    """Shut our sending side once the response is out: the client sees end-of-file."""
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)


def discard_input(conn: socket.socket) -> bool:
    """Read and drop what the non-blocking `conn` has received (at most DISCARD_SLICE bytes, so
    that a client sending fast cannot keep an event loop here).

    Returns:
        True when the lingering is over (the client closed, or failed); False when it may still
        send (wait until `conn` is readable, then call again).
    """
    for _ in range(DISCARD_SLICE // RECV_SIZE):
        try:
            if not conn.recv(RECV_SIZE):
                return True
        except BlockingIOError:
            return False
        except OSError:
            return True
    return False
