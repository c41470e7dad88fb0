"""Delayed requests (-d) from several clients at once must be served side by side."""

# Strategy: N clients connect together (a barrier) to a server started with -d; each records its
# [connect, last byte] interval. Every reply must be the fixture's exact bytes; every request must
# really have been delayed (a server that ignores -d proves nothing about concurrency); only then
# are the intervals compared: together they fit in under two delays, never N. The wait ends at
# that bound, so a sequential server fails in 10 s, not N x 5 s. `single` gets the opposite check.
# Each test records its clients' intervals as the results-JSON `timeline` the grader draws.

from __future__ import annotations

from collections.abc import Callable

import pytest

from concurrency_tests.support import (
    CLIENT_TIMEOUT,
    DELAY,
    MIN_DELAY,
    ClientGroup,
    fixture_paths,
    server_context,
)
from harness.server import ServerFactory, ServerProcess

REQUIRED_CLIENTS = 4
OVERLAP_LIMIT = 2 * DELAY
SINGLE_CLIENTS = 3
POOL_MODES = ("thread-pool", "process-pool")
RecordProperty = Callable[[str, object], None]
CLIENT_COUNTS = [
    pytest.param(REQUIRED_CLIENTS, id="4-clients"),
    pytest.param(10, id="10-clients", marks=pytest.mark.tier("recommended")),
]


def assert_replies_correct(group: ClientGroup, server: ServerProcess) -> None:
    """Fail unless every client got a complete 200 with the file's exact bytes."""
    problems = group.problems()
    assert not problems, (
        f"every delayed client must get a complete, correct 200; {len(problems)} did not:\n"
        + "\n".join(problems)
        + f"\ntimeline:\n{group.timeline()}\n{server_context(server)}"
    )


def assert_delay_is_real(group: ClientGroup, server: ServerProcess) -> None:
    """Fail when some delayed request was answered in well under the 5 s delay."""
    quick = [
        f"client {n}: {c.duration:.2f} s" for n, c in enumerate(group) if c.duration < MIN_DELAY
    ]
    assert not quick, (
        f"with -d every response must come {DELAY:g} s after its request (at least {MIN_DELAY:g} s"
        f" measured), but {', '.join(quick)}: a server that ignores -d in mode {server.mode} "
        f"proves nothing about concurrency\ntimeline:\n{group.timeline()}"
    )


@pytest.mark.lab("lab6.concurrent")
@pytest.mark.except_modes("single")
@pytest.mark.parametrize("clients", CLIENT_COUNTS)
def test_delayed_requests_are_served_concurrently(
    mode: str, clients: int, server_factory: ServerFactory, record_property: RecordProperty
) -> None:
    """N clients connecting at once to a delayed server are all answered within ~one delay."""
    if clients > REQUIRED_CLIENTS and mode in POOL_MODES:
        pytest.skip(
            "a bounded pool may serve fewer than 10 clients at once (4-client case applies)"
        )
    server = server_factory(mode, delay=True)
    group = ClientGroup(server.port, fixture_paths(clients)).start()
    all_done = group.wait_done(OVERLAP_LIMIT + 1.0)
    record_property("timeline", group.timeline_record(DELAY))
    answered = sum(client.done.is_set() for client in group)
    assert all_done, (
        f"{clients} delayed requests sent at once must overlap (about {DELAY:g} s in all, "
        f"{clients * DELAY:g} s if served one by one), but after {OVERLAP_LIMIT + 1:g} s only "
        f"{answered} of {clients} had their reply:\n{group.timeline()}\n{server_context(server)}"
    )
    assert_replies_correct(group, server)
    assert_delay_is_real(group, server)
    assert group.span() < OVERLAP_LIMIT, (
        f"{clients} delayed requests sent at once must overlap, but they took {group.span():.2f} s"
        f" from first connect to last byte (limit {OVERLAP_LIMIT:g} s; one by one would be "
        f"{clients * DELAY:g} s):\n{group.timeline()}"
    )


@pytest.mark.tier("recommended")
@pytest.mark.only_modes("single")
def test_single_mode_serves_one_client_at_a_time(
    mode: str, server_factory: ServerFactory, record_property: RecordProperty
) -> None:
    """`single` serves delayed requests one after the other: N of them take about N delays."""
    server = server_factory(mode, delay=True)
    group = ClientGroup(server.port, fixture_paths(SINGLE_CLIENTS)).start()
    group.wait_done(SINGLE_CLIENTS * DELAY + CLIENT_TIMEOUT)
    record_property("timeline", group.timeline_record(DELAY))
    assert_replies_correct(group, server)
    assert_delay_is_real(group, server)
    sequential = (SINGLE_CLIENTS - 1) * MIN_DELAY
    assert group.span() >= sequential, (
        f"the single mode must serve one client at a time: {SINGLE_CLIENTS} delayed requests "
        f"should take about {SINGLE_CLIENTS * DELAY:g} s (at least {sequential:g} s), but took "
        f"{group.span():.2f} s:\n{group.timeline()}"
    )
