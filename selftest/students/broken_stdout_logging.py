"""Broken on purpose (one rule: class norms): a line per request is printed on stdout.

threads_processes.py whose log() prints every request to stdout, -v or not.
"""

import sys

import threads_processes


def log(verbose, message):
    """Print the message on stdout, always."""
    print(message)


threads_processes.log = log

if __name__ == "__main__":
    sys.exit(threads_processes.main())
