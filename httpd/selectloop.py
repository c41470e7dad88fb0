"""The select mode: one thread, one selectors loop, each connection a small state machine.

Strategy: a connection goes READING -> (waiting for the delay timer) -> WRITING -> DRAINING ->
closed. The loop sleeps in `select` until a socket is ready or the next timer is due (a delay, or
the once-a-second sweep that ends connections past their deadline: a head that stopped coming
gets its 408). Nothing ever blocks: reads and writes are non-blocking and files go out with
os.sendfile, as much as the socket takes at a time. After the answer, the connection shuts its
sending side and discards what the client still sends until it closes (or for a bounded time):
closing with unread input would reset the connection and destroy the answer in flight.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import selectors
import socket
import time
from collections.abc import Callable

from httpd.connection import (
    DRAIN_LIMIT,
    DRAIN_SECONDS,
    RECV_SIZE,
    Settings,
    connection_log,
)
from httpd.dispatcher import accept_burst, close_listener
from httpd.lifecycle import SHUTDOWN_GRACE, ShutdownSignals
from httpd.protocol import HttpError, Request, RequestParser
from httpd.responses import Response, respond

LOG = logging.getLogger("http_server")
SENDFILE_CHUNK = 1024 * 1024
SWEEP_SECONDS = 1.0
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class SelectStrategy:
    """The event loop: a selector, a timer heap, and the live connections."""

    def run(self, listener: socket.socket, settings: Settings, signals: ShutdownSignals) -> None:
        """Serve until the first shutdown signal, then until the last connection is done."""
        self.settings, self.listener = settings, listener
        self.selector = selectors.DefaultSelector()
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self.sequence = itertools.count()
        self.connections: set[Connection] = set()
        self.listening = True
        listener.setblocking(False)
        self.selector.register(listener, READ, self._accept)
        self.selector.register(signals.reader, READ, self._stop)
        self.call_later(SWEEP_SECONDS, self._sweep)
        while self.listening or self.connections:
            for key, mask in self.selector.select(self._next_timeout()):
                key.data(key.fileobj, mask)
            self._run_due_timers()

    def abort(self) -> None:
        """Nothing to kill: the connections die with the process."""

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        """Run `callback` from the loop `delay` seconds from now."""
        heapq.heappush(self.timers, (time.monotonic() + delay, next(self.sequence), callback))

    def _next_timeout(self) -> float | None:
        """Seconds until the next timer, or None when there is none."""
        return max(0.0, self.timers[0][0] - time.monotonic()) if self.timers else None

    def _run_due_timers(self) -> None:
        """Run every timer whose time has come."""
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            heapq.heappop(self.timers)[2]()

    def _sweep(self) -> None:
        """Timer, every second: close the connections that are past their deadline."""
        self._expire_due()
        self.call_later(SWEEP_SECONDS, self._sweep)

    def _expire_due(self) -> None:
        """End the connections that are past their deadline."""
        now = time.monotonic()
        for connection in [c for c in self.connections if c.deadline <= now]:
            connection.expire()

    def _accept(self, listener: socket.socket, mask: int) -> None:
        """Accept pending connections (a bounded burst) and start reading from them."""
        for sock in accept_burst(listener):
            Connection(self, sock)

    def _stop(self, reader: socket.socket, mask: int) -> None:
        """First signal: take what is queued, refuse new connections, hurry the silent ones (a
        timer ends them the moment their grace is over, not at the next sweep)."""
        self._accept(self.listener, READ)
        self.selector.unregister(reader)
        self.selector.unregister(self.listener)
        close_listener(self.listener)
        self.listening = False
        for connection in self.connections:
            connection.hurry_if_silent()
        self.call_later(SHUTDOWN_GRACE, self._expire_due)
        LOG.warning("shutting down: waiting for requests in flight (Ctrl-C again to force quit)")


class Connection:
    """One client, in one of four states: reading, waiting (the delay), writing, draining.

    Each state first tries its socket call at once (a request usually arrives with its
    connection, and a small answer fits the send buffer) and registers with the selector only
    when the call would block, so most connections never touch the selector.
    """

    def __init__(self, loop: SelectStrategy, sock: socket.socket) -> None:
        """Join the loop's live connections, arm the idle timer, and start reading."""
        self.loop, self.sock = loop, sock
        self.settings = loop.settings
        self.log = connection_log(sock)
        self.parser = RequestParser()
        self.state = "reading"
        self.events = 0
        self.outcome: Request | HttpError | None = None
        self.response: Response | None = None
        self.pending = memoryview(b"")
        self.offset = 0
        self.drained = 0
        sock.setblocking(False)
        loop.connections.add(self)
        self._extend_deadline(self.settings.timeout)
        self._on_event(sock, READ)

    def hurry_if_silent(self) -> None:
        """At shutdown: a connection that has not sent a byte gets only the shutdown grace."""
        if not self.parser.started:
            self.deadline = min(self.deadline, time.monotonic() + SHUTDOWN_GRACE)

    def close(self) -> None:
        """Unregister, close the socket and any open file; idempotent."""
        if self.state == "closed":
            return
        self._listen_for(0)
        self.state = "closed"
        self.loop.connections.discard(self)
        if self.response is not None:
            self.response.close()
        self.sock.close()

    def _listen_for(self, events: int) -> None:
        """Make the selector report `events` (READ, WRITE, or 0 for nothing) for this socket."""
        if events == self.events:
            return
        if not self.events:
            self.loop.selector.register(self.sock, events, self._on_event)
        elif not events:
            self.loop.selector.unregister(self.sock)
        else:
            self.loop.selector.modify(self.sock, events, self._on_event)
        self.events = events

    def _on_event(self, sock: socket.socket, mask: int) -> None:
        """Run the current state's step; wait in the selector if it would block; close on error."""
        if self.state == "closed":
            return
        try:
            getattr(self, f"_on_{self.state}")()
        except BlockingIOError:
            self._listen_for(WRITE if self.state == "writing" else READ)
        except OSError as error:
            self.log.debug("client went away: %r", error)
            self.close()
        except Exception:
            self.log.exception("unexpected failure")
            self.close()

    def _extend_deadline(self, seconds: float) -> None:
        """Allow `seconds` more before the sweep closes this connection for making no progress."""
        self.deadline = time.monotonic() + seconds

    def expire(self) -> None:
        """Past its deadline (waiting for the delay has none): answer 408 to a head that stopped
        coming, close anything else."""
        if self.state == "reading" and self.parser.started:
            self._received(self.parser.outcome(None))
            return
        self.log.debug("closing after the deadline, while %s", self.state)
        self.close()

    def _on_reading(self) -> None:
        """Receive what arrived and feed it to the parser."""
        data = self.sock.recv(RECV_SIZE)
        self._extend_deadline(self.settings.timeout)
        if not data and not self.parser.started:
            self.close()
        elif (outcome := self.parser.outcome(data)) is None:
            self._listen_for(READ)
        else:
            self._received(outcome)

    def _received(self, outcome: Request | HttpError) -> None:
        """The head is complete (or invalid): stop reading, wait the delay, then answer."""
        self.log.received(outcome)
        self.outcome = outcome
        self._listen_for(0)
        self.state = "waiting"
        self._extend_deadline(float("inf"))
        if self.settings.delay:
            self.loop.call_later(self.settings.delay, self._start_answer)
        else:
            self._start_answer()

    def _start_answer(self) -> None:
        """Plan the response and start writing it."""
        if self.state != "waiting":
            return
        self.response = respond(self.outcome, self.settings.root, self.settings.dotfiles)
        self.pending = memoryview(self.response.head() + self.response.body)
        self.state = "writing"
        self._extend_deadline(self.settings.timeout)
        self._on_event(self.sock, WRITE)

    def _on_writing(self) -> None:
        """Send the head and body, then a chunk of the file; wait for room when they remain."""
        if self.pending:
            self.pending = self.pending[self.sock.send(self.pending) :]
            self._extend_deadline(self.settings.timeout)
            if self.pending:
                self._listen_for(WRITE)
                return
        if self.offset < self.response.file_size:
            left = min(SENDFILE_CHUNK, self.response.file_size - self.offset)
            sent = os.sendfile(self.sock.fileno(), self.response.file.fileno(), self.offset, left)
            if not sent:
                self.response.log_shrunk(self.log, self.offset)
                self.close()
                return
            self.offset += sent
            self._extend_deadline(self.settings.timeout)
        if self.offset < self.response.file_size:
            self._listen_for(WRITE)
        else:
            self._finish()

    def _finish(self) -> None:
        """The answer is out: end our side, then drain what the client still sends."""
        self.log.answered(self.response)
        self.sock.shutdown(socket.SHUT_WR)
        self.state = "draining"
        self._extend_deadline(DRAIN_SECONDS)
        self._listen_for(READ)

    def _on_draining(self) -> None:
        """Discard what arrives until the client closes or has sent too much."""
        data = self.sock.recv(RECV_SIZE)
        self.drained += len(data)
        if not data or self.drained > DRAIN_LIMIT:
            self.close()
