"""Broken on purpose (one rule: the lab's CLI): there is no -v/--verbose option.

threads_processes.py whose parser lost -v: `-h` does not list it and `-v` is refused.
"""

import argparse
import sys

import threads_processes


def parse_args():
    """Read the command line: -p, -d, -f and -c, but no -v."""
    parser = argparse.ArgumentParser()
    parser.add_argument("-p", "--port", type=int, default=8085, help="port to bind to")
    parser.add_argument("-d", "--delay", action="store_true", help="add a delay for debugging")
    parser.add_argument("-f", "--folder", default=".", help="folder from where to serve from")
    parser.add_argument("-c", "--concurrency", choices=["thread", "process"], default="thread")
    args = parser.parse_args()
    args.verbose = False
    return args


threads_processes.parse_args = parse_args

if __name__ == "__main__":
    sys.exit(threads_processes.main())
