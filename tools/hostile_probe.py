"""Measure a server under hostile clients, mode by mode, and print the figures as a table.

    python3 tools/hostile_probe.py [--server PATH] [--modes a,b] [--silent 5000] ...

Per mode: a normal client's time while 200 slowloris connections trickle, while 50 slow readers
take a 50 MB file at 1 KB/s, and while 5,000 silent connections are held open; then how long
SIGTERM takes to stop the server with that flood still open; then, in a fresh server run as
`nobody` with RLIMIT_NPROC set to the tasks it already has plus a few, what a burst of slow
downloads gets (503s, refusals) and whether the server keeps serving. Every attack reports the
server's fds, threads and children before it and once settled after it.
"""

# Strategy: the attacks are the suite's own (concurrency_tests/hostile.py) and the server is
# started by the suite's harness, so the probe measures what the recommended checks judge, only
# bigger. Attacks run one after another on one server per mode (so "after" of one is near
# "before" of the next), then the flood ends it with SIGTERM. Loopback only; every wait has a
# deadline; the probe raises its own RLIMIT_NOFILE for the flood (servers inherit it). This is
# a measurement, printed, never a pass/fail test.

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from concurrency_tests.hostile import SilentFlood, Slowloris, SlowReaders, Usage  # noqa: E402
from concurrency_tests.support import (  # noqa: E402
    get_request,
    raise_open_file_limit,
    sample_until,
    settled_sample,
    wait_for,
)
from harness.client import exchange  # noqa: E402
from harness.server import ServerCommand, ServerProcess, free_port, start_server  # noqa: E402

CONCURRENT_MODES = ("thread", "thread-pool", "process", "process-pool", "async", "select")
PAGE, BIG = "page.html", "big.bin"
SETTLE = 20.0
STOP_WAIT = 30.0
NOBODY = 65534
LIMIT_HEADROOM = 4
Attack = SilentFlood | Slowloris | SlowReaders
SEEN: dict[type, Callable] = {
    SilentFlood: lambda flood: f"{flood.opened} of {flood.held} open",
    Slowloris: lambda loris: f"{len(loris.sockets)} trickling, {loris.closed_by_server} closed",
    SlowReaders: lambda readers: (
        f"{len(readers.sockets)} reading, {readers.received // 1024} KiB in all, "
        f"{readers.ended} ended"
    ),
}


@dataclass
class Row:
    """One attack on one mode: a normal client's time during and after it, what the attack saw,
    and the server's usage before and (settled) after."""

    mode: str
    attack: str
    during: str
    after_it: str
    seen: str
    before: Usage | None = None
    after: Usage | None = None

    def cells(self) -> list[str]:
        """The row's table cells (usage as "before → after", and whether it is back)."""
        usage = ["", "", "", ""]
        if self.before is not None and self.after is not None:
            pairs = zip(astuple(self.before), astuple(self.after), strict=True)
            usage = [f"{before} → {after}" for before, after in pairs]
            usage.append("yes" if self.before.covers(self.after) else "**no**")
        return [self.mode, self.attack, self.during, self.after_it, self.seen, *usage]


HEADERS = ("mode", "attack", "normal client during", "after", "the attack saw")
HEADERS += ("fds", "threads", "children", "back to baseline")


