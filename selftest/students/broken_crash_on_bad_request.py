"""Broken on purpose (one rule: malformed requests): a bad request line raises and is not caught.

selectors_loop.py whose parser unpacks the request line without checking it: a thread dies
without answering, and in select mode the whole server dies.
"""

import sys
import urllib.parse

import selectors_loop


def parse_head(text):
    """Return (0, path) for a GET, (405, None) for another method; crash on anything else."""
    method, target, version = text.split("\r\n")[0].split(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError(f"unsupported version {version}")
    if method != "GET":
        return 405, None
    return 0, urllib.parse.unquote(target.split("?")[0])


selectors_loop.parse_head = parse_head

if __name__ == "__main__":
    sys.exit(selectors_loop.main())
