"""Serving loops the hostile_* broken servers share: a capped thread per connection, and a pool
of worker threads behind a selector front that parks connections until their bytes arrive."""

# Strategy: both loops reuse _base's Handler and command line and change only who runs
# Handler.serve. `serve_capped` is _base's thread per connection with a semaphore taken before
# each accept. `serve_pool` keeps new connections in a selector (so silent ones cost no worker)
# and hands a connection to a fixed pool through a queue either at its first bytes or once its
# whole head is in; the front never times anything out, which is fine for what these servers are
# for. Ctrl-C ends the process at once (workers are daemons). Standard library only.

from __future__ import annotations

import os
import queue
import selectors
import socket
import sys
import threading
from pathlib import Path

from _base import Handler, parse_args

HEAD_END = b"\r\n\r\n"
HEAD_LIMIT = 65536


class PrereadHandler(Handler):
    """A Handler whose head the front has already read."""

    preread: bytes = b""

    def read_head(self) -> bytes | None:
        """Return the head the front gathered (None if the client closed first)."""
        self.conn.settimeout(self.head_timeout)
        head, found, _ = self.preread.partition(HEAD_END)
        return head if found else None


def listen(port: int) -> socket.socket:
    """Listen on 127.0.0.1:`port` or exit with a one-line error."""
    try:
        return socket.create_server(("127.0.0.1", port), backlog=4096)
    except OSError as exc:
        sys.exit(f"cannot listen on port {port}: {exc.strerror}")


def serve_capped(handler: type[Handler], cap: int) -> None:
    """A thread per connection, but never more than `cap` at once (accepting waits for a slot)."""
    args = parse_args(("thread",))
    root, listener = Path(os.path.realpath(args.folder)), listen(args.port)
    slots = threading.BoundedSemaphore(cap)

    def serve(worker: Handler) -> None:
        """Serve one connection, then free its slot."""
        try:
            worker.serve()
        finally:
            slots.release()

    try:
        while True:
            slots.acquire()
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(handler(conn, root, args.delay),)).start()
    except KeyboardInterrupt:
        os._exit(0)


def serve_pool(workers: int, whole_head: bool, patience: float = Handler.head_timeout) -> None:
    """A pool of `workers` threads behind a selector front.

    Args: `whole_head` makes the front gather each head before handing the connection over;
    otherwise the connection goes to a worker at its first readable moment. `patience` is the
    socket timeout of a worker (each recv, each wait to send).
    """
    args = parse_args(("thread",))
    root, listener = Path(os.path.realpath(args.folder)), listen(args.port)
    ready: queue.Queue[Handler] = queue.Queue()
    for _ in range(workers):
        threading.Thread(target=lambda: _work(ready), daemon=True).start()
    handler = PrereadHandler if whole_head else Handler
    front = selectors.DefaultSelector()
    front.register(listener, selectors.EVENT_READ)
    buffers: dict[socket.socket, bytes] = {}
    try:
        while True:
            for key, _ in front.select():
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    buffers[conn] = b""
                    front.register(conn, selectors.EVENT_READ)
                    continue
                conn = key.fileobj
                if whole_head and not _gathered(conn, buffers):
                    continue
                front.unregister(conn)
                head, worker = buffers.pop(conn), handler(conn, root, args.delay)
                worker.head_timeout = patience
                if isinstance(worker, PrereadHandler):
                    worker.preread = head
                ready.put(worker)
    except KeyboardInterrupt:
        os._exit(0)


def _gathered(conn: socket.socket, buffers: dict[socket.socket, bytes]) -> bool:
    """Read what `conn` has; True once its head is complete or it closed (hand it over)."""
    try:
        data = conn.recv(4096)
    except OSError:
        data = b""
    buffers[conn] += data
    return not data or HEAD_END in buffers[conn] or len(buffers[conn]) >= HEAD_LIMIT


def _work(ready: queue.Queue[Handler]) -> None:
    """Worker thread body: serve the connections of the queue, one after the other."""
    while True:
        ready.get().serve()