def markdown_table(rows: Sequence[Row]) -> str:
    """Render rows as a Markdown table (the format docs/BEHAVIOUR.md quotes)."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="Measure a server under hostile clients in each mode (issue 10's figures)."
    )
    parser.add_argument("--server", type=Path, default=REPO / "http_server.py", help="script")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the server")
    parser.add_argument(
        "--modes", default=",".join(CONCURRENT_MODES), help="comma-separated -c modes"
    )
    parser.add_argument("--silent", type=int, default=5000, help="silent connections held open")
    parser.add_argument("--slowloris", type=int, default=200, help="slowloris connections")
    parser.add_argument("--slow-readers", type=int, default=50, help="slow readers of the file")
    parser.add_argument("--file-mb", type=int, default=50, help="size of the slow readers' file")
    parser.add_argument("--rate", type=int, default=1024, help="each slow reader's bytes/s")
    parser.add_argument("--burst", type=int, default=32, help="clients sent under the task limit")
    parser.add_argument("--hold", type=float, default=3.0, help="s an attack runs before timing")
    parser.add_argument("--client-timeout", type=float, default=15.0, help="normal client's cap")
    parser.add_argument("--no-limit", action="store_true", help="skip the RLIMIT_NPROC attack")
    args = parser.parse_args(argv)
    args.modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    if not args.modes or min(args.silent, args.slowloris, args.slow_readers, args.burst) < 1:
        parser.error("--modes must name a mode and every count must be at least 1")
    return args


def build_folder(file_mb: int) -> Path:
    """Make a world-readable folder with the small page and a sparse file of `file_mb` MB."""
    folder = Path(tempfile.mkdtemp(prefix="hostile-probe-")) / "www"
    folder.mkdir()
    folder.parent.chmod(0o755)
    (folder / PAGE).write_bytes(b"<!DOCTYPE html><html><body>probe</body></html>\n")
    with open(folder / BIG, "wb") as big:
        big.truncate(file_mb * 1024 * 1024)
    for path in (folder, folder / PAGE, folder / BIG):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def normal_client(server: ServerProcess, timeout: float) -> str:
    """Time one GET of the small page: "0.01 s" for a 200, "**503** in 0.01 s" for another
    status, "**no response in 15 s**", or what else went wrong."""
    reply = exchange(server.port, get_request(PAGE), timeout=timeout, close_wait=0.2)
    if reply.outcome == "response" and not reply.error:
        answer = "" if reply.status == 200 else f"**{reply.status}** in "
        return f"{answer}{reply.elapsed:.2f} s"
    if reply.outcome == "timeout":
        return f"**no response in {timeout:g} s**"
    return f"**{reply.outcome}: {reply.error}** ({reply.elapsed:.2f} s)"


def usage_now(server: ServerProcess) -> Usage:
    """Sample the tree once it is steady."""
    return Usage.of(settled_sample(server, Usage.of))


def usage_after(server: ServerProcess, before: Usage) -> Usage:
    """Sample until the tree is back within `before` or SETTLE s pass; return the last sample."""
    return Usage.of(sample_until(server, lambda s: before.covers(Usage.of(s)), SETTLE))


def run_attack(
    server: ServerProcess,
    name: str,
    attack: Callable[[], Attack],
    args: argparse.Namespace,
    ready: Callable[[Attack], bool] = lambda _: True,
) -> Row:
    """Open `attack()`, wait until `ready` (at most --hold s), time a normal client, note what
    the attack saw, close it, time a normal client again, and sample the settled usage."""
    before = usage_now(server)
    opened = attack()
    wait_for(lambda: ready(opened), args.hold)
    during = normal_client(server, args.client_timeout)
    seen = SEEN[type(opened)](opened)
    opened.close()
    after_it = normal_client(server, args.client_timeout)
    return Row(server.mode, name, during, after_it, seen, before, usage_after(server, before))


def sigterm_time(server: ServerProcess, held: int) -> str:
    """Hold `held` silent connections, send SIGTERM, time the exit (SIGKILL after STOP_WAIT s)."""
    flood = SilentFlood(server.host, server.port, held).open()
    try:
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        status = server.wait_exit(STOP_WAIT)
        took = time.monotonic() - started
    finally:
        flood.close()
    if status is None:
        server.stop(signal.SIGKILL)
        return f"**still running {STOP_WAIT:g} s after SIGTERM** ({flood.describe()})"
    return f"exit {status} {took:.2f} s after SIGTERM, {flood.opened} silent open"


def probe_mode(command: ServerCommand, mode: str, folder: Path, args: argparse.Namespace) -> list:
    """Run slowloris, slow readers and the silent flood (ending with SIGTERM) on one server."""
    server = start_server(command, mode, folder, folder.parent / "logs" / mode)
    host, port = server.host, server.port
    try:
        rows = [
            run_attack(
                server, "slowloris", lambda: Slowloris(host, port, args.slowloris).open(), args
            ),
            run_attack(
                server,
                "slow readers",
                lambda: SlowReaders(host, port, args.slow_readers, BIG, args.rate).open(),
                args,
                ready=lambda readers: readers.received > 0,
            ),
            run_attack(
                server, "silent flood", lambda: SilentFlood(host, port, args.silent).open(), args
            ),
        ]
        rows.append(Row(mode, "SIGTERM, flood open", "", "", sigterm_time(server, args.silent)))
        return rows
    finally:
        server.stop(signal.SIGKILL, group=True, timeout=5.0)


def start_as_nobody(
    command: ServerCommand, mode: str, folder: Path, nproc: int | None = None
) -> ServerProcess:
    """Start the server as `nobody` (RLIMIT_NPROC binds no root process), with RLIMIT_NPROC set
    to `nproc` if given (`prlimit`); return once it accepts connections (or exited)."""
    port = free_port()
    logs = folder.parent / "logs" / f"nobody-{mode}-{port}"
    logs.mkdir(parents=True, exist_ok=True)
    limit = ["prlimit", f"--nproc={nproc}:{nproc}", "--"] if nproc is not None else []
    drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    argv = [*limit, *drop, *command.argv(port, folder, mode, False, ())]
    with open(logs / "stdout.log", "wb") as out, open(logs / "stderr.log", "wb") as err:
        popen = subprocess.Popen(
            argv,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=folder.parent,
            start_new_session=True,
        )
    wait_for(lambda: popen.poll() is not None or _accepts(port), 20.0)
    return ServerProcess(popen, port, folder, mode, logs)


def start_limited(command: ServerCommand, mode: str, folder: Path) -> tuple[ServerProcess, str]:
    """Count the tasks the server has at rest (a first, unlimited run as nobody), then start it
    again with RLIMIT_NPROC at nobody's other tasks plus those plus LIMIT_HEADROOM.

    Returns: the limited server and a note of the limit set.
    """
    trial = start_as_nobody(command, mode, folder)
    try:
        tasks = usage_now(trial).threads
    finally:
        trial.stop(signal.SIGKILL, group=True, timeout=5.0)
    cap = _nobody_tasks() + tasks + LIMIT_HEADROOM
    return start_as_nobody(command, mode, folder, cap), f"RLIMIT_NPROC {cap} ({tasks} at rest)"


def _accepts(port: int) -> bool:
    """True when a connection to 127.0.0.1:`port` succeeds (it is closed at once)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except OSError:
        return False
    return True


