"""The bounded modes: a fixed pool of threads (thread-pool) or processes (process-pool).

Strategy: the main process runs the Dispatcher, which accepts and reads every head, so a pool
worker gets only complete requests and never waits for a client to speak. A worker serves one
request at a time (`--delay` sleeps in the worker: N workers serve at most N delayed requests at
once), sends while the client keeps up, and hands the rest back to the Dispatcher when the client
stalls (a slow reader, or a client that does not close): no worker waits on a slow network.
Complete heads beyond the free workers wait in the main process, never in a worker: nothing is
passed between workers, so nothing can wedge.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import queue
import socket
import threading
from collections import deque

from httpd.lifecycle import become_worker, signals_blocked
from httpd.limits import DEFAULT_PROCESSES, DEFAULT_THREADS
from httpd.overload import Refusals, start_closing_leaks
from httpd.protocol import HttpError, Request
from httpd.strategies import FORK, DispatchStrategy, join_interruptibly, kill_all, share_one_cpu
from httpd.transfer import Transfer, serve_request

LOG = logging.getLogger("http_server")
REQUEST_SIZE = 96 * 1024  # a pickled head of at most MAX_HEAD (64 KiB) bytes
ANSWER_SIZE = 4096
IDLE = b"idle"


class ThreadPoolStrategy(DispatchStrategy):
    """A fixed set of threads, started before the first client, taking requests from a queue."""

    def start(self) -> None:
        """Start the workers on one CPU; they block on the queue until requests arrive."""
        share_one_cpu()
        self.queue: queue.SimpleQueue[tuple | None] = queue.SimpleQueue()
        self.in_flight = 0
        self.lock = threading.Lock()
        self.dispatcher.busy = lambda: self.in_flight > 0
        count = self.settings.workers or DEFAULT_THREADS
        self.threads = [
            threading.Thread(target=self._work, name=f"worker-{index}") for index in range(count)
        ]
        with signals_blocked():
            for thread in self.threads:
                thread.start()

    def dispatch(self, conn: socket.socket, outcome: Request | HttpError) -> None:
        """Queue the request for the next idle worker."""
        with self.lock:
            self.in_flight += 1
        self.queue.put((conn, outcome))

    def _work(self) -> None:
        """Worker body: serve queued requests until the None sentinel; what a slow client still
        has to receive goes back to the Dispatcher's thread."""
        while (request := self.queue.get()) is not None:
            handed: list[Transfer] = []
            serve_request(*request, self.settings, handed.append)
            if handed:
                self.dispatcher.post(lambda transfer=handed[0]: self._returned(transfer))
            else:
                self._returned(None)

    def _returned(self, transfer: Transfer | None) -> None:
        """A worker is done with a request; the Dispatcher finishes `transfer` (in its thread)."""
        if transfer is not None:
            self.dispatcher.adopt(transfer)
        with self.lock:
            self.in_flight -= 1

    def stop(self) -> None:
        """End and join the workers (the Dispatcher ran until none had a request)."""
        for _ in self.threads:
            self.queue.put(None)
        for thread in self.threads:
            join_interruptibly(thread)


