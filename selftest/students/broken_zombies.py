"""Broken on purpose (one rule: reaping): process mode forks with os.fork and never reaps.

threads_processes.py whose process mode forks by hand and waits for its children only at
Ctrl-C: every client served leaves a zombie until the server exits.
"""

import os
import signal
import sys

import threads_processes


class ForkedChild:
    """A child made with os.fork, joined (waitpid) only when the server stops."""

    def __init__(self, target, args):
        self.target, self.args, self.pid = target, args, None

    def start(self):
        """Fork; the child serves its client and exits."""
        self.pid = os.fork()
        if self.pid == 0:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            self.target(*self.args)
            os._exit(0)

    def is_alive(self):
        """Say the child is alive: nobody looks until the end."""
        return True

    def join(self):
        """Wait for the child."""
        os.waitpid(self.pid, 0)


class ForkOnly:
    """Stands in for the multiprocessing module: Process is ForkedChild."""

    Process = ForkedChild


threads_processes.multiprocessing = ForkOnly

if __name__ == "__main__":
    sys.exit(threads_processes.main())
