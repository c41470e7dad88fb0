"""The lab's command line over http.server: the base the sandbox selftest servers change once."""

# Strategy: the sandbox selftests need servers that misbehave towards the machine (fork, write,
# hang), not towards HTTP, so the HTTP part is the standard library's, serving -f FOLDER with a
# thread per client; each selftest server passes its own handler class or start-up hook.

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
from collections.abc import Callable


def parse_args() -> argparse.Namespace:
    """Parse the lab's command line (-p, -f, -c {thread,process}, -d)."""
    parser = argparse.ArgumentParser(description="sandbox selftest server")
    parser.add_argument("-p", "--port", type=int, default=8085, help="port to bind to")
    parser.add_argument("-f", "--folder", default=".", help="folder to serve")
    parser.add_argument("-c", "--concurrency", choices=("thread", "process"), default="thread")
    parser.add_argument("-d", "--delay", action="store_true", help="ignored")
    return parser.parse_args()


def serve(
    handler: type[http.server.SimpleHTTPRequestHandler] = http.server.SimpleHTTPRequestHandler,
    on_listening: Callable[[argparse.Namespace], None] = lambda args: None,
) -> None:
    """Serve the folder on 127.0.0.1:PORT until Ctrl-C, calling `on_listening` once bound."""
    args = parse_args()
    factory = functools.partial(handler, directory=args.folder)
    with http.server.ThreadingHTTPServer(("127.0.0.1", args.port), factory) as server:
        on_listening(args)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
