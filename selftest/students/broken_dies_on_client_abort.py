"""Broken on purpose (one rule: a client may hang up): SIGPIPE kills the whole server.

threads_processes.py with two lines students paste after httpie closed early on them: the
default SIGPIPE action is restored (no more BrokenPipeError tracebacks) and a failed send is
skipped to "keep going", so the next send to an aborted client kills the whole server.
"""

import os
import signal
import sys

import threads_processes


def send_file(conn, filename):
    """Send a 200 with the file in chunks, skipping the chunks that fail to go out."""
    threads_processes.send_head(conn, 200, os.path.getsize(filename))
    with open(filename, "rb") as file:
        while chunk := file.read(65536):
            try:
                conn.sendall(chunk)
            except ConnectionResetError:
                continue


signal.signal(signal.SIGPIPE, signal.SIG_DFL)
threads_processes.send_file = send_file

if __name__ == "__main__":
    sys.exit(threads_processes.main())
