"""The unbounded modes of the blocking family (single, thread, process) and their base.

Strategy: every blocking mode runs the shared Dispatcher in the main process (it accepts and reads
each head) and differs only in `dispatch`, which receives each connection whose head is complete.
Every strategy has the same shape: `run` serves until the first shutdown signal, then lets
in-flight requests finish and returns; `abort` kills what is left after a second signal. The
bounded pools live in httpd/pools.py.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import socket
import sys
import threading
from typing import NoReturn

from httpd.connection import Settings
from httpd.dispatcher import Dispatcher
from httpd.lifecycle import ShutdownSignals, become_worker, signals_blocked
from httpd.overload import Refusals, start_closing_leaks
from httpd.protocol import HttpError, Request
from httpd.transfer import serve_request

LOG = logging.getLogger("http_server")
FORK = multiprocessing.get_context("fork")
JOIN_SLICE = 0.1


class DispatchStrategy:
    """Base of the modes that run the Dispatcher in the main process."""

    def run(self, listener: socket.socket, settings: Settings, signals: ShutdownSignals) -> None:
        """Serve until the first shutdown signal, then wait for in-flight requests."""
        self.settings = settings
        signals.refuse_connections_on(listener)
        self.dispatcher = Dispatcher(listener, signals, self.dispatch, settings)
        self.start()
        self.dispatcher.run()
        self.stop()

    def start(self) -> None:
        """Prepare before the first connection (pools start their workers here)."""

    def dispatch(self, conn: socket.socket, outcome: Request | HttpError) -> None:
        """Serve `conn`, whose head `outcome` is complete; the strategy owns it from now on."""
        raise NotImplementedError

    def stop(self) -> None:
        """Wait for every request in flight, then release the workers."""

    def abort(self) -> None:
        """Kill whatever is still running (after a second shutdown signal)."""


class SingleStrategy(DispatchStrategy):
    """One client at a time, in the main thread: the lab-5 baseline."""

    def dispatch(self, conn: socket.socket, outcome: Request | HttpError) -> None:
        """Serve `conn` right here; nobody else is served meanwhile."""
        serve_request(conn, outcome, self.settings)


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

    def dispatch(self, conn: socket.socket, outcome: Request | HttpError) -> None:
        """Start a thread that serves `conn` (or refuse `conn` when none can start)."""
        name = f"conn-{next(self.numbers)}"
        thread = threading.Thread(target=self._serve, args=(conn, outcome), name=name)
        self.threads.add(thread)
        try:
            with signals_blocked():
                thread.start()
        except RuntimeError as error:
            self.threads.discard(thread)
            self.refusals.refuse(conn, f"cannot start a thread ({error})")
            return
        self.refusals.recovered()

    def _serve(self, conn: socket.socket, outcome: Request | HttpError) -> None:
        """Thread body: serve, then forget this thread (the set holds only live ones)."""
        try:
            serve_request(conn, outcome, self.settings)
        finally:
            self.threads.discard(threading.current_thread())

    def stop(self) -> None:
        """Join every thread still running."""
        for thread in list(self.threads):
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

    def dispatch(self, conn: socket.socket, outcome: Request | HttpError) -> None:
        """Start a child that serves `conn`; the parent closes its copy and watches for the exit."""
        child = FORK.Process(
            target=self._serve_in_child, args=(conn, outcome), name=f"conn-{conn.fileno()}"
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

    def _serve_in_child(self, conn: socket.socket, outcome: Request | HttpError) -> NoReturn:
        """Child body: drop the parent's descriptors and signal duties, serve, and exit at once.

        The exit status is 0 only if the connection was served.
        """
        status = 1
        try:
            become_worker()
            self.dispatcher.release_in_child()
            serve_request(conn, outcome, self.settings)
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
