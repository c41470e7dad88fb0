"""Shared helpers of the concurrency tests: timed clients, process-tree samples, shutdown probes."""

# Strategy: clients run the harness's exchange() in threads released together by a barrier; the
# generator handed to it as `chunks` stamps the moment each connection is up and its request is
# sent, so tests wait on events, not sleeps. psutil samples of the server's tree are polled
# against deadlines. A Download reads a big body at the test's own pace, so a transfer can be held
# mid-way across a shutdown signal. Findings gathers every failed requirement of one scenario.

from __future__ import annotations

import errno
import os
import resource
import signal
import socket
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import psutil
import pytest

from harness.client import Reply, exchange, parse_head, patience
from harness.fixtures import expected_content
from harness.server import ServerProcess, describe_status

DELAY = 5.0
MIN_DELAY = 4.5
PROMPT = 2.0
CLIENT_TIMEOUT = 60.0
POLL_INTERVAL = 0.05
SMALL_FILES = ("page.html", "style.css", "image.jpg", "64k-plus-1.bin")
REFUSED = os.strerror(errno.ECONNREFUSED)
_HEAD_END = b"\r\n\r\n"


def get_request(path: str) -> bytes:
    """Return a plain HTTP/1.0 GET request for `/path`."""
    return f"GET /{path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode()


def fixture_paths(count: int) -> list[str]:
    """Return `count` small fixture file names, cycling through SMALL_FILES."""
    return [SMALL_FILES[index % len(SMALL_FILES)] for index in range(count)]


_SUITE_SIGNALS: weakref.WeakKeyDictionary[ServerProcess, int] = weakref.WeakKeyDictionary()


def send_suite_signal(server: ServerProcess, signum: int, group: bool = False) -> float:
    """Signal the server on the suite's behalf (a shutdown test); return when it was sent.

    Its exit afterwards is then told as the answer to that signal, never as a crash.
    """
    _SUITE_SIGNALS[server] = signum
    sent = time.monotonic()
    server.send_signal(signum, group)
    return sent


def server_context(server: ServerProcess) -> str:
    """Return how the server ended (a death, or its exit after the suite's signal), or that it
    still runs; with its last stderr lines."""
    status = server.exit_status()
    if status is not None and server in _SUITE_SIGNALS:
        tail = server.stderr_tail() or "(stderr is empty)"
        asked = signal.Signals(_SUITE_SIGNALS[server]).name
        return (
            f"server under test (mode {server.mode}) exited with status "
            f"{describe_status(status)} after the suite's {asked}; last stderr lines:\n{tail}"
        )
    if status is not None:
        return server.death_report()
    tail = server.stderr_tail() or "(stderr is empty)"
    return f"server under test (mode {server.mode}) still running; last stderr lines:\n{tail}"


def reply_problem(reply: Reply | None, path: str) -> str | None:
    """Say what is wrong with a reply to GET /path (None: a 200 with the file's exact bytes)."""
    if reply is None:
        return "no reply (the client thread did not finish)"
    if reply.outcome != "response" or reply.error:
        return f"{reply.outcome}: {reply.error or 'no complete response'}"
    if reply.status != 200:
        return f"status {reply.status} instead of 200"
    expected = expected_content(path)
    if reply.body != expected:
        return f"body differs from the file: {reply.body_received} bytes, expected {len(expected)}"
    return None


