"""Each mode's worker model, seen through psutil while delayed requests are in flight."""

# Strategy: the server's process tree is sampled before any client (once it has settled), over
# and over while delayed requests are in flight (from "all sent" to "all answered"), and after
# (polling with a deadline). A mode that spawns per client must grow by a thread or process per
# client and shrink back; a pool keeps the same threads or pids throughout, even under a burst
# larger than itself; an event loop stays one thread in one process. Replies are checked first.

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from concurrency_tests.support import (
    CLIENT_TIMEOUT,
    DELAY,
    ClientGroup,
    TreeSample,
    fixture_paths,
    sample_until,
    samples_until_done,
    server_context,
    settled_sample,
)
from harness.server import ServerFactory, ServerProcess

CLIENTS = 4
EVENT_LOOP_CLIENTS = 10
POOL_BURST_CAP = 64
SETTLE_AFTER = 5.0
ZOMBIE_CLIENTS = 20
ZOMBIE_LIMIT = ZOMBIE_CLIENTS // 2


@dataclass
class Burst:
    """One burst of delayed clients and the tree samples taken around it."""

    server: ServerProcess
    before: TreeSample
    group: ClientGroup
    during: list[TreeSample]

    def after(self, condition: Callable[[TreeSample], bool]) -> TreeSample:
        """Poll until `condition` holds (SETTLE_AFTER s at most); return the last sample."""
        return sample_until(self.server, condition, SETTLE_AFTER)

    def context(self) -> str:
        """The samples in words, for assertion messages."""
        during = "\n".join(
            f"  {sample.describe()}" for sample in self.during[:: max(1, len(self.during) // 8)]
        )
        return (
            f"before: {self.before.describe()}\nduring (some samples):\n{during}\n"
            f"{server_context(self.server)}"
        )


def run_burst(server: ServerProcess, clients: int | Callable[[TreeSample], int]) -> Burst:
    """Sample the settled tree, send `clients` delayed requests at once, sample until answered.

    Args: `clients` may be a function of the settled sample (a pool's burst exceeds its size).
    Fails the test if any reply is not the file's exact bytes.
    """
    before = settled_sample(server, lambda s: (s.root_threads, s.children))
    count = clients(before) if callable(clients) else clients
    group = ClientGroup(server.port, fixture_paths(count)).start()
    group.wait_sent()
    during = samples_until_done(server, group, count * DELAY + CLIENT_TIMEOUT)
    problems = group.problems()
    assert not problems, (
        f"every delayed client must get a complete, correct 200 ({len(problems)} did not):\n"
        + "\n".join(problems)
        + f"\n{server_context(server)}"
    )
    return Burst(server, before, group, during)


def samples_with_children(burst: Burst) -> list[str]:
    """Describe the samples in which the server had child processes."""
    return [s.describe() for s in [burst.before, *burst.during] if s.children]


@pytest.mark.lab("lab6.low-level-objects")
@pytest.mark.only_modes("thread")
def test_thread_mode_starts_a_thread_per_client(mode: str, server_factory: ServerFactory) -> None:
    """thread: +1 thread per client in flight (N-1 allowed), back to baseline after, no child."""
    burst = run_burst(server_factory(mode, delay=True), CLIENTS)
    base = burst.before.root_threads
    peak = max(sample.root_threads for sample in burst.during)
    assert peak - base >= CLIENTS - 1, (
        f"the thread mode must run a thread per client: with {CLIENTS} delayed requests in flight "
        f"the server had at most {peak} threads, {base} before\n{burst.context()}"
    )
    after = burst.after(lambda sample: sample.root_threads <= base)
    assert after.root_threads <= base, (
        f"the thread mode must end each client's thread: {after.root_threads} threads remain "
        f"{SETTLE_AFTER:g} s after the last reply, {base} before\n{burst.context()}"
    )
    forks = samples_with_children(burst)
    assert not forks, f"the thread mode must not fork: {forks[:3]}\n{burst.context()}"


@pytest.mark.lab("lab6.low-level-objects")
@pytest.mark.only_modes("process")
def test_process_mode_forks_a_child_per_client(mode: str, server_factory: ServerFactory) -> None:
    """process: a live child process per client in flight."""
    burst = run_burst(server_factory(mode, delay=True), CLIENTS)
    peak = max(len(sample.children - sample.zombies) for sample in burst.during)
    assert peak >= CLIENTS, (
        f"the process mode must serve each client in a child process: with {CLIENTS} delayed "
        f"requests in flight the server had at most {peak} live children\n{burst.context()}"
    )


@pytest.mark.tier("recommended")
@pytest.mark.only_modes("process")
def test_process_mode_reaps_each_child_at_once(mode: str, server_factory: ServerFactory) -> None:
    """process: once every client is served, no child and no zombie is left (none waits)."""
    burst = run_burst(server_factory(mode, delay=True), CLIENTS)
    after = burst.after(lambda sample: not sample.children)
    assert not after.children, (
        f"a child should be reaped as soon as its client is served, but {SETTLE_AFTER:g} s "
        f"after the last reply: {after.describe()}\n{burst.context()}"
    )


@pytest.mark.lab("lab6.worker-per-client")
@pytest.mark.only_modes("process")
def test_process_mode_zombies_do_not_accumulate(mode: str, server_factory: ServerFactory) -> None:
    """process: after ZOMBIE_CLIENTS clients and one more, the finished children were reaped.

    A server that reaps lazily (at its next accept) passes; one that never reaps keeps a zombie
    per client served.
    """
    server = server_factory(mode)
    group = ClientGroup(server.port, fixture_paths(ZOMBIE_CLIENTS)).start()
    group.wait_done(CLIENT_TIMEOUT)
    last = ClientGroup(server.port, fixture_paths(1)).start()
    last.wait_done(CLIENT_TIMEOUT)
    problems = group.problems() + last.problems()
    assert not problems, (
        "every client must get a complete, correct 200:\n"
        + "\n".join(problems)
        + f"\n{server_context(server)}"
    )
    after = sample_until(server, lambda s: len(s.zombies) < ZOMBIE_LIMIT, SETTLE_AFTER)
    assert len(after.zombies) < ZOMBIE_LIMIT, (
        f"finished children must not pile up: after {ZOMBIE_CLIENTS} clients and one more, "
        f"{len(after.zombies)} zombie children remain ({SETTLE_AFTER:g} s later): "
        f"{after.describe()}\n{server_context(server)}"
    )


@pytest.mark.lab("lab6.thread-pool-select")
@pytest.mark.only_modes("thread-pool")
def test_thread_pool_keeps_a_fixed_set_of_threads(mode: str, server_factory: ServerFactory) -> None:
    """thread-pool: the same thread count before, during and after a burst larger than the pool."""
    burst = run_burst(
        server_factory(mode, delay=True),
        lambda sample: min(sample.root_threads + 2, POOL_BURST_CAP),
    )
    base, size = burst.before.root_threads, len(burst.group.clients)
    changed = sorted({s.root_threads for s in burst.during if s.root_threads != base})
    assert not changed, (
        f"a thread pool is pre-started and bounded: the server had {base} threads before a burst "
        f"of {size} delayed clients, but {changed} while serving it\n{burst.context()}"
    )
    after = burst.after(lambda sample: sample.root_threads == base)
    assert after.root_threads == base, (
        f"a thread pool keeps its threads: {base} before the burst, {after.root_threads} "
        f"{SETTLE_AFTER:g} s after it\n{burst.context()}"
    )
    forks = samples_with_children(burst)
    assert not forks, f"the thread-pool mode must not fork: {forks[:3]}\n{burst.context()}"


@pytest.mark.lab("lab6.extra-credit")
@pytest.mark.only_modes("process-pool")
def test_process_pool_reuses_its_prefork_workers(mode: str, server_factory: ServerFactory) -> None:
    """process-pool: the same child pids before, during and after a burst larger than the pool."""
    server = server_factory(mode, delay=True)
    burst = run_burst(server, lambda sample: len(sample.children) + 2)
    workers = burst.before.children
    assert workers, (
        f"a process pool is pre-forked: the server had no child process before the first "
        f"client\n{burst.context()}"
    )
    changed = [s.describe() for s in burst.during if s.children != workers or s.zombies]
    assert not changed, (
        f"a process pool serves every client with the same workers {sorted(workers)}: during a "
        f"burst of {len(burst.group.clients)} delayed clients the tree changed: {changed[:3]}"
        f"\n{burst.context()}"
    )
    after = burst.after(lambda sample: sample.children == workers and not sample.zombies)
    assert after.children == workers and not after.zombies, (
        f"a process pool keeps its workers {sorted(workers)}: {SETTLE_AFTER:g} s after the burst "
        f"{after.describe()}\n{burst.context()}"
    )


def check_one_thread_serves_everyone(mode: str, server_factory: ServerFactory) -> None:
    """Fail unless the server keeps one thread in one process with delayed clients in flight."""
    burst = run_burst(server_factory(mode, delay=True), EVENT_LOOP_CLIENTS)
    samples = [burst.before, *burst.during]
    wrong = [s.describe() for s in samples if s.children or s.root_threads != 1]
    assert not wrong, (
        f"the {mode} mode must serve every client from one thread of one process: with "
        f"{EVENT_LOOP_CLIENTS} delayed requests in flight the server had: {wrong[:3]}"
        f"\n{burst.context()}"
    )


@pytest.mark.lab("lab6.extra-credit")
@pytest.mark.only_modes("async")
def test_async_mode_serves_everyone_from_one_thread(
    mode: str, server_factory: ServerFactory
) -> None:
    """async: one thread in one process, however many delayed clients are in flight."""
    check_one_thread_serves_everyone(mode, server_factory)


@pytest.mark.lab("lab6.thread-pool-select")
@pytest.mark.only_modes("select")
def test_select_mode_serves_everyone_from_one_thread(
    mode: str, server_factory: ServerFactory
) -> None:
    """select: one thread in one process, however many delayed clients are in flight."""
    check_one_thread_serves_everyone(mode, server_factory)
