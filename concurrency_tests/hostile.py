"""Hostile clients on loopback: silent floods, slowloris, slow readers, stray bytes, aborts.

Shared by the suite's recommended checks (concurrency_tests/test_hostile.py) and the figures
probe (tools/hostile_probe.py), so both attack a server the same way.
"""

# Strategy: every attack is a bounded object the caller opens, keeps up while it measures a
# normal client, and closes. Many connections are driven from one thread each attack (one
# round over all sockets per tick), never a thread per connection, so 5,000 sockets cost the
# attacker little. Connecting stops at the first connection that cannot be made within a few
# seconds (a wedged server's full backlog), so no attack can hang the caller; every loop is
# bounded by a deadline. Nothing here judges: callers compare what the attacks report.

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from concurrency_tests.support import TreeSample

CONNECT_TIMEOUT = 3.0
SLOWLORIS_LINE = b"GET /page.html HTTP/1.0\r\n"
SLOWLORIS_HEADER = b"X-Slowloris: " + b"a" * 4000
MAX_ATTACK_SECONDS = 600.0
STATUS_LINE = re.compile(rb"HTTP/\d\.\d (\d{3})")
USAGE_SLACK = 8


@dataclass(frozen=True)
class Usage:
    """What a server's process tree holds: fds, threads (of all its processes), children."""

    fds: int
    threads: int
    children: int

    @classmethod
    def of(cls, sample: TreeSample) -> Usage:
        """Summarise a psutil sample of the tree."""
        return cls(sample.fds, sum(sample.threads.values()), len(sample.children))

    def covers(self, later: Usage) -> bool:
        """True when `later` holds no more than this: fds and threads within USAGE_SLACK, no
        extra child. The slack forgives helpers started once and kept (asyncio's executor
        threads), not a leak of one per connection."""
        return (
            later.fds <= self.fds + USAGE_SLACK
            and later.threads <= self.threads + USAGE_SLACK
            and later.children <= self.children
        )

    def describe(self) -> str:
        """E.g. "9 fds, 1 threads, 0 children"."""
        return f"{self.fds} fds, {self.threads} threads, {self.children} children"


def open_connections(host: str, port: int, count: int, budget: float = 60.0) -> list[socket.socket]:
    """Connect up to `count` sockets; stop early at the first that fails or when `budget` s pass.

    Returns: the connected sockets (fewer than `count` when the server stopped accepting).
    """
    sockets: list[socket.socket] = []
    deadline = time.monotonic() + budget
    while len(sockets) < count and time.monotonic() < deadline:
        try:
            sockets.append(socket.create_connection((host, port), timeout=CONNECT_TIMEOUT))
        except OSError:
            break
    return sockets


def close_all(sockets: list[socket.socket], reset: bool = False) -> None:
    """Close every socket; with `reset`, abortively (SO_LINGER 0: the peer gets a RST)."""
    for sock in sockets:
        with contextlib.suppress(OSError):
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
    sockets.clear()


@dataclass
class SilentFlood:
    """Connections that never send a byte: `held` stay open, `dropped` close at once."""

    host: str
    port: int
    held: int
    dropped: int = 0
    sockets: list[socket.socket] = field(default_factory=list)
    opened: int = 0
    dropped_done: int = 0

    def open(self) -> SilentFlood:
        """Make the dropped connections (connect, close), then open the held ones; return self."""
        for _ in range(self.dropped):
            made = open_connections(self.host, self.port, 1)
            if not made:
                break
            self.dropped_done += 1
            close_all(made)
        self.sockets = open_connections(self.host, self.port, self.held)
        self.opened = len(self.sockets)
        return self

    def describe(self) -> str:
        """Say what the flood did, e.g. "300 silent connections held open, 50 opened and closed"."""
        text = f"{self.opened} of {self.held} silent connections held open"
        return text + (f", {self.dropped_done} opened and closed at once" if self.dropped else "")

    def close(self) -> None:
        """Close every held connection."""
        close_all(self.sockets)


