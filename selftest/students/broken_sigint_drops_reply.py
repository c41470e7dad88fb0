"""Broken on purpose (one rule: graceful shutdown): Ctrl-C exits at once, dropping replies.

threads_processes.py with the SIGINT handler a student adds to "quit cleanly": it ends the
process on the spot, so the clients being served get no reply and nothing is joined.
"""

import os
import signal
import sys

import threads_processes


def quit_now(signum, frame):
    """Leave immediately."""
    os._exit(0)


signal.signal(signal.SIGINT, quit_now)

if __name__ == "__main__":
    sys.exit(threads_processes.main())
