"""Sending one response without ever blocking, and `serve_request`, the blocking modes' worker.

Strategy: a Transfer is what is left of a response on its (non-blocking) socket: a queue of parts,
bytes or a file range, sent with `send` and zero-copy `os.sendfile` as far as the socket takes
them; then the lingering close (httpd/connection.py). A worker drives it with `finish_blocking`
(wait as long as the idle timeout allows: thread, process, single) or `push` (stop at the first
short stall: the pools, which hand the Transfer back to their poller, so that a pool worker never
waits on a slow network). The stall is STALL_SECONDS, 5 ms: a client reading at loopback or LAN
speed makes room in its socket buffer within microseconds, so it keeps the worker and its full
speed; one that makes none for 5 ms is slow by the measure of a worker's time, and the poller
finishes it (at nearly the same speed, with the same sendfile, if it was only descheduled). Each
slow reader then costs a worker a few ms, not 200. Handing back at the first would-block instead
would send nearly every big download through the one poller: the buffer fills within the first
megabytes even for the fastest client. `export` and `imported` carry a Transfer between processes as
descriptors, the bytes part in an unlinked temporary file.
"""

from __future__ import annotations

import json
import logging
import os
import select
import socket
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from httpd.connection import (
    DRAIN_SECONDS,
    Settings,
    connection_log,
    discard_input,
    end_of_response,
)
from httpd.protocol import HttpError, Request
from httpd.responses import Response, respond

LOG = logging.getLogger("http_server")
PEER_GONE = (BrokenPipeError, ConnectionResetError, TimeoutError)
SENDFILE_CHUNK = 4 * 1024 * 1024
STALL_SECONDS = 0.005


@dataclass
class FilePart:
    """The bytes `offset` up to `end` of an open file, still to be sent."""

    file: BinaryIO
    offset: int
    end: int
    path: str = ""

    def __len__(self) -> int:
        """Bytes still to send."""
        return self.end - self.offset