class ProcessPoolStrategy(DispatchStrategy):
    """A fixed set of multiprocessing.Process workers, each fed one request at a time.

    Each worker has its own socketpair to the main process: a complete request arrives on it (the
    socket as an SCM_RIGHTS descriptor, the parsed head pickled), and the worker answers "idle" or
    hands the rest of a slow response back the same way. The main process sends a request only to
    an idle worker, so neither side ever blocks on the pair. A worker that dies is replaced; when
    no process can be started (a process limit), the pool runs short and tries again at the next
    request, and a request that finds no worker at all is answered 503.
    """

    def start(self) -> None:
        """Fork the workers; requests wait in `ready` while every worker is busy."""
        self.ready: deque[tuple[socket.socket, Request | HttpError]] = deque()
        self.workers: dict[socket.socket, multiprocessing.process.BaseProcess] = {}
        self.idle: list[socket.socket] = []
        self.dispatcher.busy = lambda: bool(self.ready) or len(self.idle) < len(self.workers)
        self.size = self.settings.workers or DEFAULT_PROCESSES
        self.refusals = Refusals(self.settings)
        if problem := self._refill():
            LOG.warning("%s: %d of %d workers started", problem, len(self.workers), self.size)

    def _spawn(self) -> None:
        """Fork one worker with its own socketpair; it starts idle.

        Raises:
            OSError: no socketpair or no process could be made (nothing is left open then).
        """
        channel, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            worker = FORK.Process(target=self._work, args=(worker_end,), name="worker")
            with signals_blocked():
                start_closing_leaks(worker)
        except OSError:
            channel.close()
            raise
        finally:
            worker_end.close()
        self.workers[channel] = worker
        self.idle.append(channel)
        self.dispatcher.watch(channel, self._answer)

    def _refill(self) -> str:
        """Start the workers the pool lacks; return why one could not start ("" if all did)."""
        while len(self.workers) < self.size:
            try:
                self._spawn()
            except OSError as error:
                return f"cannot start a worker process ({error})"
        return ""

    def dispatch(self, conn: socket.socket, outcome: Request | HttpError) -> None:
        """Queue the request and give it to an idle worker; with no worker at all, refuse it."""
        problem = self._refill()
        if not self.workers:
            self.refusals.refuse(conn, problem)
            return
        self.refusals.recovered()
        self.ready.append((conn, outcome))
        self._assign()

    def _assign(self) -> None:
        """Send waiting requests to idle workers (the main process keeps no copy)."""
        while self.ready and self.idle:
            channel = self.idle.pop()
            conn, outcome = self.ready.popleft()
            try:
                socket.send_fds(channel, [pickle.dumps(outcome)], [conn.fileno()])
            except OSError:  # that worker has just died: `_answer` will replace it
                self.ready.appendleft((conn, outcome))
                continue
            conn.close()

    def _answer(self, channel: socket.socket) -> None:
        """A worker is done with its request (and may hand back a slow transfer), or died."""
        payload, fds, _, _ = socket.recv_fds(channel, ANSWER_SIZE, 4)
        if not payload:
            self._replace(channel)
            return
        if payload != IDLE:
            self.dispatcher.adopt(Transfer.imported(payload, fds))
        self.idle.append(channel)
        self._assign()

    def _replace(self, channel: socket.socket) -> None:
        """A worker died (its request is lost with it): reap it and start another."""
        self.dispatcher.unwatch(channel)
        dead = self.workers.pop(channel)
        if channel in self.idle:
            self.idle.remove(channel)
        channel.close()
        dead.join()
        LOG.warning("worker %s exited (status %s); starting another", dead.pid, dead.exitcode)
        if problem := self._refill():
            LOG.warning("%s: %d of %d workers left", problem, len(self.workers), self.size)
        if not self.workers:
            while self.ready:
                self.refusals.refuse(self.ready.popleft()[0], problem)

    def _work(self, channel: socket.socket) -> None:
        """Worker body: keep only its own pair, then serve requests until the pair closes."""
        become_worker()
        keep_only_descriptors(channel.fileno())
        while True:
            payload, fds, _, _ = socket.recv_fds(channel, REQUEST_SIZE, 1)
            if not payload:
                return
            conn, handed = socket.socket(fileno=fds[0]), []
            serve_request(conn, pickle.loads(payload), self.settings, handed.append)
            for transfer in handed:
                message, descriptors = transfer.export()
                socket.send_fds(channel, [message], descriptors)
                transfer.close()
            if not handed:
                channel.send(IDLE)

    def stop(self) -> None:
        """Close every worker's pair (each worker then exits) and reap them."""
        for channel, worker in self.workers.items():
            channel.close()
            worker.join()

    def abort(self) -> None:
        """Kill every worker."""
        kill_all(self.workers.values())


def keep_only_descriptors(keep: int) -> None:
    """In a new worker, close every inherited descriptor except stdio and `keep`.

    A fork copies all of the main process's descriptors: the listening socket, the connections it
    is reading, the pairs of the workers forked before. Closing them keeps each worker at the same
    few descriptors, whatever the pool size, and lets the main process alone decide when a
    connection closes. The worker never touches the Python objects that held them.
    """
    os.closerange(3, keep)
    os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