def _nobody_tasks() -> int:
    """Count the threads of every process running as `nobody`."""
    total = 0
    for process in psutil.process_iter(["uids", "num_threads"]):
        if process.info["uids"] and process.info["uids"].real == NOBODY:
            total += process.info["num_threads"] or 0
    return total


def probe_limit(command: ServerCommand, mode: str, folder: Path, args: argparse.Namespace) -> Row:
    """Under a task limit, hold a burst of slow downloads; report their statuses, a normal
    client during and after, and whether the server is still running."""
    server, limit = start_limited(command, mode, folder)
    try:
        before = usage_now(server)
        burst = SlowReaders(server.host, server.port, args.burst, BIG, args.rate).open()
        wait_for(lambda: sum(burst.statuses.values()) >= args.burst, args.hold)
        during = normal_client(server, args.client_timeout)
        answered = ", ".join(f"{key}: {n}" for key, n in sorted(burst.statuses.items()))
        waiting = args.burst - sum(burst.statuses.values())
        burst.close()
        seen = f"{limit}; {args.burst} slow downloads got {answered or 'nothing'}"
        seen += f", {waiting} waiting" if waiting else ""
        if server.wait_exit(1.0) is not None:
            return Row(mode, "task limit", during, "**server exited**", seen)
        after_it = normal_client(server, args.client_timeout)
        return Row(mode, "task limit", during, after_it, seen, before, usage_after(server, before))
    finally:
        server.stop(signal.SIGKILL, group=True, timeout=5.0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every attack in every mode asked for and print the table."""
    args = parse_args(argv)
    os.environ.setdefault("HTTP_SANDBOX", "off")  # measure the server as it runs, not confined
    raise_open_file_limit(2 * (args.silent + args.slowloris + args.slow_readers) + 1024)
    command = ServerCommand(args.server, args.python)
    folder = build_folder(args.file_mb)
    rows: list[Row] = []
    try:
        for mode in args.modes:
            print(f"probing {mode} ...", file=sys.stderr, flush=True)
            rows += probe_mode(command, mode, folder, args)
            if not args.no_limit:
                rows.append(probe_limit(command, mode, folder, args))
    finally:
        shutil.rmtree(folder.parent, ignore_errors=True)
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
