"""Broken on purpose (one rule: a client may hang up): SIGPIPE kills the whole server.

threads_processes.py with the line students paste to silence BrokenPipeError tracebacks:
the default SIGPIPE action is restored, so a client that aborts a download kills the server.
"""

import signal
import sys

import threads_processes

signal.signal(signal.SIGPIPE, signal.SIG_DFL)

if __name__ == "__main__":
    sys.exit(threads_processes.main())
