"""The command line: options, start-up checks, the ready line, and the run of the chosen mode.

Strategy: STRATEGIES maps each `-c` name to where its class lives and also feeds argparse
`choices`, so adding a mode is one line; only the chosen mode's module is imported. Start-up
problems (bad option, missing folder, port in use) end with one line on stderr and a non-zero
status, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import socket
import sys
from typing import NoReturn

from httpd.connection import HEAD_TIMEOUT, Settings
from httpd.lifecycle import ForcedExit, ShutdownSignals
from httpd.limits import (
    DEFAULT_PROCESSES,
    DEFAULT_THREADS,
    connection_bound,
    raise_descriptor_limit,
)

PROG = "http_server.py"
DELAY_SECONDS = 5.0
STRATEGIES = {
    "thread": "httpd.strategies:ThreadStrategy",
    "thread-pool": "httpd.pools:ThreadPoolStrategy",
    "process": "httpd.strategies:ProcessStrategy",
    "process-pool": "httpd.pools:ProcessPoolStrategy",
    "async": "httpd.aio:AsyncStrategy",
    "select": "httpd.selectloop:SelectStrategy",
    "single": "httpd.strategies:SingleStrategy",
}
LOG = logging.getLogger("http_server")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are a single line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        """Print `message` as one line and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see -h)\n")


def number_in(low: float, high: float, kind: type = int) -> callable:
    """Return an argparse type that accepts a `kind` number between `low` and `high`."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not between {low} and {high}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """Return the parser for the options the lab prescribes, plus a few extras."""
    parser = OneLineParser(
        prog=PROG,
        description="A concurrent static-file HTTP/1.0 server.",
        formatter_class=lambda prog: argparse.HelpFormatter(prog, width=200),
    )
    parser.add_argument(
        "-p",
        "--port",
        type=number_in(0, 65535),
        default=8085,
        help="port to bind to (default 8085; 0 picks a free one)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="turn on debugging output")
    parser.add_argument(
        "-d",
        "--delay",
        action="store_true",
        help=f"wait {DELAY_SECONDS:g} s before each response, for testing",
    )
    parser.add_argument("-f", "--folder", default=".", help="folder to serve from (default .)")
    parser.add_argument(
        "-c",
        "--concurrency",
        choices=list(STRATEGIES),
        default="thread",
        help="concurrency methodology (default thread)",
    )
    parser.add_argument(
        "--workers",
        type=number_in(1, 1024),
        metavar="N",
        help=f"pool size (default {DEFAULT_THREADS} threads for thread-pool, "
        f"{DEFAULT_PROCESSES} processes for process-pool)",
    )
    parser.add_argument(
        "--bind",
        default="",
        metavar="ADDR",
        help="address to listen on (default: all IPv4 interfaces; ::1 or :: listens on IPv6)",
    )
    parser.add_argument(
        "--dotfiles",
        action="store_true",
        help="also serve hidden paths, whose names start with a dot (default: 404, so that a "
        "checkout's .git or an .env is not served)",
    )
    parser.add_argument(
        "--timeout",
        type=number_in(0.1, 3600, float),
        default=10.0,
        metavar="S",
        help="close connections idle for S seconds (default 10)",
    )
    parser.add_argument(
        "--head-timeout",
        type=number_in(0.1, 3600, float),
        default=HEAD_TIMEOUT,
        metavar="S",
        help=f"answer 408 to a request head not complete S seconds after connecting "
        f"(default {HEAD_TIMEOUT:g})",
    )
    parser.add_argument(
        "--max-connections",
        type=number_in(1, 10**7),
        metavar="N",
        help="close new connections at once while N are open (default: what the open-file "
        "limit allows, raised to its hard limit at start-up)",
    )
    return parser


def load_strategy(name: str) -> type:
    """Import and return the class of mode `name`, as STRATEGIES places it.

    Importing only the chosen mode keeps the server small: asyncio alone would add a quarter to
    the memory every `process` child is forked from, and a quarter to the cost of each fork.
    `main` imports it before the port listens, so a pool starts the moment the port is up.
    """
    module, _, attribute = STRATEGIES[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def fail(message: str) -> NoReturn:
    """Print one error line on stderr and exit with status 1."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(1)


def listen(host: str, port: int) -> socket.socket:
    """Return a listening TCP socket with SO_REUSEADDR, or exit with one line on failure.

    An address with a colon (`::1`, `::`, also written `[::1]`) gets an IPv6 socket; anything
    else (a dotted address, a name, "" for every interface) an IPv4 one.
    """
    host = host.removeprefix("[").removesuffix("]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
        listener.listen(1024)
    except OSError as error:
        listener.close()
        fail(f"cannot listen on {bracket(host or '0.0.0.0')}:{port}: {error.strerror or error}")
    return listener


def bracket(address: str) -> str:
    """Write an IPv6 address as URLs do ("[::1]"); return any other address as it is."""
    return f"[{address}]" if ":" in address else address


def ready_line(root: str, listener: socket.socket, mode: str) -> str:
    """The start-up line: a URL a browser opens, and the address actually bound.

    Bound to every interface (0.0.0.0 or ::), the URL names the loopback address, since
    browsers on macOS and Windows do not open http://0.0.0.0/.
    """
    host, port = listener.getsockname()[:2]
    local = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    bound = f"{bracket(host)}:{port}" + (", all interfaces" if host in ("0.0.0.0", "::") else "")
    return f"{PROG}: serving {root} at http://{bracket(local)}:{port}/ (on {bound}; mode {mode})"


def main(argv: list[str] | None = None) -> int:
    """Run the server; return the exit status (0 after a graceful shutdown)."""
    args = build_parser().parse_args(argv)
    # Without -v only warnings show (shutting down, stopped): they read like the ready line.
    # With -v every line also says when, and which process and thread wrote it.
    verbose_format = "%(asctime)s [pid %(process)d %(threadName)s] %(message)s"
    logging.basicConfig(
        format=verbose_format if args.verbose else f"{PROG}: %(message)s", stream=sys.stderr
    )
    LOG.setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    root = os.path.realpath(args.folder)
    if not os.path.isdir(root):
        fail(f"folder {args.folder!r} does not exist or is not a directory")
    try:
        bound = connection_bound(
            args.concurrency, args.workers, args.max_connections, raise_descriptor_limit()
        )
    except ValueError as error:
        fail(str(error))
    strategy = load_strategy(args.concurrency)()
    signals = ShutdownSignals()
    listener = listen(args.bind, args.port)
    delay = DELAY_SECONDS if args.delay else 0.0
    settings = Settings(
        root, delay, args.timeout, args.workers, args.dotfiles, args.head_timeout, bound
    )
    print(ready_line(root, listener, args.concurrency), file=sys.stderr, flush=True)
    try:
        strategy.run(listener, settings, signals)
    except ForcedExit:
        strategy.abort()
        print(f"{PROG}: forced to quit", file=sys.stderr, flush=True)
        os._exit(130)
    LOG.warning("stopped")
    return 0
