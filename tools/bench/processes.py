"""Process control: start a server in its own session, wait until it serves, stop its group.

Strategy: every server runs in a new session so that SIGINT, then SIGKILL after a grace
period, reaches its whole process tree; `running` guarantees the stop in a `finally`.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from .model import HOST, PAGE, BenchmarkError, Launch, ServerResult

STOP_GRACE_S = 10.0
READY_TIMEOUT_S = 20.0
EXCEPTION_LINE = re.compile(r"^(\w+(?:\.\w+)*(?:Error|Exception|Interrupt|Exit))\b", re.M)


def progress(message: str) -> None:
    """Print a progress line to stderr."""
    print(f"[benchmark {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """Return a TCP port on HOST that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_server(launch: Launch, log_path: Path) -> subprocess.Popen:
    """Start a server in its own session, its output going to `log_path`."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            launch.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **launch.env},
            start_new_session=True,
        )


def signal_group(pgid: int, signum: int) -> None:
    """Send `signum` to a process group that may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def stop_server(process: subprocess.Popen, grace_s: float = STOP_GRACE_S) -> int:
    """SIGINT the server's group, SIGKILL what is left after `grace_s`, reap; return its status."""
    signal_group(process.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace_s)
    signal_group(process.pid, signal.SIGKILL)
    return process.wait()


@contextlib.contextmanager
def running(launch: Launch, log_path: Path, result: ServerResult) -> Iterator[subprocess.Popen]:
    """Run a server for the duration of the block; its exit status goes into `result`."""
    process = start_server(launch, log_path)
    try:
        yield process
    finally:
        result.alive_at_stop = process.poll() is None
        result.exit_code = stop_server(process)
        result.log_tail, result.tracebacks, result.traceback_kinds = read_log(log_path)


def read_log(path: Path, lines: int = 15) -> tuple[str, int, dict[str, int]]:
    """Read a server's output.

    Returns: its last `lines` lines, how many tracebacks it holds, and how often each exception
    ends one ({"BrokenPipeError": 5}).
    """
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "", 0, {}
    kinds = Counter(match.group(1) for match in EXCEPTION_LINE.finditer(text))
    tail = "\n".join(text.splitlines()[-lines:])
    return tail, text.count("Traceback (most recent call last)"), dict(kinds)


def fetch(port: int, path: str, timeout_s: float = 2.0) -> tuple[int, int]:
    """GET `path` from HOST:port; return (status, body length)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, len(response.read())
    finally:
        connection.close()


def wait_until_serving(process: subprocess.Popen, port: int, expected: int) -> None:
    """Wait until the server answers 200 with `expected` bytes for the page.

    Raises BenchmarkError if it exits, answers anything else, or is not up in time.
    """
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkError(f"exited with status {process.returncode} before serving")
        try:
            status, length = fetch(port, f"/{PAGE}")
        except OSError:
            time.sleep(0.1)
            continue
        if (status, length) != (200, expected):
            raise BenchmarkError(f"answered {status} with {length} bytes for /{PAGE}")
        return
    raise BenchmarkError(f"not serving after {READY_TIMEOUT_S:g} s")


def run_tool(argv: Sequence[str], timeout_s: float) -> str:
    """Run a client (wrk, curl) to completion and return its stdout and stderr."""
    done = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        start_new_session=True,
        check=False,
    )
    return done.stdout + done.stderr
