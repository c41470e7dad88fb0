"""Broken on purpose (one rule: concurrency in thread mode): `thread` serves clients one by one.

threads_processes.py whose thread mode calls the handler in the accept loop (the thread is
created but joined at once): one client at a time.
"""

import sys
import threading
import types

import threads_processes


class JoinedThread(threading.Thread):
    """A thread that its creator waits for as soon as it starts it."""

    def start(self):
        """Start, then wait for the end."""
        super().start()
        self.join()


threads_processes.threading = types.SimpleNamespace(Thread=JoinedThread)

if __name__ == "__main__":
    sys.exit(threads_processes.main())
