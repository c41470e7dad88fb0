"""Sandbox selftest server: for each request, forks children that escape and keep listening.

Each child starts a new session, ignores SIGINT, SIGTERM and SIGHUP, forks again (the grandchild
is nobody's child: no process tree leads to it) and keeps the server's listening socket open,
with one of its own besides, forever. Only a sweep of every process of the sandbox uid finds them.
"""

import http.server
import os
import signal
import socket
import time

from _lab_server import serve

CHILDREN = 3


class ForkingHandler(http.server.SimpleHTTPRequestHandler):
    """Answers like http.server, after forking CHILDREN escaping listeners."""

    def do_GET(self) -> None:
        """Fork the listeners, then answer the request."""
        for _ in range(CHILDREN):
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    listen_forever()
                os._exit(0)
            os.wait()
        super().do_GET()


def listen_forever() -> None:
    """Ignore the polite signals and hold a listening socket until killed."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    listener = socket.create_server(("127.0.0.1", 0))
    while listener:
        time.sleep(60)


if __name__ == "__main__":
    serve(ForkingHandler)