@dataclass
class Client:
    """One GET in its own thread, stamped when connected, when sent and when finished."""

    port: int
    path: str
    timeout: float = CLIENT_TIMEOUT
    gate: threading.Barrier | None = None
    reply: Reply | None = None
    started: float | None = None
    connected: float | None = None
    sent: float | None = None
    finished: float | None = None
    settled: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Client:
        """Run the exchange in a daemon thread (a hung server never hangs pytest); return self."""
        threading.Thread(target=self._run, name=f"client-{self.path}", daemon=True).start()
        return self

    def _run(self) -> None:
        """Thread body: wait at the gate, exchange, stamp the end; always set both events."""
        try:
            if self.gate is not None:
                self.gate.wait(CLIENT_TIMEOUT)
            self.started = time.monotonic()
            self.reply = exchange(self.port, b"", chunks=self._pieces(), timeout=self.timeout)
        finally:
            self.finished = time.monotonic()
            self.settled.set()
            self.done.set()

    def _pieces(self) -> Iterator[bytes]:
        """The request as exchange() pulls it: first pull = connected, second = sent."""
        self.connected = time.monotonic()
        yield get_request(self.path)
        self.sent = time.monotonic()
        self.settled.set()

    @property
    def duration(self) -> float:
        """Seconds from connecting (or starting) to the last byte of the reply."""
        return (self.finished or 0.0) - (self.connected or self.started or 0.0)

    @property
    def refused(self) -> bool:
        """True when the connection attempt was refused (ECONNREFUSED)."""
        reply = self.reply
        return reply is not None and reply.outcome == "refused" and REFUSED in reply.error

    def problem(self) -> str | None:
        """Say what is wrong with this client's reply (None: the file's exact bytes in a 200)."""
        return reply_problem(self.reply, self.path)

    def failure_kind(self) -> str:
        """Name the kind of a failed exchange, for counting (e.g. "connect refused", "reset")."""
        reply = self.reply
        if reply is None:
            return "no reply"
        if reply.outcome == "refused":
            return "connect refused" if self.refused else "connect failed"
        if reply.outcome != "response":
            return reply.outcome
        if reply.error:
            return "incomplete body"
        return f"status {reply.status}" if reply.status != 200 else "wrong body"


class ClientGroup:
    """Clients released together by a barrier, each sending one GET and reading its reply."""

    def __init__(self, port: int, paths: Sequence[str], timeout: float = CLIENT_TIMEOUT) -> None:
        gate = threading.Barrier(len(paths))
        self.clients = [Client(port, path, timeout, gate) for path in paths]

    def start(self) -> ClientGroup:
        """Start every client thread; return self."""
        for client in self.clients:
            client.start()
        return self

    def wait_sent(self, timeout: float = 30.0) -> bool:
        """Wait until every client has connected and sent its request (or given up)."""
        return _wait_all([client.settled for client in self.clients], timeout)

    def wait_done(self, timeout: float) -> bool:
        """Wait until every client has its reply (or gave up); False on timeout."""
        return _wait_all([client.done for client in self.clients], timeout)

    @property
    def first_connect(self) -> float:
        """The earliest moment any client connected (or started)."""
        return min(client.connected or client.started or time.monotonic() for client in self)

    def __iter__(self) -> Iterator[Client]:
        """Iterate over the clients in order."""
        return iter(self.clients)

    def span(self) -> float:
        """Seconds from the first connect to the last finished reply."""
        return max(client.finished or time.monotonic() for client in self) - self.first_connect

    def problems(self) -> list[str]:
        """One line per client whose reply is not the exact file in a 200."""
        return [
            f"client {index} GET /{client.path}: {problem}"
            for index, client in enumerate(self)
            if (problem := client.problem()) is not None
        ]

    def timeline(self) -> str:
        """Each client's interval relative to the first connect, one per line."""
        origin, lines = self.first_connect, []
        for index, client in enumerate(self):
            begin = (client.connected or client.started or origin) - origin
            end = f"+{client.finished - origin:.2f} s" if client.done.is_set() else "(no reply yet)"
            status = client.reply.status if client.reply is not None else None
            lines.append(f"  client {index} GET /{client.path}: +{begin:.2f} s -> {end}, {status}")
        return "\n".join(lines)

    def timeline_record(self, delay: float) -> dict:
        """The results-JSON `timeline`: each client's [sent, last byte] in s from the first send.

        A client without a reply has null as its end.
        """
        sends = [client.sent for client in self if client.sent is not None]
        origin = min(sends) if sends else self.first_connect
        clients = []
        for client in self:
            start = (client.sent or client.connected or origin) - origin
            end = client.finished - origin if client.done.is_set() and client.finished else None
            clients.append([round(start, 3), None if end is None else round(end, 3)])
        return {"delay": delay, "clients": clients}

    def error_summary(self, shown: int = 5) -> str:
        """Count failed clients by kind of failure and show a few examples."""
        problems = self.problems()
        kinds = Counter(client.failure_kind() for client in self if client.problem() is not None)
        counts = ", ".join(f"{kind}: {count}" for kind, count in kinds.most_common())
        examples = "\n  ".join(problems[:shown])
        return f"{len(problems)} of {len(self.clients)} failed ({counts})\n  {examples}"


