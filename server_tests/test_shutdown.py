"""Our event loops at shutdown: silent connections end when their grace does (issue 10).

Strategy: white-box, in this process. Each test runs one loop (the Dispatcher of the blocking
modes, or select mode's) on a real listener with a few dozen silent connections and a stop
already signalled, then times when it closed them against the end of the shutdown grace. The
grace is patched to 0.6 s, not a multiple of either loop's sweep period, so a loop that notices
the grace's end only at its next periodic sweep is late by a tenth of a second or more, while a
loop that wakes at the grace's end is late by one wake-up. A stand-in for ShutdownSignals keeps
the test process's own signal handlers untouched.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from httpd import dispatcher, selectloop
from httpd.connection import Settings
from httpd.dispatcher import Dispatcher
from httpd.selectloop import SelectStrategy

GRACE = 0.6
LATE_AT_MOST = 0.05
SILENT = 50


@dataclass
class StoppedSignals:
    """What the loops use of ShutdownSignals, with the first signal already received."""

    backlog: list[socket.socket] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Make `reader` readable at once, as the wake-up byte of a signal makes it."""
        self.reader, self.writer = socket.socketpair()
        self.writer.send(b"\0")

    def close(self) -> None:
        """Close the pair."""
        self.reader.close()
        self.writer.close()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket on a free loopback port."""
    with socket.create_server(("127.0.0.1", 0), backlog=SILENT * 2) as sock:
        yield sock


@pytest.fixture
def silent_clients(listener: socket.socket) -> Iterator[list[socket.socket]]:
    """SILENT connections to `listener` that never send a byte."""
    clients = [socket.create_connection(listener.getsockname()) for _ in range(SILENT)]
    yield clients
    for client in clients:
        client.close()


def settings() -> Settings:
    """Bounds far beyond the test's length: only the shutdown grace can end a connection."""
    return Settings(root=".", delay=0, timeout=60, max_connections=SILENT * 2)


def all_closed(clients: list[socket.socket]) -> bool:
    """Whether the server has closed every one of `clients` (each reads end-of-file)."""
    for client in clients:
        client.settimeout(0)
        if client.recv(1) != b"":
            return False
    return True


def test_dispatcher_closes_silent_connections_at_the_end_of_the_grace(
    monkeypatch: pytest.MonkeyPatch, listener: socket.socket, silent_clients: list
) -> None:
    """The Dispatcher, stopped with silent connections open, ends at the grace's end."""
    monkeypatch.setattr(dispatcher, "SHUTDOWN_GRACE", GRACE)
    signals = StoppedSignals(backlog=[listener.accept()[0] for _ in silent_clients])
    loop = Dispatcher(listener, signals, lambda conn, outcome: conn.close(), settings())
    start = time.monotonic()
    loop.run()
    took = time.monotonic() - start
    signals.close()
    assert all_closed(silent_clients)
    assert GRACE <= took < GRACE + LATE_AT_MOST, f"stopped {took:.3f} s after the signal"


def test_select_loop_closes_silent_connections_at_the_end_of_the_grace(
    monkeypatch: pytest.MonkeyPatch, listener: socket.socket, silent_clients: list
) -> None:
    """select mode's loop, stopped with silent connections queued, ends at the grace's end."""
    monkeypatch.setattr(selectloop, "SHUTDOWN_GRACE", GRACE)
    signals = StoppedSignals()
    start = time.monotonic()
    SelectStrategy().run(listener, settings(), signals)
    took = time.monotonic() - start
    signals.close()
    assert all_closed(silent_clients)
    assert GRACE <= took < GRACE + LATE_AT_MOST, f"stopped {took:.3f} s after the signal"
