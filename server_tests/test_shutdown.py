"""Our event loops at shutdown: silent connections end when their grace does (issue 10).

Strategy: white-box, in this process. Each test runs one loop (the Dispatcher of the blocking
modes, or select mode's) on a real listener with a few dozen silent connections and a stop
already signalled, with a selector that records every wait the loop asks for. The grace is
patched to 0.6 s, not a multiple of either loop's sweep period: a loop that notices the grace's
end only at its next periodic sweep asks, shortly before the end, to sleep a tenth of a second or
more past it, while one that wakes at the grace's end never asks to sleep past it. Judging the
waits asked for, not the wall clock, keeps the test exact on a loaded machine. A stand-in for
ShutdownSignals keeps the test process's own signal handlers untouched.
"""

from __future__ import annotations

import selectors
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
LATE_AT_MOST = 0.05  # past the grace's end, in a wait asked for (the old loops: 0.15 s, 0.4 s)
HUNG = 10.0
SILENT = 50
WAITS: list[tuple[float, float | None]] = []  # (when, timeout) of every select the loop made


class RecordingSelector(selectors.DefaultSelector):
    """The default selector, noting when each select was asked for and with what timeout."""

    def select(self, timeout: float | None = None) -> list:
        """Record (now, timeout), then select."""
        WAITS.append((time.monotonic(), timeout))
        return super().select(timeout)


@pytest.fixture(autouse=True)
def recorded_waits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float | None]]:
    """The loops' selects, recorded from an empty list."""
    WAITS.clear()
    monkeypatch.setattr(selectors, "DefaultSelector", RecordingSelector)
    return WAITS


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


def overshoot(waits: list[tuple[float, float | None]]) -> float:
    """How far past the grace's end the loop asked to sleep, at worst, before that end.

    The first select returns at once (the stop is signalled), so the grace has begun before the
    second: it ends by that one's time plus GRACE.
    """
    grace_end = waits[1][0] + GRACE
    asked = [when + timeout for when, timeout in waits[1:] if when < grace_end and timeout]
    return max(asked, default=grace_end) - grace_end


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
    assert GRACE <= took < HUNG, f"stopped {took:.3f} s after the signal"
    late = overshoot(WAITS)
    assert late < LATE_AT_MOST, f"asked to sleep {late:.3f} s past the grace's end"


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
    assert GRACE <= took < HUNG, f"stopped {took:.3f} s after the signal"
    late = overshoot(WAITS)
    assert late < LATE_AT_MOST, f"asked to sleep {late:.3f} s past the grace's end"
