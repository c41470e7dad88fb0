"""`python -m http.server`, but forking a process per connection: the peer of our process mode.

Strategy: the standard library's HTTPServer with socketserver's ForkingMixIn and the stock
SimpleHTTPRequestHandler, nothing else changed. Ctrl-C (SIGINT) or SIGTERM stops it.
Usage: python3 forking_http_server.py [--bind ADDR] [--directory DIR] [port]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import signal
import socketserver
import sys


class ForkingHTTPServer(socketserver.ForkingMixIn, http.server.HTTPServer):
    """HTTPServer that serves each connection in a forked child process."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the same options as `python -m http.server` (the subset the benchmark uses)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", "-b", default="127.0.0.1", help="address to bind")
    parser.add_argument("--directory", "-d", default=".", help="folder to serve")
    parser.add_argument("port", type=int, nargs="?", default=8000, help="port (default 8000)")
    return parser.parse_args(argv)


def raise_keyboard_interrupt(signum: int, frame: object) -> None:
    """Turn SIGTERM into the KeyboardInterrupt that SIGINT raises."""
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    """Serve until interrupted; return the exit status."""
    args = parse_args(argv)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=args.directory)
    signal.signal(signal.SIGTERM, raise_keyboard_interrupt)
    with ForkingHTTPServer((args.bind, args.port), handler) as server:
        print(f"Serving HTTP on {args.bind} port {args.port} (forking) ...", file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
