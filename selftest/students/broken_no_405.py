"""Broken on purpose (one rule: 405): every method is served like GET.

pool_async.py whose FileServer never checks the method: POST, PUT, DELETE get the file.
"""

import sys

import pool_async


class AnyMethod(pool_async.HttpRequest):
    """A request whose method is always taken for GET."""

    def __init__(self, head):
        super().__init__(head)
        self.method = "GET"


pool_async.HttpRequest = AnyMethod

if __name__ == "__main__":
    sys.exit(pool_async.main())