def _wait_all(events: Sequence[threading.Event], timeout: float) -> bool:
    """Wait for every event under one shared deadline."""
    deadline = time.monotonic() + timeout
    return all(event.wait(max(0.0, deadline - time.monotonic())) for event in events)


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll `condition` every POLL_INTERVAL s until it holds (True) or `timeout` s pass (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)
    return True


@dataclass(frozen=True)
class TreeSample:
    """The server's process tree at one moment: threads and status of each process, fds, RSS."""

    root: int
    threads: dict[int, int]
    statuses: dict[int, str]
    fds: int
    rss: int

    @property
    def root_threads(self) -> int:
        """Threads of the server process itself (0 once it is gone)."""
        return self.threads.get(self.root, 0)

    @property
    def children(self) -> frozenset[int]:
        """Pids of every descendant of the server process."""
        return frozenset(pid for pid in self.statuses if pid != self.root)

    @property
    def zombies(self) -> frozenset[int]:
        """Pids of descendants that exited but were never reaped."""
        return frozenset(pid for pid in self.children if self.statuses[pid] == "zombie")

    def describe(self) -> str:
        """One line: server threads, children (with zombies), fds and RSS."""
        kids = ", ".join(f"{pid} ({self.statuses[pid]})" for pid in sorted(self.children))
        return (
            f"{self.root_threads} threads in the server, children [{kids or 'none'}], "
            f"{self.fds} fds, RSS {self.rss / 2**20:.1f} MiB"
        )


def sample_tree(server: ServerProcess) -> TreeSample:
    """Sample the server's process tree (empty once it is gone)."""
    threads, statuses, fds, rss = {}, {}, 0, 0
    for process in server.processes():
        try:
            with process.oneshot():
                statuses[process.pid] = process.status()
                if statuses[process.pid] == psutil.STATUS_ZOMBIE:
                    continue
                threads[process.pid] = process.num_threads()
                fds += process.num_fds()
                rss += process.memory_info().rss
        except psutil.Error:
            continue
    return TreeSample(server.pid, threads, statuses, fds, rss)


def sample_until(
    server: ServerProcess, condition: Callable[[TreeSample], bool], timeout: float
) -> TreeSample:
    """Sample the tree until `condition` holds or `timeout` s pass; return the last sample."""
    latest = [sample_tree(server)]

    def holds() -> bool:
        latest[0] = sample_tree(server)
        return condition(latest[0])

    wait_for(holds, timeout)
    return latest[0]


def settled_sample(server: ServerProcess, key: Callable[[TreeSample], object]) -> TreeSample:
    """Sample until `key` of the sample is the same three times running (at most 3 s).

    A server may start its pool a moment after its port listens; this waits that moment out.
    """
    sample, seen = sample_tree(server), 1
    deadline = time.monotonic() + 3.0
    while seen < 3 and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
        latest = sample_tree(server)
        seen = seen + 1 if key(latest) == key(sample) else 1
        sample = latest
    return sample


def samples_until_done(
    server: ServerProcess, group: ClientGroup, timeout: float
) -> list[TreeSample]:
    """Sample the tree repeatedly from now until every client of `group` is done."""
    samples, deadline = [sample_tree(server)], time.monotonic() + timeout
    while not group.wait_done(POLL_INTERVAL) and time.monotonic() < deadline:
        samples.append(sample_tree(server))
    return samples


def socket_inodes(server: ServerProcess) -> set[str]:
    """Return the distinct sockets the server's processes hold open (Linux /proc fd links).

    A socket shared by a parent and its forked child counts once. Reading fd links stays fast
    where psutil's connection listing scans every TIME-WAIT socket of the machine.
    """
    found = set()
    for process in server.processes():
        folder = f"/proc/{process.pid}/fd"
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            try:
                target = os.readlink(f"{folder}/{name}")
            except OSError:
                continue
            if target.startswith("socket:"):
                found.add(target)
    return found