class Transfer:
    """The unsent rest of one response, then its lingering close."""

    def __init__(self, conn: socket.socket, parts: list[bytes | FilePart], lingering: bool) -> None:
        """Take over `conn` (made non-blocking) with what remains to send.

        Args:
            conn: the client's socket; the Transfer closes it.
            parts: bytes and file ranges, in order; the Transfer closes the files.
            lingering: True when everything is sent and the close is under way.
        """
        self.conn = conn
        self.parts: deque[memoryview | FilePart] = deque(
            part if isinstance(part, FilePart) else memoryview(part) for part in parts
        )
        self.lingering = lingering
        conn.setblocking(False)

    @classmethod
    def of(cls, conn: socket.socket, response: Response) -> Transfer:
        """Return the Transfer of a whole planned response (the head with the small body)."""
        parts: list[bytes | FilePart] = [response.head() + response.body]
        if response.file is not None:
            parts.append(FilePart(response.file, 0, response.file_size, response.path))
        return cls(conn, parts, lingering=False)

    def send_some(self) -> None:
        """Send what the socket takes now; once all is sent, shut our side and start lingering.

        Raises:
            BrokenPipeError, ConnectionResetError: the client has gone.
        """
        while self.parts:
            part = self.parts[0]
            try:
                if isinstance(part, FilePart):
                    self._send_file(part)
                else:
                    self.parts[0] = part[self.conn.send(part) :]
            except BlockingIOError:
                return
            if not self.parts[0]:
                self._drop_first()
        end_of_response(self.conn)
        self.lingering = True

    def _send_file(self, part: FilePart) -> None:
        """Send a piece of a file part; a file that shrank ends it early (the client sees a short
        body and the close, never a loop that makes no progress)."""
        size = min(SENDFILE_CHUNK, part.end - part.offset)
        sent = os.sendfile(self.conn.fileno(), part.file.fileno(), part.offset, size)
        if sent == 0:
            LOG.warning(
                "%s shrank while being sent: closing after %d of %d bytes",
                part.path,
                part.offset,
                part.end,
            )
            part.end = part.offset
        part.offset += sent

    def _drop_first(self) -> None:
        """Forget the first part, which is fully sent (closing its file)."""
        part = self.parts.popleft()
        if isinstance(part, FilePart):
            part.file.close()

    def finish_blocking(self, timeout: float) -> None:
        """Send everything and linger here, waiting at most `timeout` s for each bit of progress.

        Raises:
            TimeoutError: the client stopped reading for `timeout` seconds.
        """
        while not self.lingering:
            self.send_some()
            if not self.lingering and not wait_for(self.conn, select.POLLOUT, timeout):
                raise TimeoutError("the client stopped reading the response")
        deadline = time.monotonic() + DRAIN_SECONDS
        while not discard_input(self.conn) and (left := deadline - time.monotonic()) > 0:
            wait_for(self.conn, select.POLLIN, left)

    def push(self, stall: float = STALL_SECONDS) -> bool:
        """Send and linger while the client keeps up; stop when it stalls for `stall` seconds.

        Returns:
            True when the connection is done with (close it); False when the rest waits on the
            client (hand the Transfer to a poller).
        """
        while not self.lingering:
            self.send_some()
            if not self.lingering and not wait_for(self.conn, select.POLLOUT, stall):
                return False
        return wait_for(self.conn, select.POLLIN, stall) and discard_input(self.conn)

    def export(self) -> tuple[bytes, list[int]]:
        """Describe this Transfer for another process: a small JSON payload and descriptors
        (the socket's, then one per part; bytes are moved to an unlinked temporary file)."""
        files = [part if isinstance(part, FilePart) else spill(part) for part in self.parts]
        self.parts = deque(files)
        ranges = [(part.offset, part.end, part.path) for part in files]
        payload = json.dumps({"lingering": self.lingering, "ranges": ranges}).encode()
        return payload, [self.conn.fileno(), *(part.file.fileno() for part in files)]

    @classmethod
    def imported(cls, payload: bytes, fds: list[int]) -> Transfer:
        """Rebuild a Transfer from `export`'s payload and the descriptors received with it."""
        description = json.loads(payload)
        conn = socket.socket(fileno=fds[0])
        files = [os.fdopen(fd, "rb", buffering=0) for fd in fds[1:]]
        ranges = description["ranges"]
        parts = [FilePart(f, *where) for f, where in zip(files, ranges, strict=True)]
        return cls(conn, parts, description["lingering"])

    def close(self) -> None:
        """Close the socket and every file still to be sent."""
        while self.parts:
            self._drop_first()
        self.conn.close()


def spill(data: memoryview) -> FilePart:
    """Return `data` as a part of an unlinked temporary file (a descriptor can travel)."""
    file = tempfile.TemporaryFile()  # noqa: SIM115 (the Transfer closes it)
    file.write(data)
    return FilePart(file, 0, len(data))


def wait_for(conn: socket.socket, event: int, timeout: float) -> bool:
    """Wait up to `timeout` s for `event` (select.POLLIN or POLLOUT) on `conn`; True if ready."""
    poller = select.poll()
    poller.register(conn, event)
    return bool(poller.poll(timeout * 1000))


def serve_request(
    conn: socket.socket,
    outcome: Request | HttpError,
    settings: Settings,
    hand_back: Callable[[Transfer], None] | None = None,
) -> None:
    """Answer the request whose head has arrived on `conn`; close `conn` or hand it back.

    Args:
        conn: the connection; this function owns it.
        outcome: its parsed head (or the error to answer with).
        settings: the server's settings (`--delay` sleeps here, before the answer).
        hand_back: a pool's way to give the rest of the response to its poller as soon as the
            client stalls; None to wait for the client here, up to the idle timeout.
    """
    log = connection_log(conn)
    log.received(outcome)
    transfer = None
    try:
        if settings.delay:
            time.sleep(settings.delay)
        response = respond(outcome, settings.root, settings.dotfiles)
        transfer = Transfer.of(conn, response)
        if hand_back is None:
            transfer.finish_blocking(settings.timeout)
        elif not transfer.push():
            log.answered(response)
            hand_back(transfer)
            return
        log.answered(response)
    except PEER_GONE as error:
        log.debug("client went away: %r", error)
    except Exception:
        log.exception("unexpected failure")
    if transfer is not None:
        transfer.close()
    else:
        conn.close()
