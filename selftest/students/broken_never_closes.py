"""Broken on purpose (one rule: HTTP/1.0 closes the connection): sockets are never closed.

threads_processes.py whose handler keeps every client socket open after the response (a list
holds them): HTTP/1.0 clients that read to the end of the stream wait forever.
"""

import sys

import threads_processes

kept = []
handle_client = threads_processes.handle_client


class KeptOpen:
    """A socket wrapper whose close() keeps the connection open."""

    def __init__(self, conn):
        self.conn = conn

    def __getattr__(self, name):
        return getattr(self.conn, name)

    def close(self):
        """Keep the socket (and the connection) alive."""
        kept.append(self.conn)


def handle_and_keep(conn, *args):
    """Serve the client, but leave its connection open."""
    handle_client(KeptOpen(conn), *args)


threads_processes.handle_client = handle_and_keep

if __name__ == "__main__":
    sys.exit(threads_processes.main())
