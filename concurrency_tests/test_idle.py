"""Idle connections (Chrome's speculative preconnects) must cost other clients nothing."""

# Strategy: 50 connections that never send a byte are opened and held until the server has
# accepted them (psutil), then ordinary clients must be served promptly, one after the other, in
# every concurrent mode (`single` too, but only as a recommendation). Separately, idle connections
# must be closed by the server eventually: the wait ends as soon as the server closes them all
# (select on the sockets), so it costs the server's own idle timeout and 60 s only when it fails.

from __future__ import annotations

import selectors
import socket
import time

import pytest

from concurrency_tests.support import (
    PROMPT,
    SMALL_FILES,
    get_request,
    open_idle_connections,
    reply_problem,
    server_context,
)
from harness.client import exchange
from harness.server import ServerFactory, ServerProcess

IDLE_CONNECTIONS = 50
PROMPT_CLIENTS = 3
IDLE_CLOSE_CONNECTIONS = 5
IDLE_CLOSE_WITHIN = 60.0


def check_clients_served_despite_idle(server: ServerProcess) -> None:
    """Hold IDLE_CONNECTIONS idle connections; require prompt, correct answers to other clients."""
    idle = open_idle_connections(server, IDLE_CONNECTIONS)
    try:
        for path in SMALL_FILES[:PROMPT_CLIENTS]:
            reply = exchange(server.port, get_request(path), timeout=10.0)
            problem = reply_problem(reply, path)
            slow = reply.elapsed >= PROMPT
            assert problem is None and not slow, (
                f"with {IDLE_CONNECTIONS} idle connections open (connected, nothing sent), another "
                f"client must get its complete 200 within {PROMPT:g} s, but GET /{path} got "
                f"{problem or 'it'} after {reply.elapsed:.2f} s\n{server_context(server)}"
            )
    finally:
        for sock in idle:
            sock.close()


@pytest.mark.tier("recommended")
@pytest.mark.except_modes("single")
def test_idle_connections_do_not_delay_other_clients(
    mode: str, server_factory: ServerFactory
) -> None:
    """50 idle connections do not stop a normal client from being served within 2 s."""
    check_clients_served_despite_idle(server_factory(mode))


@pytest.mark.tier("recommended")
@pytest.mark.only_modes("single")
def test_single_mode_serves_clients_despite_idle_connections(
    mode: str, server_factory: ServerFactory
) -> None:
    """Even one-at-a-time `single` should not let a silent connection block everyone."""
    check_clients_served_despite_idle(server_factory(mode))


def wait_closed_by_peer(sockets: list[socket.socket], timeout: float) -> dict[int, float]:
    """Wait until the peer closes (EOF or reset) each socket; return index -> seconds taken."""
    started, closed = time.monotonic(), {}
    with selectors.DefaultSelector() as selector:
        for index, sock in enumerate(sockets):
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, index)
        while len(closed) < len(sockets):
            left = started + timeout - time.monotonic()
            if left <= 0:
                break
            for key, _ in selector.select(left):
                selector.unregister(key.fileobj)
                closed[key.data] = time.monotonic() - started
    return closed


@pytest.mark.tier("recommended")
def test_idle_connections_are_eventually_closed(mode: str, server_factory: ServerFactory) -> None:
    """A connection that never sends a byte is closed by the server within 60 s."""
    server = server_factory(mode)
    idle = open_idle_connections(server, IDLE_CLOSE_CONNECTIONS)
    try:
        closed = wait_closed_by_peer(idle, IDLE_CLOSE_WITHIN)
    finally:
        for sock in idle:
            sock.close()
    assert len(closed) == len(idle), (
        f"idle connections (connected, nothing sent) must be timed out and closed by the server: "
        f"{len(idle) - len(closed)} of {len(idle)} were still open after {IDLE_CLOSE_WITHIN:g} s"
        f"\n{server_context(server)}"
    )
