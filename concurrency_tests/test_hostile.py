"""Hostile clients (recommended tier): the server must not wedge, starve, spin, cut or leak.

One case per attack: a flood of silent connections, slowloris, slow readers, stray bytes after
the head, downloads aborted mid-way, and a file that shrinks while it is sent.
"""

# Strategy: each case starts its own server, mounts one bounded attack from
# concurrency_tests/hostile.py, and judges only what any correct server does on a loaded 2-core
# machine with a wide margin: a normal client gets its complete 200 within 10 s while the attack
# goes on (a server with a thread per connection passes by having many threads; a bounded pool
# whose workers the attackers hold fails), every download the attack does not cut arrives whole,
# the server is alive and serving afterwards, and its fds, threads and children come back near the
# baseline. Waits are on events (response heads, socket states), polled against deadlines. The
# starvation cases skip `single`, which serves one client at a time by definition. The big
# flood that wedged our own process pool is @heavy; the everyday one is a few hundred sockets.

from __future__ import annotations

import os
import time
from collections.abc import Callable

import psutil
import pytest

from concurrency_tests.hostile import USAGE_SLACK, SilentFlood, Slowloris, SlowReaders, Usage
from concurrency_tests.support import (
    Download,
    Findings,
    get_request,
    raise_open_file_limit,
    reply_problem,
    sample_tree,
    sample_until,
    settled_sample,
    wait_for,
)
from harness.client import Reply, exchange
from harness.fixtures import expected_content
from harness.server import ServerFactory, ServerProcess

pytestmark = pytest.mark.tier("recommended")

PROMPT = 10.0
NORMAL_PATH = "page.html"
BIG_PATH = "10mb.bin"
RECOVERY = 20.0
# The heavy flood fits the suite sandbox's limits (harness/sandbox.py: 8,192 open files, 4,096
# tasks), also for a server with a child per connection.
FLOODS = [
    pytest.param(300, 100, id="300-silent"),
    pytest.param(1500, 500, id="1500-silent", marks=pytest.mark.heavy),
]
STEADY_FOR = 1.0
STEADY_WITHIN = 20.0
SLOWLORIS_CONNECTIONS = 200
SLOW_READERS = 50
STRAY_PAYLOADS = {"CRLF": b"\r\n", "pipelined GET": get_request(NORMAL_PATH)}
STRAY_ROUNDS = 3
ABORTS = 20
ABORT_READ = 64 * 1024
EXIT_GRACE = 2.0
SHRINK_READ = 256 * 1024
SHRINK_END_WITHIN = 15.0
SPIN_WINDOW = 2.0
SPIN_LIMIT = 0.1
STARVATION_MODES = pytest.mark.except_modes("single")


def normal_client(server: ServerProcess) -> tuple[Reply, str | None]:
    """GET the small page; return the reply and what is wrong with it (slow counts as wrong)."""
    reply = exchange(server.port, get_request(NORMAL_PATH), timeout=2 * PROMPT, close_wait=0.5)
    problem = reply_problem(reply, NORMAL_PATH)
    if problem is None and reply.elapsed >= PROMPT:
        problem = f"complete, but only after {reply.elapsed:.2f} s"
    return reply, problem


def require_served(findings: Findings, server: ServerProcess, when: str) -> None:
    """Record a failure unless a normal client gets the page whole within PROMPT s."""
    reply, problem = normal_client(server)
    findings.require(
        problem is None,
        f"{when}, GET /{NORMAL_PATH} must get its complete 200 within {PROMPT:g} s",
        lambda: f"{problem} ({reply.elapsed:.2f} s)",
    )


def usage_now(server: ServerProcess) -> Usage:
    """Sample the server's fds, threads and children once they are steady."""
    return Usage.of(settled_sample(server, Usage.of))


def wait_steady(server: ServerProcess) -> None:
    """Wait (at most STEADY_WITHIN s) until the server's usage holds still for STEADY_FOR s.

    A server that starts a thread or process per connection is still starting them when an
    attack has just opened; the normal client is timed against the steady state, not that burst.
    """
    last, since = Usage.of(sample_tree(server)), time.monotonic()
    deadline = since + STEADY_WITHIN
    while time.monotonic() - since < STEADY_FOR and time.monotonic() < deadline:
        time.sleep(STEADY_FOR / 5)
        latest = Usage.of(sample_tree(server))
        if latest != last:
            last, since = latest, time.monotonic()


