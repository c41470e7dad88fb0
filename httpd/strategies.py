"""The concurrency modes of the blocking family, and the table of every mode.

Strategy: `single`, `thread`, `thread-pool` and `process` run the shared Dispatcher in the main
process and differ only in `dispatch`, which receives each connection that has data to read.
`process-pool` pre-forks workers that each run their own Dispatcher on the inherited listening
socket. Every strategy has the same shape: `run` serves until the first shutdown signal, then lets
in-flight requests finish and returns; `abort` kills what is left after a second signal.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import queue
import selectors
import socket
import sys
import threading
from typing import NoReturn

from httpd.connection import Settings, serve_connection
from httpd.dispatcher import Dispatcher, close_listener, settle
from httpd.lifecycle import ShutdownSignals, become_worker, signals_blocked
from httpd.overload import Refusals, start_closing_leaks

LOG = logging.getLogger("http_server")
FORK = multiprocessing.get_context("fork")
DEFAULT_THREADS = 16
DEFAULT_PROCESSES = max(4, os.cpu_count() or 1)
JOIN_SLICE = 0.1


class DispatchStrategy:
    """Base of the modes that run the Dispatcher in the main process."""

    def run(self, listener: socket.socket, settings: Settings, signals: ShutdownSignals) -> None:
        """Serve until the first shutdown signal, then wait for in-flight requests."""
        self.settings = settings
        signals.refuse_connections_on(listener)
        self.dispatcher = Dispatcher(listener, signals.reader, self.dispatch, settings.timeout)
        self.start()
        self.dispatcher.run()
        self.dispatcher.finish(signals.backlog)
        LOG.warning("shutting down: waiting for requests in flight (Ctrl-C again to force quit)")
        self.stop()

    def start(self) -> None:
        """Prepare before the first connection (pools start their workers here)."""

    def dispatch(self, conn: socket.socket) -> None:
        """Serve `conn`, which has data to read; the strategy owns it from now on."""
        raise NotImplementedError

    def stop(self) -> None:
        """Wait for every request in flight, then release the workers."""

    def abort(self) -> None:
        """Kill whatever is still running (after a second shutdown signal)."""


class SingleStrategy(DispatchStrategy):
    """One client at a time, in the main thread: the lab-5 baseline."""

    def dispatch(self, conn: socket.socket) -> None:
        """Serve `conn` right here; nobody else is served meanwhile."""
        serve_connection(conn, self.settings)


class ThreadStrategy(DispatchStrategy):
    """A new threading.Thread per connection; all of them joined at shutdown.

    When no thread can be started (a thread or memory limit), the connection is answered 503
    and the server goes on: running out of threads must not end the server.
    """

    def start(self) -> None:
        """Start with no threads, all of them to run on one CPU."""
        share_one_cpu()
        self.threads: set[threading.Thread] = set()
        self.refusals = Refusals(self.settings)
        self.numbers = itertools.count(1)  # thread names conn-1, conn-2...: fds are reused

    def dispatch(self, conn: socket.socket) -> None:
        """Start a thread that serves `conn` (or refuse `conn` when none can start)."""
        name = f"conn-{next(self.numbers)}"
        thread = threading.Thread(target=self._serve, args=(conn,), name=name)
        self.threads.add(thread)
        try:
            with signals_blocked():
                thread.start()
        except RuntimeError as error:
            self.threads.discard(thread)
            self.refusals.refuse(conn, f"cannot start a thread ({error})")
            return
        self.refusals.recovered()

    def _serve(self, conn: socket.socket) -> None:
        """Thread body: serve, then forget this thread (the set holds only live ones)."""
        try:
            serve_connection(conn, self.settings)
        finally:
            self.threads.discard(threading.current_thread())

    def stop(self) -> None:
        """Join every thread still running."""
        for thread in list(self.threads):
            join_interruptibly(thread)


class ThreadPoolStrategy(DispatchStrategy):
    """A fixed set of threads, started before the first client, taking connections from a queue."""

    def start(self) -> None:
        """Start the workers on one CPU; they block on the queue until connections arrive."""
        share_one_cpu()
        self.queue: queue.SimpleQueue[socket.socket | None] = queue.SimpleQueue()
        count = self.settings.workers or DEFAULT_THREADS
        self.threads = [
            threading.Thread(target=self._work, name=f"worker-{index}") for index in range(count)
        ]
        with signals_blocked():
            for thread in self.threads:
                thread.start()

    def dispatch(self, conn: socket.socket) -> None:
        """Queue `conn` for the next idle worker."""
        self.queue.put(conn)

    def _work(self) -> None:
        """Worker body: serve queued connections until the None sentinel."""
        while (conn := self.queue.get()) is not None:
            serve_connection(conn, self.settings)

    def stop(self) -> None:
        """Let the workers finish the queue, then end and join them."""
        for _ in self.threads:
            self.queue.put(None)
        for thread in self.threads:
            join_interruptibly(thread)


class ProcessStrategy(DispatchStrategy):
    """A new multiprocessing.Process (fork context) per connection, reaped as soon as it exits.

    The lab allows only threading.Thread and multiprocessing.Process; the fork context starts a
    child without re-importing anything, and the child leaves with os._exit once it has served,
    skipping multiprocessing's clean-up (it has nothing to flush but stderr). The parent watches
    each child's `sentinel`, which becomes readable the moment the child exits, and keeps the
    child in `children` until it is joined, so a second Ctrl-C can still kill it. The fork
    happens with the shutdown signals blocked: a Ctrl-C must not run the parent's handler in a
    child that has not yet made itself a worker (it would shut the shared listener and take the
    queued connections with it). When no process can be started (a process limit), the
    connection is answered 503.
    """

    def start(self) -> None:
        """Start with no children (`children` maps each child's sentinel to the child)."""
        self.children: dict[int, multiprocessing.process.BaseProcess] = {}
        self.refusals = Refusals(self.settings)

    def dispatch(self, conn: socket.socket) -> None:
        """Start a child that serves `conn`; the parent closes its copy and watches for the exit."""
        child = FORK.Process(
            target=self._serve_in_child, args=(conn,), name=f"conn-{conn.fileno()}"
        )
        try:
            with signals_blocked():
                start_closing_leaks(child)
        except OSError as error:
            self.refusals.refuse(conn, f"cannot start a process ({error})")
            return
        self.refusals.recovered()
        conn.close()
        self.children[child.sentinel] = child
        self.dispatcher.watch(child.sentinel, self._reap)

    def _serve_in_child(self, conn: socket.socket) -> NoReturn:
        """Child body: drop the parent's descriptors and signal duties, serve, and exit at once.

        The exit status is 0 only if the connection was served.
        """
        status = 1
        try:
            become_worker()
            self.dispatcher.release_in_child()
            serve_connection(conn, self.settings)
            status = 0
        finally:
            sys.stderr.flush()
            os._exit(status)

    def _reap(self, sentinel: int) -> None:
        """A child exited (or, at shutdown, is still serving): join it, then forget it."""
        self.dispatcher.unwatch(sentinel)
        child = self.children[sentinel]
        child.join()
        del self.children[sentinel]
        child.close()

    def stop(self) -> None:
        """Wait for every child still serving."""
        for sentinel in list(self.children):
            self._reap(sentinel)

    def abort(self) -> None:
        """Kill every child still serving."""
        kill_all(self.children.values())


class ProcessPoolStrategy:
    """A fixed set of forked workers, each accepting on the inherited listening socket.

    A worker serves one connection at a time. Before it starts on one, it passes the connections
    parked with it (accepted, request not yet arrived) through a shared datagram socketpair, where
    any idle worker takes them: no connection ever waits behind a busy worker.
    """

    def run(self, listener: socket.socket, settings: Settings, signals: ShutdownSignals) -> None:
        """Start the workers, replace any that dies, and stop them all on the first signal.

        The few connections still queued when the signal came, or still passed between workers
        when they stopped, are served here, by the parent.
        """
        self.settings, self.signals, self.listener = settings, signals, listener
        listener.setblocking(False)
        signals.refuse_connections_on(listener)
        self.stop_reader, self.stop_writer = os.pipe()
        self.outbox, self.inbox = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.inbox.setblocking(False)
        self.workers: dict[int, multiprocessing.process.BaseProcess] = {}
        self.selector = selectors.DefaultSelector()
        self.selector.register(signals.reader, selectors.EVENT_READ)
        for _ in range(settings.workers or DEFAULT_PROCESSES):
            self._spawn()
        while not any(key.fileobj is signals.reader for key, _ in self.selector.select()):
            self._replace_dead_workers()
        close_listener(listener)
        os.close(self.stop_writer)
        LOG.warning("shutting down: waiting for requests in flight (Ctrl-C again to force quit)")
        serve = lambda conn: serve_connection(conn, settings)  # noqa: E731
        settle(signals.backlog, serve)
        for worker in self.workers.values():
            worker.join()
        settle(receive_connections(self.inbox), serve)
        os.close(self.stop_reader)

    def _spawn(self) -> None:
        """Fork one worker and watch for its exit."""
        worker = FORK.Process(target=self._work, name=f"worker-{len(self.workers)}")
        worker.start()
        self.workers[worker.sentinel] = worker
        self.selector.register(worker.sentinel, selectors.EVENT_READ)

    def _replace_dead_workers(self) -> None:
        """Reap workers that exited on their own and start new ones in their place."""
        for sentinel in [s for s, worker in self.workers.items() if not worker.is_alive()]:
            self.selector.unregister(sentinel)
            dead = self.workers.pop(sentinel)
            dead.join()
            LOG.warning("worker %s exited (status %s); starting another", dead.pid, dead.exitcode)
            self._spawn()

    def _work(self) -> None:
        """Worker body: accept and serve until the parent closes the stop pipe (or dies)."""
        become_worker(self.signals)
        os.close(self.stop_writer)
        self.selector.close()
        self.dispatcher = Dispatcher(
            self.listener, self.stop_reader, self._serve_here, self.settings.timeout
        )
        self.dispatcher.watch(self.inbox, self._take_passed)
        self.dispatcher.run()
        self.dispatcher.finish([])

    def _serve_here(self, conn: socket.socket) -> None:
        """Pass this worker's parked connections to idle workers, then serve `conn`."""
        for parked in self.dispatcher.release_parked():
            socket.send_fds(self.outbox, [b"c"], [parked.fileno()])
            parked.close()
        serve_connection(conn, self.settings)

    def _take_passed(self, inbox: socket.socket) -> None:
        """Take over a connection another (busy) worker passed on."""
        for conn in receive_connections(inbox, limit=1):
            self.dispatcher.route(conn)

    def abort(self) -> None:
        """Kill every worker."""
        kill_all(self.workers.values())


def receive_connections(inbox: socket.socket, limit: int | None = None) -> list[socket.socket]:
    """Receive up to `limit` (default: all waiting) connections passed through `inbox`."""
    received: list[socket.socket] = []
    while limit is None or len(received) < limit:
        try:
            _, fds, _, _ = socket.recv_fds(inbox, 1, 1)
        except BlockingIOError:
            break
        received += [socket.socket(fileno=fd) for fd in fds]
    return received


def share_one_cpu() -> None:
    """Keep this process, and the threads it starts from now on, on the CPU it runs on now.

    The GIL lets one thread run Python at a time, and every request passes it between threads
    (the accept loop, then the thread that serves). When the two threads sit on different cores,
    each pass is a cross-core wake-up, which on a virtual machine costs more than serving the
    request: on the 2-core benchmark machine, one CPU serves 1.9x (thread) and 3.5x (thread-pool)
    more requests per second than two. The price: the kernel work done on behalf of this process
    (socket copies, sendfile) stays on that CPU too. Taking the current CPU, not always the
    first, spreads several servers over the machine. Does nothing where the platform has no CPU
    affinity (macOS) or allows only one CPU anyway.
    """
    if hasattr(os, "sched_setaffinity") and len(allowed := os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, {current_cpu(default=min(allowed))})


def current_cpu(default: int) -> int:
    """Return the CPU the calling thread last ran on (Linux's /proc), or `default` without it."""
    try:
        with open("/proc/thread-self/stat") as stat:
            return int(stat.read().rpartition(")")[2].split()[36])
    except (OSError, ValueError, IndexError):
        return default


def join_interruptibly(thread: threading.Thread) -> None:
    """Join `thread` in short slices, so that a second Ctrl-C is handled within JOIN_SLICE.

    Between slices the main thread runs any signal handler that is due: a long join is not
    always woken by a signal (seen on Python 3.13 under load), and the forced exit must not wait
    for a stalled download to end.
    """
    while thread.is_alive():
        thread.join(JOIN_SLICE)


def kill_all(processes: object) -> None:
    """Send SIGKILL to each process still alive in `processes`, then reap them."""
    for process in list(processes):
        if process.is_alive():
            process.kill()
        process.join()
