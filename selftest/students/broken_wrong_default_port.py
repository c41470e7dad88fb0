"""Broken on purpose (one rule: the default port is 8085): without -p it listens on 8080.

threads_processes.py with the port a tutorial used as its default.
"""

import sys

import threads_processes

parse_args = threads_processes.parse_args


def parse_args_8080():
    """Parse the command line; no -p means 8080."""
    if "-p" not in sys.argv and "--port" not in sys.argv:
        sys.argv += ["-p", "8080"]
    return parse_args()


threads_processes.parse_args = parse_args_8080

if __name__ == "__main__":
    sys.exit(threads_processes.main())