def require_recovered(findings: Findings, server: ServerProcess, base: Usage) -> None:
    """Record a failure unless fds, threads and children return to the baseline in RECOVERY s."""
    after = Usage.of(sample_until(server, lambda sample: base.covers(Usage.of(sample)), RECOVERY))
    findings.require(
        base.covers(after),
        f"within {RECOVERY:g} s after the attack the server must hold no more than it did "
        f"before (fds and threads within {USAGE_SLACK}, no extra child)",
        lambda: f"before: {base.describe()}; after: {after.describe()}",
    )


def baseline(server: ServerProcess) -> Usage:
    """Serve the page and the big file once (warming lazily started helpers), then sample."""
    normal_client(server)
    exchange(server.port, get_request(BIG_PATH), timeout=30.0, close_wait=0.5, body_limit=0)
    return usage_now(server)


@STARVATION_MODES
@pytest.mark.parametrize(("held", "dropped"), FLOODS)
def test_silent_connection_flood_does_not_wedge_the_server(
    mode: str, server_factory: ServerFactory, held: int, dropped: int
) -> None:
    """Connections that never send (held, or closed at once) never stop normal clients."""
    raise_open_file_limit(4 * held + 256)
    server = server_factory(mode)
    findings, base = Findings(server), baseline(server)
    flood = SilentFlood(server.host, server.port, held, dropped).open()
    try:
        wait_steady(server)
        findings.require(
            flood.opened == held,
            f"the server must accept {held} silent connections",
            flood.describe,
        )
        require_served(findings, server, f"while {flood.describe()}")
    finally:
        flood.close()
    require_served(findings, server, f"after the flood left ({flood.describe()}, then closed)")
    require_recovered(findings, server, base)
    findings.conclude()


@STARVATION_MODES
def test_slowloris_does_not_starve_other_clients(mode: str, server_factory: ServerFactory) -> None:
    """200 connections sending a head one byte a second never stop a normal client."""
    server = server_factory(mode)
    findings = Findings(server)
    attack = Slowloris(server.host, server.port, SLOWLORIS_CONNECTIONS).open()
    try:
        wait_steady(server)
        require_served(findings, server, f"while {attack.describe()}")
        require_served(findings, server, f"a moment later, still while {attack.describe()}")
    finally:
        attack.close()
    findings.conclude()


@STARVATION_MODES
def test_slow_readers_do_not_starve_other_clients(mode: str, server_factory: ServerFactory) -> None:
    """50 clients reading a large file at 1 KB/s never stop a normal client."""
    server = server_factory(mode)
    findings = Findings(server)
    readers = SlowReaders(server.host, server.port, SLOW_READERS, BIG_PATH).open()
    try:
        wait_for(lambda: readers.received > 0, PROMPT)
        wait_steady(server)
        require_served(findings, server, f"while {readers.describe()}")
    finally:
        readers.close()
    findings.conclude()


def stray_download(server: ServerProcess, payload: bytes) -> str | None:
    """GET the big file, send `payload` once its head is in, read the rest; say what went wrong."""
    try:
        download = Download(server, BIG_PATH)
    except OSError as exc:
        return f"cannot connect: {exc}"
    try:
        if download.read_head() is None:
            return f"no response head ({download.error or 'closed'})"
        download.sock.sendall(payload)
        download.read_body()
        return download.problem()
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        download.close()


