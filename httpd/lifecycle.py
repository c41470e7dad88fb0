"""Signals and shutdown, the same in every mode.

Strategy: SIGINT and SIGTERM only count, refuse new connections and wake the loop:
`signal.set_wakeup_fd` writes a byte to a socketpair that the mode's loop watches, and the loop
does the shutdown (finish in-flight requests, join, reap). A second signal raises ForcedExit
wherever the main thread is waiting, and `main` kills what is left. Forked children ignore
both signals: Ctrl-C in a terminal reaches the whole process group, and children must finish
their responses, not die mid-way.
"""

from __future__ import annotations

import contextlib
import signal
import socket
from collections.abc import Iterator
from types import FrameType

SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SHUTDOWN_GRACE = 1.0  # seconds a silent connection still gets, at shutdown, to start its request


class ForcedExit(SystemExit):
    """Raised in the main thread by a second SIGINT or SIGTERM: stop waiting, exit now.

    A SystemExit, so that it also escapes asyncio's callbacks (which log other exceptions).
    """


class ShutdownSignals:
    """Counts shutdown signals; `reader` becomes readable on the first one."""

    def __init__(self) -> None:
        """Install the handlers and the wake-up socketpair."""
        self.reader, self._writer = socket.socketpair()
        self.reader.setblocking(False)
        self._writer.setblocking(False)
        self.received = 0
        self.listener: socket.socket | None = None
        self.backlog: list[socket.socket] = []
        signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for signum in SHUTDOWN_SIGNALS:
            signal.signal(signum, self.handle)

    def handle(self, signum: int, frame: FrameType | None = None) -> None:
        """Count a signal; the second one raises ForcedExit.

        Args:
            signum: the signal number.
            frame: the interrupted frame (unused; part of the signal handler signature).
        """
        self.received += 1
        if self.received > 1:
            raise ForcedExit(signum)
        if self.listener is not None:
            self.backlog = accept_backlog(self.listener)
            self.listener.shutdown(socket.SHUT_RDWR)

    def refuse_connections_on(self, listener: socket.socket) -> None:
        """Make the first signal close `listener` at once, even while the main thread is busy.

        A busy main thread (the `single` mode serving a delayed request) reaches its loop only
        later. So the handler itself takes the connections that completed their handshake before
        the signal (they are in flight and will be served, in `backlog`), then shuts the socket
        down so that every later connection is refused.
        """
        self.listener = listener

    def close(self) -> None:
        """Close the socketpair (in a forked child, after `become_worker`)."""
        self.reader.close()
        self._writer.close()


def accept_backlog(listener: socket.socket) -> list[socket.socket]:
    """Accept, without blocking, every connection waiting in `listener`'s queue."""
    accepted = []
    while True:
        try:
            accepted.append(listener.accept()[0])
        except OSError:
            return accepted


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Block the shutdown signals while threads are started (or children forked) in this block.

    New threads inherit the mask, so the kernel always delivers SIGINT and SIGTERM to the main
    thread, where they interrupt a blocking join. A signal delivered to a worker thread would
    run no handler until the main thread woke up by itself. A forked child inherits the mask
    too, and unblocks the signals in `become_worker`, once it ignores them.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SHUTDOWN_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def become_worker(signals: ShutdownSignals | None = None) -> None:
    """Set up a freshly forked child: ignore SIGINT and SIGTERM, drop the parent's wake-up.

    The parent alone decides when children stop (a child serving one connection exits when it is
    done; pool workers stop when the parent closes their pipe), so a signal sent to the whole
    process group (Ctrl-C in a terminal, or a service manager's SIGTERM) never cuts a response.
    A parent may fork with both signals blocked (`signals_blocked`), so that none runs its
    handler in the child before the child ignores them; they are unblocked here, once ignored.

    Args:
        signals: the parent's ShutdownSignals, whose descriptors the child closes.
    """
    signal.set_wakeup_fd(-1)
    for signum in SHUTDOWN_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SHUTDOWN_SIGNALS)
    if signals is not None:
        signals.close()
