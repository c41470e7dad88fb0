"""Broken on purpose: the whole server exits on a malformed request line."""

import os
import sys

from _base import Handler, main


class CrashingHandler(Handler):
    """Dies like a naive single-threaded server whose parser raised."""

    def bad_request_line(self) -> None:
        """Exit the process (the bug)."""
        print("ValueError: not enough values to unpack (expected 3, got 1)", file=sys.stderr)
        os._exit(1)


if __name__ == "__main__":
    main(CrashingHandler)