def test_stray_bytes_after_the_head_do_not_cut_the_response(
    mode: str, server_factory: ServerFactory
) -> None:
    """Bytes sent after a complete head (a stray CRLF, a pipelined GET) never cut the download."""
    server = server_factory(mode)
    findings = Findings(server)
    for name, payload in STRAY_PAYLOADS.items():
        problems = [stray_download(server, payload) for _ in range(STRAY_ROUNDS)]
        cut = [problem for problem in problems if problem is not None]
        findings.require(
            not cut,
            f"GET /{BIG_PATH}, then {payload!r} ({name}) once the response head arrived: the "
            f"whole file must arrive, {STRAY_ROUNDS} of {STRAY_ROUNDS} times (a server closing "
            f"with unread input resets the connection and loses what it had still to send)",
            lambda cut=cut: f"{len(cut)} of {STRAY_ROUNDS} were cut: {'; '.join(cut)}",
        )
    server.assert_alive()
    findings.conclude()


def abort_download(server: ServerProcess, index: int) -> str | None:
    """Start a big download, read ABORT_READ bytes, close with unread data; say what failed."""
    try:
        download = Download(server, BIG_PATH)
    except OSError as exc:
        return f"abort {index}: cannot connect: {exc}"
    try:
        head = download.read_head()
        if head is None or head.status != 200:
            return f"abort {index}: no 200 head ({download.error or (head and head.status)})"
        download.read_body(ABORT_READ, keep=False)
        return None
    finally:
        download.close()


def test_aborted_downloads_leave_the_server_serving(
    mode: str, server_factory: ServerFactory
) -> None:
    """20 clients closing mid-download (a reset) leave the server alive, serving, leak-free."""
    server = server_factory(mode)
    findings, base = Findings(server), baseline(server)
    failures = [problem for index in range(ABORTS) if (problem := abort_download(server, index))]
    findings.require(
        not failures,
        f"{ABORTS} clients, one after another, each GET /{BIG_PATH}, read its head and "
        f"{ABORT_READ // 1024} KiB, and close with the rest unread: each must get its 200 head",
        lambda: "; ".join(failures[:5]),
    )
    alive = server.wait_exit(EXIT_GRACE) is None
    findings.require(
        alive, "after the aborts the server must still be running", server.death_report
    )
    if alive:
        require_served(findings, server, f"after {ABORTS} downloads were aborted")
        require_recovered(findings, server, base)
    findings.conclude()


def cpu_seconds(server: ServerProcess) -> float:
    """Return the CPU time (user + system) used so far by the server's processes alive now."""
    total = 0.0
    for process in server.processes():
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def cpu_share(server: ServerProcess, window: float) -> float:
    """Return the share of one core the server used over the next `window` s."""
    start = cpu_seconds(server)
    time.sleep(window)
    return (cpu_seconds(server) - start) / window


def shrink_during_download(server: ServerProcess, truncate: Callable[[], None]) -> Download:
    """GET the big file, read SHRINK_READ bytes, `truncate` it, read on until the end or timeout."""
    download = Download(server, BIG_PATH)
    head = download.read_head()
    if head is not None and head.status == 200:
        download.read_body(SHRINK_READ, keep=False)
        truncate()
        download.sock.settimeout(SHRINK_END_WITHIN)
        download.read_body(keep=False)
    return download


def test_shrinking_file_ends_the_response(mode: str, server_factory: ServerFactory) -> None:
    """A file truncated while it is sent (log rotation) ends that response; nothing spins."""
    server = server_factory(mode)
    findings = Findings(server)
    path = server.folder / BIG_PATH
    download = shrink_during_download(server, lambda: os.truncate(path, 0))
    try:
        ended = download.reply is not None and "timed out" not in download.error
        findings.require(
            ended,
            f"GET /{BIG_PATH}, {SHRINK_READ // 1024} KiB read, then the file truncated to 0 "
            f"bytes: the server must end that response (close) within {SHRINK_END_WITHIN:g} s",
            lambda: f"{download.received} body bytes, then {download.error or 'no head'}",
        )
        share = cpu_share(server, SPIN_WINDOW)
        findings.require(
            share < SPIN_LIMIT,
            f"after that, the server must not spin: under {SPIN_LIMIT:.0%} of a core over "
            f"{SPIN_WINDOW:g} s",
            lambda: f"it used {share:.0%} of a core",
        )
    finally:
        download.close()
        path.write_bytes(expected_content(BIG_PATH))
    server.assert_alive()
    require_served(findings, server, "after the shrunk download")
    findings.conclude()