class _Driver:
    """A daemon thread that calls `tick()` every `pause` s until stopped (or a hard deadline)."""

    def __init__(self, pause: float, limit: float) -> None:
        self.pause, self.limit = pause, min(limit, MAX_ATTACK_SECONDS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)

    def start_driving(self) -> None:
        """Start the thread."""
        self._thread.start()

    def _run(self) -> None:
        """Tick until stopped or past the limit."""
        deadline = time.monotonic() + self.limit
        while not self._stop.wait(self.pause) and time.monotonic() < deadline:
            self.tick()

    def tick(self) -> None:
        """One round over the attack's sockets (overridden)."""

    def stop_driving(self) -> None:
        """Stop the thread and wait for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10.0)


class Slowloris(_Driver):
    """Connections that send a request line, then one header byte per `pause` s, never ending."""

    def __init__(
        self, host: str, port: int, count: int, pause: float = 1.0, limit: float = 120.0
    ) -> None:
        super().__init__(pause, limit)
        self.host, self.port, self.count = host, port, count
        self.sockets: list[socket.socket] = []
        self.closed_by_server = 0
        self._sent = 0

    def open(self) -> Slowloris:
        """Connect, send each request line and a first header byte, start trickling; return self."""
        self.sockets = open_connections(self.host, self.port, self.count)
        self._send_round(SLOWLORIS_LINE)
        self.start_driving()
        return self

    def tick(self) -> None:
        """Send the next header byte on every connection still open."""
        index = self._sent % len(SLOWLORIS_HEADER)
        self._send_round(SLOWLORIS_HEADER[index : index + 1])

    def _send_round(self, data: bytes) -> None:
        """Send `data` on every socket; drop (and count) the ones the server closed."""
        alive = []
        for sock in self.sockets:
            try:
                sock.send(data)
                alive.append(sock)
            except OSError:
                self.closed_by_server += 1
                sock.close()
        self.sockets = alive
        self._sent += 1

    def describe(self) -> str:
        """Say how many connections trickle, and how many the server has closed."""
        return (
            f"{len(self.sockets) + self.closed_by_server} of {self.count} slowloris connections "
            f"(request line, then one header byte every {self.pause:g} s, never the blank line); "
            f"{self.closed_by_server} closed by the server so far"
        )

    def close(self) -> None:
        """Stop trickling and close every connection."""
        self.stop_driving()
        close_all(self.sockets)


class SlowReaders(_Driver):
    """Connections that GET a large file and read `rate` bytes per second each, through a small
    receive window, so the server can send only as fast as they read."""

    def __init__(
        self,
        host: str,
        port: int,
        count: int,
        path: str,
        rate: int = 1024,
        window: int = 4096,
        limit: float = 120.0,
    ) -> None:
        super().__init__(0.25, limit)
        self.host, self.port, self.count, self.path = host, port, count, path
        self.rate, self.window = rate, window
        self.sockets: list[socket.socket] = []
        self.received = 0
        self.ended = 0
        self.statuses: Counter[str] = Counter()
        self._answered: set[socket.socket] = set()

    def open(self) -> SlowReaders:
        """Connect (small receive buffer), send each GET, start reading slowly; return self."""
        request = f"GET /{self.path} HTTP/1.0\r\nHost: {self.host}\r\n\r\n".encode()
        deadline = time.monotonic() + 60.0
        while len(self.sockets) < self.count and time.monotonic() < deadline:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.window)
            sock.settimeout(CONNECT_TIMEOUT)
            try:
                sock.connect((self.host, self.port))
                sock.sendall(request)
            except OSError:
                sock.close()
                break
            sock.setblocking(False)
            self.sockets.append(sock)
        self.start_driving()
        return self

    def tick(self) -> None:
        """Read this tick's share of `rate` from every connection; drop the ones that ended."""
        share = max(1, int(self.rate * self.pause))
        alive = []
        for sock in self.sockets:
            try:
                data = sock.recv(share)
            except BlockingIOError:
                alive.append(sock)
                continue
            except OSError:
                data = None
            if data:
                self._note_status(sock, data)
                self.received += len(data)
                alive.append(sock)
            else:
                self._note_end(sock, "reset" if data is None else "closed")
        self.sockets = alive

    def _note_status(self, sock: socket.socket, data: bytes) -> None:
        """Count the status of a connection's first bytes (e.g. "200", "503")."""
        if sock not in self._answered:
            self._answered.add(sock)
            match = STATUS_LINE.match(data)
            self.statuses[match.group(1).decode() if match else "not HTTP"] += 1

    def _note_end(self, sock: socket.socket, how: str) -> None:
        """Count a download that ended (and how, if it ended before any response byte)."""
        self.ended += 1
        if sock not in self._answered:
            self.statuses[f"{how} without a response"] += 1
        self._answered.discard(sock)
        sock.close()

    def describe(self) -> str:
        """Say how many read slowly, how much they got, and how many downloads ended."""
        return (
            f"{len(self.sockets) + self.ended} of {self.count} slow readers of /{self.path} "
            f"({self.rate} B/s each, {self.window} B receive buffer): {self.received} bytes "
            f"received in all, {self.ended} downloads ended"
        )

    def close(self) -> None:
        """Stop reading and close every connection."""
        self.stop_driving()
        close_all(self.sockets)
        self._answered.clear()
