"""What the thread and process modes do when no worker can be started for a connection.

Strategy: under a thread or process limit (or out of memory), starting a thread raises
RuntimeError and a fork raises BlockingIOError. The server must not die of it: the connection
that found no worker gets a 503, answered without blocking from the accept loop, the first refusal
of a streak is logged (one line, not one per attacker's connection), and the next connection
tries again. A failed multiprocessing fork also leaks descriptors, which are closed here.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import socket
import stat

from httpd.connection import RECV_SIZE, Settings
from httpd.responses import error_response

LOG = logging.getLogger("http_server")
FORK_PIPE_ENDS = 4


class Refusals:
    """Answers 503 to connections no thread or process could be started for; logs once a streak.

    The dispatcher has read the request head; whatever else arrived is read too, so that closing
    does not reset the answer, then the connection is answered without blocking.
    """

    def __init__(self, settings: Settings) -> None:
        """Start outside any streak of refusals."""
        self.settings = settings
        self.refusing = False

    def refuse(self, conn: socket.socket, reason: str) -> None:
        """Answer 503 to `conn` and close it; log `reason` if this starts a streak."""
        if not self.refusing:
            LOG.warning("%s: answering 503 until a worker can start again", reason)
        self.refusing = True
        response = error_response(503, self.settings.root, "the server is out of workers")
        with conn:
            conn.setblocking(False)
            with contextlib.suppress(OSError):
                conn.recv(RECV_SIZE)
            with contextlib.suppress(OSError):
                conn.send(response.head() + response.body)

    def recovered(self) -> None:
        """A worker started again: the next refusal is logged."""
        self.refusing = False


def start_closing_leaks(process: multiprocessing.process.BaseProcess) -> None:
    """Start `process`; if the fork fails, close the two pipes multiprocessing leaks then.

    The fork context (CPython's popen_fork) opens two pipes just before it forks and does not
    close them when os.fork raises: four descriptors lost per failure, under a process limit
    four per refused connection. Nothing else opens a descriptor in between, so they take the
    four lowest free numbers, which are found beforehand.

    Raises:
        OSError: the fork failed (BlockingIOError at a process limit).
    """
    free = lowest_free_descriptors(FORK_PIPE_ENDS)
    try:
        process.start()
    except OSError:
        for fd in free:
            with contextlib.suppress(OSError):
                if stat.S_ISFIFO(os.fstat(fd).st_mode):
                    os.close(fd)
        raise


def lowest_free_descriptors(count: int) -> list[int]:
    """Return the `count` lowest descriptor numbers not in use (found by opening /dev/null).

    Raises:
        OSError: fewer than `count` descriptors are free (EMFILE).
    """
    opened: list[int] = []
    try:
        for _ in range(count):
            opened.append(os.open(os.devnull, os.O_RDONLY))
    finally:
        for fd in opened:
            os.close(fd)
    return opened
