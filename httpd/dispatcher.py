"""The poller shared by the blocking modes: accept, read every head, finish slow responses.

Strategy: one selectors loop owns the listening socket and every connection that is waiting on
the network, so none of them holds a thread, process or pool worker. It reads each head without
blocking, under two bounds: the idle timeout (silence) and one deadline for the whole head
(`--head-timeout`: a client dribbling a byte a second gets 408 then). Only a complete head is
handed to the mode's `handoff`. The pools hand back what their client is slow to read (a
Transfer): the loop finishes it with non-blocking sends, then lingers until the client closes.
Over `--max-connections`, a new connection is closed at once. At the first shutdown signal it
stops accepting, gives unfinished heads SHUTDOWN_GRACE more, and runs until nothing is left in
it and the mode reports no request in flight.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import selectors
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from httpd.connection import DRAIN_SECONDS, RECV_SIZE, Settings, discard_input
from httpd.lifecycle import SHUTDOWN_GRACE, ShutdownSignals
from httpd.protocol import HttpError, Request, RequestParser
from httpd.transfer import PEER_GONE, Transfer

LOG = logging.getLogger("http_server")
ACCEPT_BURST = 64
SWEEP_SECONDS = 0.25
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
Handoff = Callable[[socket.socket, "Request | HttpError"], None]


@dataclass
class Head:
    """A head being read: its parser and the deadlines of the head and of the silence."""

    parser: RequestParser = field(default_factory=RequestParser)
    head_deadline: float = 0.0
    deadline: float = 0.0


class Dispatcher:
    """Accepts connections, reads their heads, and hands complete ones to a callback."""

    def __init__(
        self,
        listener: socket.socket,
        signals: ShutdownSignals,
        handoff: Handoff,
        settings: Settings,
    ) -> None:
        """Prepare the loop.

        Args:
            listener: the listening socket (made non-blocking here).
            signals: the shutdown signals; the loop stops when their reader becomes readable.
            handoff: called with each connection whose head is complete, and the parsed head.
            settings: the bounds (timeout, head_timeout, max_connections).
        """
        self.listener, self.signals = listener, signals
        self.handoff, self.settings = handoff, settings
        self.heads: dict[socket.socket, Head] = {}
        self.transfers: dict[socket.socket, tuple[Transfer, float]] = {}
        self.busy: Callable[[], bool] = lambda: False
        self.posted: deque[Callable[[], None]] = deque()
        self.wake_reader, self.wake_writer = socket.socketpair()
        self.wake_writer.setblocking(False)
        self.running = True
        self.next_sweep = 0.0
        self.grace_end = math.inf
        self.selector = selectors.DefaultSelector()
        listener.setblocking(False)
        self.watch(listener, self._accept)
        self.watch(signals.reader, self._stop)
        self.watch(self.wake_reader, self._run_posted)

    def watch(self, fileobj: Any, callback: Callable[[Any], None], events: int = READ) -> None:
        """Call `callback(fileobj)` from the loop whenever `fileobj` is ready for `events`."""
        self.selector.register(fileobj, events, callback)

    def unwatch(self, fileobj: Any) -> None:
        """Stop watching `fileobj`."""
        self.selector.unregister(fileobj)

    def post(self, callback: Callable[[], None]) -> None:
        """Run `callback` in the loop's thread soon (callable from any thread)."""
        self.posted.append(callback)
        with contextlib.suppress(BlockingIOError):
            self.wake_writer.send(b"x")

    def run(self) -> None:
        """Loop until stopped and empty, with nothing in flight in the mode (`busy`, polled
        every SWEEP_SECONDS once stopped). Sweeps come every SWEEP_SECONDS, and one exactly at
        the end of the shutdown grace, when the silent connections are closed."""
        while self.running or self.heads or self.transfers or self.busy():
            waiting = self.heads or self.transfers or not self.running
            timeout = max(0.0, self.next_sweep - time.monotonic()) if waiting else None
            for key, _ in self.selector.select(timeout):
                key.data(key.fileobj)
            if (now := time.monotonic()) >= self.next_sweep:
                self.next_sweep = now + SWEEP_SECONDS
                if now < self.grace_end:
                    self.next_sweep = min(self.next_sweep, self.grace_end)
                self._sweep(now)

    def release_in_child(self) -> None:
        """In a forked child: close every descriptor this loop holds (the child needs none)."""
        for key in list(self.selector.get_map().values()):
            if isinstance(key.fileobj, int):
                os.close(key.fileobj)
            else:
                key.fileobj.close()
        self.selector.close()

    def _accept(self, listener: socket.socket) -> None:
        """Take the pending connections (unless the loop has just been stopped, in the same
        batch of events); over the maximum, close them at once."""
        if not self.running:
            return
        for conn in accept_burst(listener):
            if len(self.heads) + len(self.transfers) >= self.settings.max_connections:
                LOG.debug("over --max-connections: closing a new connection")
                conn.close()
            else:
                self._read_later(conn, time.monotonic() + self.settings.head_timeout)

    def _read_later(self, conn: socket.socket, head_deadline: float) -> None:
        """Read `conn`'s head now if it has arrived (it usually has), else watch `conn` until it
        is complete or a deadline passes."""
        conn.setblocking(False)
        deadline = min(head_deadline, time.monotonic() + self.settings.timeout)
        self._continue(conn, Head(head_deadline=head_deadline, deadline=deadline))

    def _read_head(self, conn: socket.socket) -> None:
        """A watched head has bytes: read on (unwatched meanwhile: it may be handed over)."""
        self._continue(conn, self._forget_head(conn))

    def _continue(self, conn: socket.socket, head: Head) -> None:
        """Read what arrived of `head`, and watch `conn` again if more is awaited."""
        if self._receive(conn, head):
            self._watch_head(conn, head)

    def _watch_head(self, conn: socket.socket, head: Head) -> None:
        """Wait in the poller for more of `head`."""
        self.heads[conn] = head
        self.watch(conn, self._read_head)

    def _receive(self, conn: socket.socket, head: Head) -> bool:
        """Read what arrived of `head`; hand `conn` over once the head is complete.

        Returns:
            True while more of the head is awaited; False once `conn` is handed over or closed.
        """
        try:
            data = conn.recv(RECV_SIZE)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if not data and not head.parser.started:
            conn.close()
            return False
        if (outcome := head.parser.outcome(data)) is None:
            head.deadline = min(head.head_deadline, time.monotonic() + self.settings.timeout)
            return True
        self.handoff(conn, outcome)
        return False

    def _forget_head(self, conn: socket.socket) -> Head:
        """Stop watching `conn`'s head; return the head."""
        self.unwatch(conn)
        return self.heads.pop(conn)

    def adopt(self, transfer: Transfer) -> None:
        """Finish sending `transfer` (a slow client's response) here, without blocking."""
        self.transfers[transfer.conn] = (transfer, self._transfer_deadline(transfer))
        self.watch(transfer.conn, self._advance, READ if transfer.lingering else WRITE)

    def _transfer_deadline(self, transfer: Transfer) -> float:
        """While sending: the idle timeout from now; while lingering: DRAIN_SECONDS from now."""
        return time.monotonic() + (DRAIN_SECONDS if transfer.lingering else self.settings.timeout)

    def _advance(self, conn: socket.socket) -> None:
        """The client of a transfer is ready: send more, or discard its input while lingering."""
        transfer, _ = self.transfers[conn]
        try:
            if transfer.lingering:
                if discard_input(conn):
                    self._end_transfer(conn)
                return
            transfer.send_some()
        except PEER_GONE:
            self._end_transfer(conn)
            return
        self.transfers[conn] = (transfer, self._transfer_deadline(transfer))
        if transfer.lingering:
            self.selector.modify(conn, READ, self._advance)

    def _end_transfer(self, conn: socket.socket) -> None:
        """Close a finished (or abandoned) transfer."""
        self.unwatch(conn)
        self.transfers.pop(conn)[0].close()

    def _run_posted(self, wake_reader: socket.socket) -> None:
        """Run the callbacks other threads posted."""
        wake_reader.recv(4096)
        while self.posted:
            self.posted.popleft()()

    def _sweep(self, now: float) -> None:
        """Close what passed its deadline: silent connections quietly, unfinished heads with
        408 (handed over like any head), stalled transfers. A head is read once more first:
        its bytes may have arrived while the loop was busy (`single` serving a delayed request).
        """
        for conn, head in [item for item in self.heads.items() if item[1].deadline <= now]:
            self._forget_head(conn)
            if not self._receive(conn, head):
                continue
            if head.deadline > now:
                self._watch_head(conn, head)
            elif head.parser.started:
                self.handoff(conn, HttpError(408, "the request head took too long"))
            else:
                conn.close()
        for conn in [conn for conn, (_, deadline) in self.transfers.items() if deadline <= now]:
            self._end_transfer(conn)

    def _stop(self, reader: Any) -> None:
        """Stop accepting at once; heads get SHUTDOWN_GRACE more, as do connections that
        completed their handshake before the signal (the `backlog`)."""
        self.unwatch(reader)
        self.unwatch(self.listener)
        close_listener(self.listener)
        self.running = False
        LOG.warning("shutting down: waiting for requests in flight (Ctrl-C again to force quit)")
        self.grace_end = grace = time.monotonic() + SHUTDOWN_GRACE
        self.next_sweep = min(self.next_sweep, grace)
        for head in self.heads.values():
            head.head_deadline = min(head.head_deadline, grace)
            head.deadline = min(head.deadline, grace)
        for conn in self.signals.backlog:
            self._read_later(conn, grace)


def accept_burst(listener: socket.socket) -> Iterator[socket.socket]:
    """Yield the connections waiting on the non-blocking `listener`, at most ACCEPT_BURST of them
    (a bound that keeps a busy loop fair to its other sockets)."""
    for _ in range(ACCEPT_BURST):
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return
        except OSError as error:
            if error.errno != errno.EINVAL:
                LOG.warning("accept failed: %s", error)
            return
        yield conn


def close_listener(listener: socket.socket) -> None:
    """Stop listening now, also for forked processes that share the socket, and close it.

    `shutdown` acts on the socket itself, not this process's descriptor, so after it the kernel
    refuses new connections even while other processes still hold copies.
    """
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()
