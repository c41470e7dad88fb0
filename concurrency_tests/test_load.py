"""Load: 500 clients at once, no errors and no leaks; a slow reader holds nobody up."""

# Strategy: 500 client threads, released together by a barrier, each make exactly one attempt (a
# refused or dropped connect is an error, never retried) on 127.0.0.1 and read a small file by
# Content-Length; every failure is counted by kind. The server's fds, RSS and process count are
# taken after a warm-up and must come back near that baseline once the load is over (polled). A
# client trickling a 2 GiB file must not delay other clients in any concurrent mode.

from __future__ import annotations

import threading

import pytest

from concurrency_tests.support import (
    PROMPT,
    SMALL_FILES,
    ClientGroup,
    Download,
    TreeSample,
    fixture_paths,
    get_request,
    raise_open_file_limit,
    reply_problem,
    sample_until,
    server_context,
    settled_sample,
    socket_inodes,
    wait_for,
)
from harness.client import exchange
from harness.fixtures import SPARSE_NAME
from harness.server import ServerFactory, ServerProcess

LOAD_CLIENTS = 500
WARM_UP_CLIENTS = 20
LOAD_TIMEOUT = 120.0
FD_SLACK = 8
RSS_SLACK = 64 * 2**20
RECOVERY = 15.0
TRICKLE_BYTES = 16 * 1024
TRICKLE_PAUSE = 0.02
PROMPT_CLIENTS = 5


def run_clients(server: ServerProcess, count: int) -> ClientGroup:
    """Send `count` GETs at once and wait for every reply (LOAD_TIMEOUT at most)."""
    group = ClientGroup(server.port, fixture_paths(count)).start()
    group.wait_done(LOAD_TIMEOUT)
    return group


def quiet_sample(server: ServerProcess, sockets: int) -> TreeSample:
    """Wait until the server holds at most `sockets` sockets (10 s at most); sample its tree."""
    wait_for(lambda: len(socket_inodes(server)) <= sockets, 10.0)
    return settled_sample(server, lambda sample: (sample.fds, sample.children))


def rss_limit(base: TreeSample) -> int:
    """The RSS the server may keep after the load: the baseline plus 64 MiB or half of it."""
    return base.rss + max(RSS_SLACK, base.rss // 2)


def recovered(sample: TreeSample, base: TreeSample) -> bool:
    """True when fds, RSS, threads and processes are back near the baseline."""
    return (
        sample.fds <= base.fds + FD_SLACK
        and sample.rss <= rss_limit(base)
        and sum(sample.threads.values()) <= sum(base.threads.values())
        and len(sample.children) <= len(base.children)
    )


@pytest.mark.tier("recommended")
@pytest.mark.except_modes("single")
def test_500_concurrent_clients_get_correct_responses_without_leaks(
    mode: str, server_factory: ServerFactory
) -> None:
    """500 simultaneous clients all get the exact file; fds and memory return to the baseline."""
    raise_open_file_limit(4 * LOAD_CLIENTS)
    server = server_factory(mode)
    idle_sockets = len(socket_inodes(server))
    warm = run_clients(server, WARM_UP_CLIENTS)
    assert not warm.problems(), f"warm-up failed: {warm.error_summary()}\n{server_context(server)}"
    base = quiet_sample(server, idle_sockets)
    group = run_clients(server, LOAD_CLIENTS)
    assert not group.problems(), (
        f"{LOAD_CLIENTS} concurrent clients must all get a complete, correct 200 (one attempt "
        f"each, no retry): {group.error_summary()}\n{server_context(server)}"
    )
    after = sample_until(server, lambda sample: recovered(sample, base), RECOVERY)
    assert recovered(after, base), (
        f"once {LOAD_CLIENTS} clients are served the server must release what they used within "
        f"{RECOVERY:g} s (fds within {FD_SLACK} of the baseline, RSS under "
        f"{rss_limit(base) / 2**20:.0f} MiB, no extra thread or process):\n"
        f"baseline: {base.describe()}\nafter:    {after.describe()}"
    )


def trickle(download: Download, stop: threading.Event) -> None:
    """Read the download slowly (TRICKLE_BYTES every TRICKLE_PAUSE s) until `stop` is set."""
    while not stop.is_set() and download.read_body(TRICKLE_BYTES, keep=False):
        stop.wait(TRICKLE_PAUSE)


@pytest.mark.lab("lab6.concurrent")
@pytest.mark.except_modes("single")
def test_slow_reader_does_not_delay_other_clients(mode: str, server_factory: ServerFactory) -> None:
    """While one client trickles a 2 GiB file, others are served within 2 s each."""
    server = server_factory(mode)
    download, stop = Download(server, SPARSE_NAME), threading.Event()
    reader = threading.Thread(target=trickle, args=(download, stop), daemon=True)
    try:
        head = download.read_head()
        assert (
            head is not None and head.status == 200
        ), f"GET /{SPARSE_NAME} must start a 200 download, got {download.error or head.status}"
        reader.start()
        for path in SMALL_FILES[:PROMPT_CLIENTS]:
            reply = exchange(server.port, get_request(path), timeout=10.0)
            problem = reply_problem(reply, path)
            assert problem is None and reply.elapsed < PROMPT, (
                f"while a slow client downloads a large file, others must get their complete "
                f"200 within {PROMPT:g} s, but GET /{path} got {problem or 'it'} after "
                f"{reply.elapsed:.2f} s\n{server_context(server)}"
            )
    finally:
        stop.set()
        reader.join(10.0)
        download.close()
    assert download.received > 0, f"the slow reader received no body byte ({download.error})"