def client_connections(server: ServerProcess) -> int:
    """Count the established client connections the server's processes hold on its port."""
    seen = set()
    for process in server.processes():
        try:
            connections = process.net_connections(kind="tcp")
        except psutil.Error:
            continue
        for conn in connections:
            ours = conn.laddr and conn.raddr and conn.laddr.port == server.port
            if ours and conn.status == psutil.CONN_ESTABLISHED:
                seen.add((conn.laddr, conn.raddr))
    return len(seen)


def open_idle_connections(server: ServerProcess, count: int) -> list[socket.socket]:
    """Open `count` connections that send nothing; wait (at most 3 s) until the server holds them.

    A server that does not accept them is not waited for longer: the test goes on regardless.
    """
    before = len(socket_inodes(server))
    idle = [socket.create_connection((server.host, server.port), timeout=10) for _ in range(count)]
    wait_for(lambda: len(socket_inodes(server)) >= before + count, 3.0)
    return idle


def group_leftovers(pgid: int, since: float) -> list[str]:
    """Describe each process of process group `pgid` created at or after `since` (epoch s)."""
    found = []
    for process in psutil.process_iter(["name", "status", "create_time", "cmdline"]):
        try:
            if os.getpgid(process.pid) != pgid or process.info["create_time"] < since:
                continue
        except OSError:
            continue
        command = " ".join(process.info["cmdline"] or [])[:120]
        found.append(f"pid {process.pid} ({process.info['status']}): {command}")
    return found


def wait_group_empty(pgid: int, since: float, timeout: float = 3.0) -> list[str]:
    """Wait until process group `pgid` has no process left; return what is still there."""
    left: list[str] = []

    def empty() -> bool:
        left[:] = group_leftovers(pgid, since)
        return not left

    wait_for(empty, timeout)
    return left


def start_time(server: ServerProcess) -> float:
    """Return the server process's creation time (epoch seconds, as psutil reports it)."""
    return psutil.Process(server.pid).create_time()


@dataclass
class Probe:
    """What connection attempts after a shutdown signal met."""

    signalled: float
    refused_at: float | None = None
    accepted: list[Client] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def refused_after(self) -> float | None:
        """Seconds from the signal to the first refused connection (None: never refused)."""
        return None if self.refused_at is None else self.refused_at - self.signalled

    def story(self) -> str:
        """Say how the attempts went: when the first was refused, or what happened instead."""
        refused = self.refused_after()
        if refused is not None:
            return f"the first refused attempt came {refused:.2f} s after the signal"
        others = "; ".join(self.failures[:3]) or "none"
        return f"{len(self.accepted)} attempts were accepted, none refused (other errors: {others})"

    def accepted_problems(self, timeout: float) -> list[str]:
        """Wait for the accepted probes' replies; describe those that got no complete response.

        One reset is forgiven: the last attempt accepted before the first refused one, reset
        before any byte of an answer. It reached the listen queue in the instant between the
        server's last accept and its closing of the listener, and closing a listener resets what
        its queue holds: no server can close that window, however it shuts down.
        """
        _wait_all([client.done for client in self.accepted], timeout)
        lines = []
        for client in self.accepted:
            reply = client.reply
            if self._caught_in_the_close(client):
                continue
            if reply is None or reply.outcome != "response" or reply.error:
                what = f"{reply.outcome}: {reply.error}" if reply is not None else "no reply"
                after = client.connected - self.signalled
                lines.append(f"connected {after:.3f} s after the signal, then {what}")
        return lines

    def _caught_in_the_close(self, client: Client) -> bool:
        """True for the last attempt accepted just before the first refusal, reset unanswered."""
        return (
            self.refused_at is not None
            and client is self.accepted[-1]
            and client.reply is not None
            and client.reply.outcome == "reset"
        )


