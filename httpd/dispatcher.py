"""The accept loop shared by the blocking modes.

Strategy: one selectors loop owns the listening socket. A new connection is handed to the mode's
`handoff` as soon as it has bytes to read; until then it waits in the poller, where it costs no
thread, process or pool worker (Chrome's speculative connections), and is closed after the idle
timeout. The loop ends when its stop descriptor becomes readable (a signal, or the parent's pipe
closing); it then refuses new connections at once and closes the parked ones.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import selectors
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from httpd.lifecycle import SHUTDOWN_GRACE

LOG = logging.getLogger("http_server")
ACCEPT_BURST = 64


class Dispatcher:
    """Accepts connections, parks the idle ones, and hands ready ones to a callback."""

    def __init__(
        self,
        listener: socket.socket,
        stop: Any,
        handoff: Callable[[socket.socket], None],
        timeout: float,
    ) -> None:
        """Prepare the loop.

        Args:
            listener: the listening socket (made non-blocking here).
            stop: a file object or descriptor that becomes readable when the loop must stop.
            handoff: called with each connection that has data to read; it owns the socket.
            timeout: seconds a parked connection may stay silent before it is closed.
        """
        self.listener = listener
        self.handoff = handoff
        self.timeout = timeout
        self.parked: dict[socket.socket, float] = {}
        self.running = True
        self.selector = selectors.DefaultSelector()
        listener.setblocking(False)
        self.watch(listener, self._accept)
        self.watch(stop, self._stop)

    def watch(self, fileobj: Any, callback: Callable[[Any], None]) -> None:
        """Call `callback(fileobj)` from the loop whenever `fileobj` is readable."""
        self.selector.register(fileobj, selectors.EVENT_READ, callback)

    def unwatch(self, fileobj: Any) -> None:
        """Stop watching `fileobj`."""
        self.selector.unregister(fileobj)

    def run(self) -> None:
        """Loop until told to stop (the listener is closed by then; call `finish` next)."""
        while self.running:
            for key, _ in self.selector.select(self._next_timeout()):
                key.data(key.fileobj)
            self._expire_parked(time.monotonic())

    def finish(self, late: list[socket.socket]) -> None:
        """After stopping: hand over the parked and `late` connections that start their request
        within the shutdown grace (they raced the signal); close the silent rest.

        Args:
            late: connections accepted after the loop stopped (the listener's queue).
        """
        settle([*self.release_parked(), *late], self.handoff)

    def release_parked(self) -> list[socket.socket]:
        """Stop watching the parked connections and return them to the caller."""
        released = list(self.parked)
        for conn in released:
            self.unwatch(conn)
        self.parked.clear()
        return released

    def release_in_child(self) -> None:
        """In a forked child: close every descriptor this loop holds (the child needs none)."""
        for key in list(self.selector.get_map().values()):
            if isinstance(key.fileobj, int):
                os.close(key.fileobj)
            else:
                key.fileobj.close()
        self.selector.close()

    def _next_timeout(self) -> float | None:
        """Seconds until the oldest parked connection expires, or None when none is parked."""
        for deadline in self.parked.values():
            return max(0.0, deadline - time.monotonic())
        return None

    def _accept(self, listener: socket.socket) -> None:
        """Route the pending connections (unless the loop has just been stopped)."""
        if self.running:
            for conn in accept_burst(listener):
                self.route(conn)

    def route(self, conn: socket.socket, may_park: bool = True) -> None:
        """Hand `conn` over if its request has started arriving, else park it (or close it).

        Args:
            conn: a connection just accepted, expired, or left over at shutdown.
            may_park: False when a silent `conn` must be closed rather than parked.
        """
        try:
            ready = conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            if may_park and self.running:
                self.parked[conn] = time.monotonic() + self.timeout
                self.watch(conn, self._unpark)
            else:
                conn.close()
            return
        except OSError:
            ready = b""
        if ready:
            self.handoff(conn)
        else:
            conn.close()

    def _unpark(self, conn: socket.socket) -> None:
        """A parked connection became readable: hand it over (unless an earlier event of the
        same batch already released it)."""
        if conn not in self.parked:
            return
        self.unwatch(conn)
        del self.parked[conn]
        self.handoff(conn)

    def _expire_parked(self, now: float) -> None:
        """Close the silent parked connections whose deadline is before `now`, oldest first.

        One whose request arrived meanwhile (the loop was busy, as in `single`) is served.
        """
        while self.parked:
            conn, deadline = next(iter(self.parked.items()))
            if deadline > now:
                return
            self.unwatch(conn)
            del self.parked[conn]
            self.route(conn, may_park=False)

    def _stop(self, stop: Any) -> None:
        """Stop accepting at once: new connections are refused from now on."""
        self.unwatch(stop)
        self.unwatch(self.listener)
        close_listener(self.listener)
        self.running = False


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


def settle(conns: list[socket.socket], handoff: Callable[[socket.socket], None]) -> None:
    """Give `conns` SHUTDOWN_GRACE seconds to start sending; hand over those that did, close
    the others."""
    deadline = time.monotonic() + SHUTDOWN_GRACE
    with selectors.DefaultSelector() as selector:
        for conn in conns:
            selector.register(conn, selectors.EVENT_READ)
        while selector.get_map() and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                selector.unregister(key.fileobj)
    for conn in conns:
        try:
            ready = conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except OSError:
            ready = b""
        if ready:
            handoff(conn)
        else:
            conn.close()


def close_listener(listener: socket.socket) -> None:
    """Stop listening now, also for forked processes that share the socket, and close it.

    `shutdown` acts on the socket itself, not this process's descriptor, so after it the kernel
    refuses new connections even while other processes still hold copies.
    """
    with contextlib.suppress(OSError):
        listener.shutdown(socket.SHUT_RDWR)
    listener.close()
