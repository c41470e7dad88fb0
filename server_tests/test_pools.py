"""Our server's pools and accept loop under hostile clients (issue 10, items 1, 3, 4, 5, 9).

Strategy: each test starts our server through the harness's `server_factory` with small pools
(`--workers 1` or 2) so that a handful of hostile connections is enough to hold every worker
on a server without the defence; then a normal client must still be answered. Waits are bounded
by generous deadlines a correct server meets easily on a loaded machine (seconds, not the target
figures of docs/BEHAVIOUR.md), and every hostile socket is closed at the end of its test.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from harness.client import exchange
from harness.fixtures import expected_content
from harness.server import ServerFactory, ServerProcess, server_environment

BLOCKING_MODES = ("single", "thread", "thread-pool", "process", "process-pool")
POOLS = ("thread-pool", "process-pool")
SERVED_WITHIN = 10.0
QUEUED_BEHIND_READERS = 2.0
BIG = "10mb.bin"
SERVER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "http_server.py")


def get(path: str) -> bytes:
    """Return a plain HTTP/1.0 GET request for `/path`."""
    return f"GET /{path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode()


def assert_served(server: ServerProcess, path: str = "page.html") -> None:
    """Require a complete 200 for `/path` within SERVED_WITHIN seconds."""
    reply = exchange(server.port, get(path), timeout=SERVED_WITHIN)
    assert reply.status == 200 and reply.body == expected_content(path), (
        f"a normal client must be served within {SERVED_WITHIN:g} s, got {reply.describe()}\n"
        f"{server.stderr_tail()}"
    )


@contextlib.contextmanager
def connections(server: ServerProcess, count: int, first: bytes = b"") -> Iterator[list]:
    """Open `count` connections, send `first` on each, and close them all on exit."""
    opened = []
    try:
        for _ in range(count):
            sock = socket.create_connection((server.host, server.port), timeout=10)
            if first:
                sock.sendall(first)
            opened.append(sock)
        yield opened
    finally:
        for sock in opened:
            sock.close()


def server_fds(server: ServerProcess) -> int:
    """Descriptors open in the server and its children."""
    return sum(process.num_fds() for process in server.processes())


def test_silent_connections_do_not_wedge_process_pool(server_factory: ServerFactory) -> None:
    """Item 1: 300 silent connections (some closed at once) and one worker: still served, and
    SIGTERM still stops the server."""
    server = server_factory("process-pool", extra_args=("--workers", "1"))
    with connections(server, 100):
        pass
    with connections(server, 300):
        assert_served(server)
        server.send_signal(signal.SIGTERM)
        status = server.wait_exit(15.0)
    assert status == 0, f"SIGTERM must stop the server, exit status {status}"


def drip(socks: list[socket.socket], stop: threading.Event) -> None:
    """Send one header byte per second on each of `socks` until `stop` (slowloris)."""
    while not stop.wait(1.0):
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.send(b"X")


@pytest.mark.parametrize("mode", POOLS)
def test_slowloris_does_not_hold_pool_workers(mode: str, server_factory: ServerFactory) -> None:
    """Item 3: heads that arrive a byte a second hold no pool worker, and get 408 at the head
    deadline although every byte arrives well within the idle timeout."""
    server = server_factory(mode, extra_args=("--workers", "2", "--head-timeout", "4"))
    stop = threading.Event()
    with connections(server, 6, b"GET /page.html HTTP/1.0\r\nX-Slow: ") as slow:
        dripper = threading.Thread(target=drip, args=(slow, stop), daemon=True)
        dripper.start()
        try:
            assert_served(server)
            slow[0].settimeout(SERVED_WITHIN)
            answer = slow[0].recv(4096)
        finally:
            stop.set()
            dripper.join()
    assert answer.startswith(b"HTTP/1.0 408"), f"a head dripping past --head-timeout: {answer!r}"


@contextlib.contextmanager
def slow_readers(server: ServerProcess, count: int) -> Iterator[list]:
    """Open `count` connections with a small receive buffer that request BIG and read nothing;
    close them all on exit."""
    readers = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect((server.host, server.port))
            sock.sendall(get(BIG))
            readers.append(sock)
        yield readers
    finally:
        for sock in readers:
            sock.close()


@pytest.mark.parametrize("mode", POOLS)
def test_slow_readers_do_not_hold_pool_workers(mode: str, server_factory: ServerFactory) -> None:
    """Item 4: clients that stop reading a big download hold no pool worker."""
    server = server_factory(mode, extra_args=("--workers", "2", "--timeout", "60"))
    with slow_readers(server, 4):
        assert_served(server)


@pytest.mark.parametrize("mode", POOLS)
def test_slow_readers_cost_a_worker_only_a_short_stall(
    mode: str, server_factory: ServerFactory
) -> None:
    """Item 4: one worker, and 30 readers of a big file that read nothing queued before a
    normal GET: the worker hands each back at its first short stall, so the GET is answered
    within QUEUED_BEHIND_READERS s (a worker that waited 0.2 s on each took at least 6 s)."""
    server = server_factory(mode, extra_args=("--workers", "1", "--timeout", "60"))
    with slow_readers(server, 30):
        start = time.monotonic()
        assert_served(server)
        elapsed = time.monotonic() - start
    assert elapsed < QUEUED_BEHIND_READERS, f"served after {elapsed:.2f} s"


def download_with_stray_bytes(server: ServerProcess) -> int:
    """GET the big file, send a stray CRLF 50 ms later, read it all; return the body size."""
    with socket.create_connection((server.host, server.port), timeout=SERVED_WITHIN) as sock:
        sock.sendall(get(BIG))
        time.sleep(0.05)
        sock.sendall(b"\r\n")
        time.sleep(0.3)
        received = bytearray()
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(1 << 20):
                received += chunk
    return len(received.partition(b"\r\n\r\n")[2])


@pytest.mark.parametrize("mode", BLOCKING_MODES)
def test_stray_bytes_after_head_do_not_reset_response(
    mode: str, server_factory: ServerFactory
) -> None:
    """Item 5: bytes after the head never make the close a reset that cuts the download."""
    server = server_factory(mode)
    sizes = [download_with_stray_bytes(server) for _ in range(3)]
    assert sizes == [len(expected_content(BIG))] * 3, f"body sizes received: {sizes}"


def test_workers_over_descriptor_limit_fail_cleanly() -> None:
    """Item 9: more workers than descriptors allow is one error line and a non-zero exit, before
    the ready line."""
    command = [sys.executable, SERVER, "-p", "0", "-c", "process-pool", "--workers", "1000"]
    result = subprocess.run(
        command,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64)),
        capture_output=True,
        text=True,
        timeout=60,
        env=server_environment(),
    )
    lines = result.stderr.splitlines()
    assert result.returncode != 0 and len(lines) == 1 and "serving" not in lines[0], result.stderr


def test_workers_do_not_inherit_each_others_descriptors(server_factory: ServerFactory) -> None:
    """Item 9: the last worker forked holds no more descriptors than the first."""
    server = server_factory("process-pool", extra_args=("--workers", "8"))
    deadline = time.monotonic() + SERVED_WITHIN
    while len(psutil.Process(server.pid).children()) < 8 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert_served(server)
    workers = sorted(psutil.Process(server.pid).children(), key=lambda child: child.pid)
    # The worker that served may still hold that connection for a moment: count until it settles.
    deadline = time.monotonic() + SERVED_WITHIN
    while (counts := [worker.num_fds() for worker in workers])[-1] > counts[0]:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(counts) == 8 and counts[-1] <= counts[0], f"fds per worker: {counts}"


@pytest.mark.parametrize("mode", POOLS)
def test_connections_over_the_maximum_are_closed(mode: str, server_factory: ServerFactory) -> None:
    """Over --max-connections, a new connection is closed at once; others are served after."""
    server = server_factory(mode, extra_args=("--max-connections", "20", "--workers", "2"))
    assert_served(server)
    baseline = server_fds(server)
    with connections(server, 20), connections(server, 1) as extra:
        extra[0].settimeout(SERVED_WITHIN)
        assert extra[0].recv(1) == b"", "a connection over the maximum must be closed at once"
    deadline = time.monotonic() + SERVED_WITHIN
    while server_fds(server) > baseline and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server_fds(server) <= baseline, "descriptors must return to their baseline"
    assert_served(server)


def test_help_lists_the_bounds() -> None:
    """-h names every bound: idle timeout, head deadline, maximum of open connections."""
    text = subprocess.run(
        [sys.executable, SERVER, "-h"], capture_output=True, text=True, timeout=30
    ).stdout
    assert all(option in text for option in ("--timeout", "--head-timeout", "--max-connections"))


@pytest.mark.heavy
@pytest.mark.parametrize("mode", ("thread", "thread-pool", "process", "process-pool"))
def test_thousands_of_silent_connections(mode: str, server_factory: ServerFactory) -> None:
    """3,000 silent connections: a normal client is still served, SIGTERM still stops."""
    server = server_factory(mode)
    with connections(server, 3000):
        assert_served(server)
        server.send_signal(signal.SIGTERM)
        status = server.wait_exit(15.0)
    assert status == 0, f"SIGTERM must stop the server, exit status {status}"