def probe_until_refused(port: int, signalled: float, within: float, pace: float = 0.01) -> Probe:
    """Try to connect, one attempt at a time, until one is refused or `within` s have passed.

    Each accepted attempt sends a GET and keeps reading its reply in its own thread: a server
    that accepts a connection must answer it. `pace` seconds separate two attempts.
    Returns: the Probe (refusal time, accepted clients, other connect failures).
    """
    probe = Probe(signalled)
    while True:
        left = signalled + within - time.monotonic()
        client = Client(port, SMALL_FILES[0]).start()
        client.settled.wait(max(left, 1.0))
        if client.refused:
            probe.refused_at = client.finished
            return probe
        if client.connected is not None:
            probe.accepted.append(client)
        elif client.done.is_set():
            probe.failures.append(client.reply.error if client.reply else "no reply")
        if time.monotonic() - signalled > within:
            return probe
        time.sleep(pace)


class Download:
    """One GET whose body the test reads at its own pace (or pauses), through a small window."""

    def __init__(self, server: ServerProcess, path: str, window: int = 64 * 1024) -> None:
        """Connect with a small receive buffer and send the request (nothing is read yet)."""
        self.path, self.body, self.received = path, bytearray(), 0
        self.reply: Reply | None = None
        self.error = ""
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, window)
        self.sock.settimeout(patience(server.port, 30.0))
        self.sock.connect((server.host, server.port))
        self.sock.sendall(get_request(path))

    def read_head(self) -> Reply | None:
        """Read and parse the response head; keep the body bytes that came with it."""
        buffer = b""
        while _HEAD_END not in buffer and len(buffer) < 65536:
            data = self._recv(65536)
            if not data:
                return None
            buffer += data
        head, _, rest = buffer.partition(_HEAD_END)
        self.reply = parse_head(head + _HEAD_END)
        self._keep(rest)
        return self.reply

    def read_body(self, limit: int | None = None, keep: bool = True) -> int:
        """Read body bytes until `limit` more (or the whole Content-Length); return the count.

        Args: `keep` stores them for the final comparison.
        """
        wanted = self.reply.content_length if self.reply else None
        goal = self.received + limit if limit is not None else wanted
        start = self.received
        while goal is None or self.received < goal:
            data = self._recv(min(65536, (goal or 1 << 30) - self.received))
            if not data:
                break
            self._keep(data, keep)
        return self.received - start

    def problem(self) -> str | None:
        """Say what is wrong with the download (None: a 200 with the file's exact bytes)."""
        if self.reply is None:
            return f"no response head ({self.error or 'connection closed'})"
        if self.reply.status != 200:
            return f"status {self.reply.status} instead of 200"
        expected = expected_content(self.path)
        if self.received != len(expected) or self.body != expected:
            why = f" ({self.error})" if self.error else ""
            return f"got {self.received} of {len(expected)} bytes{why}, or different bytes"
        return None

    def close(self) -> None:
        """Close the connection (unread data makes the kernel reset it)."""
        self.sock.close()

    def _recv(self, size: int) -> bytes:
        """Receive up to `size` bytes; b"" (and `error` set) on close, reset or timeout."""
        try:
            data = self.sock.recv(size)
        except OSError as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            return b""
        if not data:
            self.error = self.error or "closed by the server"
        return data

    def _keep(self, data: bytes, keep: bool = True) -> None:
        """Count body bytes, storing them if asked."""
        self.received += len(data)
        if keep:
            self.body += data


def raise_open_file_limit(wanted: int) -> None:
    """Raise this process's soft RLIMIT_NOFILE to `wanted` (capped by the hard limit).

    Servers started afterwards inherit it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class Findings:
    """Collects the failed requirements of one scenario, then fails once with all of them."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.failures: list[str] = []

    def require(self, holds: bool, requirement: str, observed: Callable[[], str]) -> None:
        """Record `requirement` as failed unless it `holds`; `observed()` says what happened."""
        if not holds:
            self.failures.append(f"- {requirement}\n  observed: {observed()}")

    def conclude(self) -> None:
        """Fail the test with every failed requirement and the server's stderr, if any failed."""
        if self.failures:
            failed = "\n".join(self.failures)
            where = f"mode {self.server.mode}, pid {self.server.pid}, port {self.server.port}"
            pytest.fail(
                f"[{where}] requirements failed:\n{failed}\n{server_context(self.server)}",
                pytrace=False,
            )
