"""One blocking connection, start to finish: read the head, wait if asked, answer, close politely.

Strategy: `serve_connection` is the whole life of a connection in every blocking mode (single,
thread, thread-pool, process, process-pool); the modes differ only in who calls it. The socket
gets a timeout, so a silent or stalled client holds a worker for at most `Settings.timeout`.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass

from httpd.protocol import HttpError, Request, RequestParser
from httpd.responses import Response, respond

LOG = logging.getLogger("http_server")
RECV_SIZE = 65536
DRAIN_SECONDS = 2.0
DRAIN_LIMIT = 64 * 1024 * 1024
PEER_GONE = (BrokenPipeError, ConnectionResetError, TimeoutError)


@dataclass(frozen=True)
class Settings:
    """What every mode needs to serve: the folder, the delay, the idle timeout, the pool size,
    and whether hidden paths (a segment starting with a dot) are served."""

    root: str
    delay: float
    timeout: float
    workers: int | None = None
    dotfiles: bool = False


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


def needs_drain(outcome: Request | HttpError) -> bool:
    """True when the client may still be sending after its head (a body, or garbage)."""
    return isinstance(outcome, HttpError) or outcome.has_body


def serve_connection(conn: socket.socket, settings: Settings) -> None:
    """Serve the single request of a blocking connection, then close it.

    Args:
        conn: a connected socket; this function owns it and always closes it.
        settings: the server's settings.
    """
    log = connection_log(conn)
    with conn:
        conn.settimeout(settings.timeout)
        try:
            outcome = read_request(conn)
            if outcome is None:
                log.debug("closed without sending a request")
                return
            log.received(outcome)
            if settings.delay:
                time.sleep(settings.delay)
            send_response(conn, respond(outcome, settings.root, settings.dotfiles), log)
            if needs_drain(outcome):
                drain(conn)
        except PEER_GONE as error:
            log.debug("client went away: %r", error)
        except Exception:
            log.exception("unexpected failure")


def read_request(conn: socket.socket) -> Request | HttpError | None:
    """Receive until a request head is complete.

    Returns:
        The Request, the HttpError to answer with, or None when the client sent nothing at all.
    """
    parser = RequestParser()
    while True:
        try:
            data = conn.recv(RECV_SIZE)
        except TimeoutError:
            data = None
        if not data and not parser.started:
            return None
        if (outcome := parser.outcome(data)) is not None:
            return outcome


def send_response(conn: socket.socket, response: Response, log: ConnectionLog) -> None:
    """Send the head and body of `response`, streaming its file with zero-copy sendfile."""
    try:
        conn.sendall(response.head() + response.body)
        if response.file is not None:
            sent = conn.sendfile(response.file)
            if sent < response.file_size:
                response.log_shrunk(log, sent)
    finally:
        response.close()
    log.answered(response)


def drain(conn: socket.socket) -> None:
    """Shut our sending side, then discard what the client still sends, for a bounded time.

    Closing with unread data makes the kernel send a reset, which can destroy the response the
    client has not read yet; reading until the client closes lets it read the answer first.
    """
    try:
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        return  # the client is gone already (it closed in the middle of its head)
    deadline = time.monotonic() + DRAIN_SECONDS
    received = 0
    while received < DRAIN_LIMIT and (left := deadline - time.monotonic()) > 0:
        conn.settimeout(left)
        data = conn.recv(RECV_SIZE)
        if not data:
            return
        received += len(data)
