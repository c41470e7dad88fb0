"""Broken on purpose (one rule: -d): the delay option is accepted and ignored.

threads_processes.py whose option parsing drops the flag: every response comes at once.
"""

import sys

import threads_processes

parse_args = threads_processes.parse_args


def parse_args_without_delay():
    """Parse the command line, then forget -d."""
    args = parse_args()
    args.delay = False
    return args


threads_processes.parse_args = parse_args_without_delay

if __name__ == "__main__":
    sys.exit(threads_processes.main())
