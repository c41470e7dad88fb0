#!/usr/bin/env python3
"""Benchmark http_server.py's concurrency modes against the servers people would otherwise use.

Strategy: build a throw-away folder (page.html, a large file), then start each of our modes and
each peer in turn on a free loopback port in its own session; warm it up, drive it with wrk
(wrk2's open-loop -R10000 when installed, else closed-loop wrk) several times and keep the best
run, then download the large file with curl while sampling the server's RSS. Everything started
is stopped in a `finally` (SIGINT, SIGKILL of the group after a grace period, reap). The results
become a Markdown report and a PNG chart.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import http.client
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
PEERS_DIR = TOOLS / "peers"
HOST = "127.0.0.1"
PAGE = "page.html"
PAGE_SIZE = 1260
LARGE_FILE = "large.bin"
COURSE_THREADS = 10
COURSE_CONNECTIONS = 10
COURSE_RATE = 10_000
STOP_GRACE_S = 10.0
READY_TIMEOUT_S = 20.0
RSS_INTERVAL_S = 0.05
MB = 1_000_000
MAX_P99_MS = 20.0
LARGE_FILE_PEER = "nginx"
LARGE_FILE_RATIO = 0.8
MAX_RSS_GROWTH_MB = 30.0
CURL_WRITE_OUT = "%{http_code} %{size_download} %{speed_download}"

MODE_TITLES = {
    "single": "Single Thread",
    "thread": "Threading",
    "thread-pool": "Thread Pool",
    "process": "Processes",
    "process-pool": "Process Pool",
    "async": "Async",
    "select": "Select",
}
INSTALL_HINT = "pip install -c constraints.txt -e '.[bench]'"
PEER_NAMES = ("http.server", "forking", "gunicorn-sync", "gunicorn-gthread", "uvicorn", "nginx")


@dataclass(frozen=True)
class Target:
    """A throughput goal: `mode` must serve at least `ratio` times the req/s of `peer`."""

    mode: str
    peer: str
    ratio: float


SPEED_TARGETS = (
    Target("thread", "http.server", 2.0),
    Target("process", "forking", 3.0),
    Target("thread-pool", "gunicorn-gthread", 1.5),
    Target("process-pool", "gunicorn-sync", 1.2),
    Target("async", "uvicorn", 1.3),
    Target("async", "nginx", 0.6),
    Target("select", "uvicorn", 1.3),
    Target("select", "nginx", 0.6),
)


# ----------------------------------------------------------------------------------------------
# Data: what we start, what we measure.
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Launch:
    """A command line to start a server, with the extra environment it needs."""

    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    def display(self, tmp: Path | None = None) -> str:
        """Return the command as a shell line, with the temp dir shown as $BENCH_TMP."""
        words = [f"{key}={shlex.quote(value)}" for key, value in self.env.items()]
        line = " ".join([*words, shlex.join(self.argv)]).replace(f"{REPO}/", "")
        return line.replace(str(tmp), "$BENCH_TMP") if tmp else line


@dataclass(frozen=True)
class ServerSpec:
    """One server to measure: a mode of ours or a peer, and how to start it on a port."""

    name: str
    title: str
    ours: bool
    launch: Callable[[int], Launch]


@dataclass(frozen=True)
class LoadGenerator:
    """The wrk binary in use; `open_loop` is true when it accepts wrk2's `-R` rate option."""

    exe: str
    version: str
    open_loop: bool

    def command(self, url: str, duration_s: int, *, measure: bool = True) -> list[str]:
        """Return the course's command line (`-t10 -c10`, plus `-R10000` when open loop)."""
        argv = [self.exe, f"-t{COURSE_THREADS}", f"-c{COURSE_CONNECTIONS}", f"-d{duration_s}s"]
        if measure and self.open_loop:
            argv.append(f"-R{COURSE_RATE}")
        if measure:
            argv.append("--latency")
        return [*argv, url]


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run reported; latencies in milliseconds."""

    requests_per_sec: float
    requests: int
    latency_avg_ms: float | None
    latency_max_ms: float | None
    percentiles_ms: dict[float, float]
    socket_errors: dict[str, int]
    non_2xx: int
    summary: str

    @property
    def p50_ms(self) -> float | None:
        return self.percentiles_ms.get(50.0)

    @property
    def p99_ms(self) -> float | None:
        return self.percentiles_ms.get(99.0)

    @property
    def socket_error_total(self) -> int:
        return sum(self.socket_errors.values())


@dataclass(frozen=True)
class LargeFileResult:
    """One large download: HTTP status, bytes received, speed and the server's RSS."""

    status: int
    received: int
    expected: int
    bytes_per_sec: float
    baseline_rss: int
    peak_rss: int

    @property
    def complete(self) -> bool:
        return self.status == 200 and self.received == self.expected

    @property
    def mb_per_sec(self) -> float:
        return self.bytes_per_sec / MB

    @property
    def rss_growth_mb(self) -> float:
        return max(0, self.peak_rss - self.baseline_rss) / MB


@dataclass
class ServerResult:
    """Everything measured for one server, including what went wrong."""

    spec: ServerSpec
    command: str = ""
    runs: list[WrkResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    large: LargeFileResult | None = None
    exit_code: int | None = None
    log_tail: str = ""
    tracebacks: int = 0
    alive_at_stop: bool = False
    rss_start: int | None = None
    rss_after_load: int | None = None

    @property
    def best(self) -> WrkResult | None:
        return best_run(self.runs)


@dataclass(frozen=True)
class Check:
    """One line of the targets table; `met` is None when it could not be evaluated."""

    mode: str
    what: str
    measured: str
    target: str
    met: bool | None


@dataclass(frozen=True)
class Settings:
    """How long and how often to measure."""

    quick: bool
    duration_s: int
    runs: int
    warmup_s: int
    large_file_size: int
    workers: int


@dataclass
class Report:
    """All the material benchmark.md is rendered from."""

    settings: Settings
    loadgen: LoadGenerator
    machine: list[tuple[str, str]]
    results: list[ServerResult]
    notes: list[str]
    command_line: str
    elapsed_s: float = 0.0
    chart: str | None = None
    tmp_shown: str = ""


class BenchmarkError(Exception):
    """A problem that stops the benchmark (or one server's measurement) with a message."""


# ----------------------------------------------------------------------------------------------
# Parsing wrk and curl output (pure functions, tested without servers).
# ----------------------------------------------------------------------------------------------

TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
TIME = r"([\d.]+)(us|ms|s|m|h)"
PERCENTILE_LINE = re.compile(rf"^\s*(\d+(?:\.\d+)?)%\s+{TIME}\s*$", re.M)
LATENCY_LINE = re.compile(rf"^\s*Latency\s+{TIME}\s+{TIME}\s+{TIME}", re.M)
SOCKET_ERRORS_LINE = re.compile(
    r"Socket errors:\s*connect (\d+), read (\d+), write (\d+), timeout (\d+)"
)
NON_2XX_LINE = re.compile(r"Non-2xx or 3xx responses:\s*(\d+)")
REQUESTS_LINE = re.compile(r"^\s*(\d+) requests in ", re.M)
RPS_LINE = re.compile(r"^Requests/sec:\s*([\d.]+)", re.M)
SUMMARY_LINE = re.compile(
    r"^\s*(Thread Stats|Latency|Req/Sec|Latency Distribution|\d+ requests in|Socket errors"
    r"|Non-2xx|Requests/sec|Transfer/sec)"
)


def to_ms(value: str, unit: str) -> float:
    """Convert a wrk time ("1.23", "ms") to milliseconds."""
    return float(value) * TIME_UNITS_MS[unit]


def parse_wrk_output(text: str) -> WrkResult:
    """Parse wrk's or wrk2's report (with `--latency`) into a WrkResult.

    Raises BenchmarkError when the report has no "Requests/sec" line (wrk failed).
    """
    rps = RPS_LINE.search(text)
    if rps is None:
        raise BenchmarkError(f"no 'Requests/sec' in wrk output: {first_line(text)!r}")
    latency = LATENCY_LINE.search(text)
    requests = REQUESTS_LINE.search(text)
    errors = SOCKET_ERRORS_LINE.search(text)
    non_2xx = NON_2XX_LINE.search(text)
    return WrkResult(
        requests_per_sec=float(rps.group(1)),
        requests=int(requests.group(1)) if requests else 0,
        latency_avg_ms=to_ms(*latency.group(1, 2)) if latency else None,
        latency_max_ms=to_ms(*latency.group(5, 6)) if latency else None,
        percentiles_ms=parse_percentiles(text),
        socket_errors=socket_error_counts(errors.groups()) if errors else {},
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        summary=summary_lines(text),
    )


def socket_error_counts(counts: Sequence[str]) -> dict[str, int]:
    """Name the four numbers of wrk's "Socket errors" line."""
    return dict(zip(("connect", "read", "write", "timeout"), map(int, counts), strict=True))


def parse_percentiles(text: str) -> dict[float, float]:
    """Return {percentile: milliseconds} from wrk's or wrk2's latency distribution."""
    return {
        float(m.group(1)): to_ms(m.group(2), m.group(3)) for m in PERCENTILE_LINE.finditer(text)
    }


def summary_lines(text: str) -> str:
    """Keep the lines of a wrk report that example-benchmark.md shows, plus percentiles and errors.

    wrk2's detailed percentile spectrum (hundreds of lines) is left out; its headline
    percentiles up to 99.9 % are kept.
    """
    kept = []
    for line in text.splitlines():
        percentile = PERCENTILE_LINE.match(line)
        if (percentile and float(percentile.group(1)) <= 99.9) or SUMMARY_LINE.match(line):
            kept.append(line.rstrip())
    return "\n".join(kept)


def first_line(text: str) -> str:
    """Return the first non-blank line of `text`, or an empty string."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def best_run(runs: Sequence[WrkResult]) -> WrkResult | None:
    """Return the best run: the highest req/s, ties broken by the lower p99."""
    if not runs:
        return None
    return max(runs, key=lambda run: (run.requests_per_sec, -(run.p99_ms or 0.0)))


def accepts_rate(usage: str) -> bool:
    """Tell whether a wrk usage text offers wrk2's `-R, --rate` option."""
    return re.search(r"^\s*-R,|--rate\b", usage, re.M) is not None


def parse_curl_output(text: str) -> tuple[int, int, float]:
    """Parse `-w '%{http_code} %{size_download} %{speed_download}'` into numbers."""
    status, size, speed = text.split()[-3:]
    return int(status), int(float(size)), float(speed)


def rss_growth(samples: Sequence[tuple[float, int]], start: float) -> tuple[int, int]:
    """Split timed RSS samples at `start`: return (median before it, peak from it on)."""
    before = [rss for when, rss in samples if when < start]
    after = [rss for when, rss in samples if when >= start]
    baseline = int(statistics.median(before)) if before else (after[0] if after else 0)
    return baseline, max(after, default=baseline)


def parse_size(text: str) -> int:
    """Parse a size like "1G", "256M", "64KiB" or "1048576" into bytes (binary units)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*", text, re.I)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (try 1G, 256M, 0)")
    power = " KMG".index(match.group(2).upper() or " ")
    return int(float(match.group(1)) * 1024**power)


def format_size(size: int) -> str:
    """Format a byte count with a binary unit ("1 GiB", "256 MiB", "1260 B")."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size} B"


def parse_modes(help_text: str) -> list[str]:
    """Return the modes that `http_server.py -h` offers in `-c {a,b,...}`."""
    match = re.search(r"-c\s*\{([^}]*)\}", help_text)
    if match is None:
        raise BenchmarkError("no '-c {mode,...}' choices in the server's -h output")
    return [mode.strip() for mode in match.group(1).split(",") if mode.strip()]


def parse_workers_default(help_text: str, mode: str = "process-pool") -> int | None:
    """Return the `--workers` default that `-h` shows for `mode`, if it shows one.

    Understands a per-mode default ("16 threads for thread-pool, 4 processes for process-pool",
    "process-pool: 4") and a single one ("default: 4") when no other pool is mentioned.
    """
    option = r"^[ \t]+(?:-\w+(?:\s\S+)?,\s)?--workers\b.*?(?=\n[ \t]*-|\Z)"
    match = re.search(option, help_text, re.S | re.M)
    if match is None:
        return None
    paragraph = " ".join(match.group(0).split())
    name = re.escape(mode)
    per_mode = re.search(rf"(\d+)\s+(?:\w+\s+){{0,2}}for\s+{name}\b", paragraph) or re.search(
        rf"{name}\W{{0,3}}(\d+)", paragraph
    )
    if per_mode:
        return int(per_mode.group(1))
    defaults = set(re.findall(r"default[:=]?\s*(\d+)", paragraph, re.I))
    if len(defaults) == 1 and not re.search(r"\w+-pool", paragraph):
        return int(defaults.pop())
    return None


# ----------------------------------------------------------------------------------------------
# Targets and ratios.
# ----------------------------------------------------------------------------------------------


def ratio(value: float | None, reference: float | None) -> float | None:
    """Return value / reference, or None when either is missing or the reference is zero."""
    if value is None or not reference:
        return None
    return value / reference


def natural_peer(mode: str) -> str | None:
    """Return the peer a mode is first compared with (`thread` -> `http.server`)."""
    return next((target.peer for target in SPEED_TARGETS if target.mode == mode), None)


def requests_per_sec(results: dict[str, ServerResult], name: str) -> float | None:
    """Return the best req/s measured for server `name`, if any."""
    result = results.get(name)
    best = result.best if result else None
    return best.requests_per_sec if best else None


def speed_checks(mode: str, results: dict[str, ServerResult]) -> list[Check]:
    """Compare a mode's req/s with each peer that SPEED_TARGETS names for it."""
    checks = []
    for target in (t for t in SPEED_TARGETS if t.mode == mode):
        value = ratio(requests_per_sec(results, mode), requests_per_sec(results, target.peer))
        measured = f"{value:.2f}×" if value is not None else "not measured"
        met = value >= target.ratio if value is not None else None
        checks.append(Check(mode, f"req/s vs {target.peer}", measured, f"≥ {target.ratio}×", met))
    return checks


def exit_text(result: ServerResult) -> str:
    """The server's exit status, saying whether it was still running when asked to stop."""
    if result.alive_at_stop or result.exit_code is None:
        return str(result.exit_code)
    return f"{result.exit_code} (had died before SIGINT)"


def health_checks(result: ServerResult) -> list[Check]:
    """Zero socket errors, zero non-2xx, p99 under MAX_P99_MS, and a clean exit on SIGINT."""
    mode, best = result.spec.name, result.best
    if best is None:
        return [Check(mode, "load test", "; ".join(result.failures) or "not run", "runs", False)]
    p99 = best.p99_ms
    return [
        Check(
            mode, "socket errors", str(best.socket_error_total), "0", best.socket_error_total == 0
        ),
        Check(mode, "non-2xx responses", str(best.non_2xx), "0", best.non_2xx == 0),
        Check(
            mode,
            "p99 latency",
            f"{p99:.2f} ms" if p99 is not None else "n/a",
            f"< {MAX_P99_MS:g} ms",
            p99 < MAX_P99_MS if p99 is not None else None,
        ),
        Check(mode, "exit status after SIGINT", exit_text(result), "0", result.exit_code == 0),
    ]


def large_file_checks(result: ServerResult, reference: ServerResult | None) -> list[Check]:
    """Large-file speed against the reference peer, and RSS growth while serving it."""
    mode, large = result.spec.name, result.large
    if large is None:
        return []
    if not large.complete:
        got = f"HTTP {large.status}, {large.received} of {large.expected} bytes"
        return [Check(mode, "large file download", got, "complete", False)]
    peer = reference.large if reference else None
    value = ratio(large.mb_per_sec, peer.mb_per_sec if peer and peer.complete else None)
    return [
        Check(
            mode,
            f"large file MB/s vs {LARGE_FILE_PEER}",
            f"{value:.2f}×" if value is not None else "not measured",
            f"≥ {LARGE_FILE_RATIO}×",
            value >= LARGE_FILE_RATIO if value is not None else None,
        ),
        Check(
            mode,
            "RSS growth serving it",
            f"{large.rss_growth_mb:.1f} MB",
            f"< {MAX_RSS_GROWTH_MB:g} MB",
            large.rss_growth_mb < MAX_RSS_GROWTH_MB,
        ),
    ]


def evaluate_checks(results: Sequence[ServerResult]) -> list[Check]:
    """Return every target check for every one of our modes that was measured."""
    by_name = {result.spec.name: result for result in results}
    checks = []
    for result in (r for r in results if r.spec.ours):
        checks += speed_checks(result.spec.name, by_name)
        checks += health_checks(result)
        checks += large_file_checks(result, by_name.get(LARGE_FILE_PEER))
    return checks


# ----------------------------------------------------------------------------------------------
# Markdown and chart.
# ----------------------------------------------------------------------------------------------


def fmt_ms(value: float | None) -> str:
    """Format milliseconds for a table cell."""
    return "–" if value is None else f"{value:.2f} ms"


def fmt_errors(errors: dict[str, int]) -> str:
    """Format wrk's socket errors: the total, with the non-zero kinds."""
    total = sum(errors.values())
    kinds = ", ".join(f"{kind} {count}" for kind, count in errors.items() if count)
    return f"{total} ({kinds})" if total else "0"


def fmt_rss_change(before: int | None, after: int | None) -> str:
    """Format an RSS change in MB ("25.7 → 309.5 MB")."""
    if before is None or after is None:
        return "–"
    return f"{before / MB:.1f} → {after / MB:.1f} MB"


def fmt_met(met: bool | None) -> str:
    """Format a check's outcome."""
    return {True: "met", False: "**MISSED**", None: "n/a"}[met]


def ratio_cell(result: ServerResult, by_name: dict[str, ServerResult]) -> str:
    """The ratio column: a mode's req/s over its natural peer's."""
    peer = natural_peer(result.spec.name) if result.spec.ours else None
    value = ratio(requests_per_sec(by_name, result.spec.name), requests_per_sec(by_name, peer))
    return f"{value:.2f}× {peer}" if peer and value is not None else "–"


def results_row(result: ServerResult, by_name: dict[str, ServerResult]) -> str:
    """One row of the results table."""
    best = result.best
    label = f"**{result.spec.name}**" if result.spec.ours else result.spec.title
    if best is None:
        cells = [label, f"failed: {'; '.join(result.failures) or 'not run'}", *[""] * 8]
        return "| " + " | ".join(cells) + " |"
    cells = [
        label,
        f"{best.requests_per_sec:,.0f}",
        fmt_ms(best.p50_ms),
        fmt_ms(best.p99_ms),
        fmt_ms(best.latency_max_ms),
        fmt_errors(best.socket_errors),
        str(best.non_2xx),
        f"{len(result.runs)}",
        ratio_cell(result, by_name),
        fmt_rss_change(result.rss_start, result.rss_after_load),
    ]
    return "| " + " | ".join(cells) + " |"


def render_results_table(results: Sequence[ServerResult]) -> list[str]:
    """The main table: req/s and latency per server (best run)."""
    by_name = {result.spec.name: result for result in results}
    header = [
        "| server | req/s | p50 | p99 | max | socket errors | non-2xx | runs | ratio vs peer "
        "| RSS start → after load |",
        "|---|--:|--:|--:|--:|--:|--:|--:|---|--:|",
    ]
    return header + [results_row(result, by_name) for result in results]


def render_checks(checks: Sequence[Check]) -> list[str]:
    """The targets table, with a count of targets met."""
    if not checks:
        return ["No mode of ours was measured, so no target was evaluated."]
    met = sum(check.met is True for check in checks)
    lines = [
        f"{met} of {len(checks)} checks met.",
        "",
        "| mode | check | measured | target | result |",
        "|---|---|--:|--:|---|",
    ]
    lines += [
        f"| {c.mode} | {c.what} | {c.measured} | {c.target} | {fmt_met(c.met)} |" for c in checks
    ]
    return lines


def large_row(result: ServerResult) -> str | None:
    """One row of the large-file table, or None when the server did not run it."""
    large = result.large
    if large is None:
        return None
    label = f"**{result.spec.name}**" if result.spec.ours else result.spec.title
    status = "ok" if large.complete else f"HTTP {large.status}, {large.received} bytes"
    return (
        f"| {label} | {large.mb_per_sec:,.0f} | {large.baseline_rss / MB:.1f} MB "
        f"| {large.peak_rss / MB:.1f} MB | {large.rss_growth_mb:.1f} MB | {status} |"
    )


def render_large_table(results: Sequence[ServerResult]) -> list[str]:
    """The large-file table: MB/s and the server's RSS around the download."""
    rows = [row for row in map(large_row, results) if row]
    if not rows:
        return ["Not measured (`--large-file-size 0`, no curl, or no server got that far)."]
    header = [
        "| server | MB/s | RSS before | peak RSS | growth | download |",
        "|---|--:|--:|--:|--:|---|",
    ]
    return header + rows


def render_raw_sections(results: Sequence[ServerResult]) -> list[str]:
    """wrk's own summary of each server's best run, in the layout of example-benchmark.md."""
    lines = []
    for result in results:
        best = result.best
        if best is not None:
            lines += [f"## {result.spec.title}", "", "```text", best.summary, "```", ""]
    return lines


def render_method(report: Report) -> list[str]:
    """How the load was generated, and what that means for reading the numbers."""
    gen, s = report.loadgen, report.settings
    example_url = f"http://{HOST}:PORT/{PAGE}"
    lines = [
        f"- Load: `{shlex.join(gen.command(example_url, s.duration_s))}`, {s.runs} run(s) per "
        f"server after a {s.warmup_s} s warm-up "
        f"(`{shlex.join(gen.command(example_url, s.warmup_s, measure=False))}`, discarded); "
        "the best run (highest req/s) is reported"
        + ("." if s.runs >= 3 else " (the course asks for 3 or more runs: this is a quick look)."),
    ]
    if gen.open_loop:
        lines.append(
            f"- Open loop (wrk2 `-R{COURSE_RATE}`), exactly the course's configuration: a server "
            f"that keeps up shows about {COURSE_RATE:,} req/s, and latencies include the "
            "queueing a slow server causes. Throughput ratios are therefore capped near 1 for "
            "servers that keep up; the targets were set for closed-loop runs."
        )
    else:
        lines.append(
            "- **Closed loop.** wrk2 is not installed and the `wrk` on PATH does not accept `-R`, "
            "so this run uses plain wrk with the course's `-t10 -c10` and no rate: each "
            "connection sends its next request as soon as the previous response arrives. Req/s "
            "is each server's throughput with 10 concurrent clients (not a 10,000 req/s "
            "schedule), and latencies are not corrected for coordinated omission, so they are "
            "not comparable with wrk2 numbers."
        )
    lines += [
        f"- `-t{COURSE_THREADS}` is kept as the course fixes it, although this machine has "
        f"{os.cpu_count()} logical cores: wrk's threads compete with the server for the same "
        "cores, and every server faces the same competition.",
        "- Every server closes the connection after each response, as the lab's HTTP/1.0 server "
        "does, so every request pays a TCP connect: nginx has `keepalive_timeout 0`, gunicorn "
        "`--keep-alive 0`, the ASGI app sends `Connection: close`, and http.server speaks "
        "HTTP/1.0.",
        f"- Served folder: a fresh temp dir (`$BENCH_TMP` below) holding `{PAGE}` "
        f"({PAGE_SIZE} bytes, like the course's).",
    ]
    return lines + render_large_method(report)


def render_large_method(report: Report) -> list[str]:
    """How the large-file row is measured."""
    size = report.settings.large_file_size
    if not size:
        return []
    return [
        f"- Large file: a real {format_size(size)} file written once per run in the temp dir "
        "(so it is served from the page cache, not from disk), downloaded "
        f"{report.settings.runs} time(s) per server with "
        f"`curl -sS -o /dev/null -w '{CURL_WRITE_OUT}' http://{HOST}:PORT/{LARGE_FILE}`. "
        "MB/s is curl's average (10^6 bytes) in the fastest download; RSS growth is the largest "
        "any download caused. RSS is the sum "
        f"over the server's process tree (psutil), sampled every {RSS_INTERVAL_S * 1000:.0f} ms; "
        "growth is the peak during the download minus the median just before it. For a forking "
        "server the sum counts pages a child shares with its parent once per process.",
    ]


def render_commands(results: Sequence[ServerResult]) -> list[str]:
    """The exact command that started each server."""
    lines = ["Run from the repository root; PORT was a free port picked for each server.", ""]
    for result in results:
        lines += [f"- {result.spec.title}: `{result.command}`"]
    return lines


def problem_summary(result: ServerResult) -> list[str]:
    """What went wrong with one server, in words (empty when nothing did)."""
    said = list(result.failures)
    if result.spec.ours and result.alive_at_stop and result.exit_code != 0:
        said.append(f"exit status {result.exit_code} after SIGINT (expected 0)")
    if result.spec.ours and result.tracebacks:
        said.append(f"{result.tracebacks} traceback(s) in its output")
    return said


def render_problems(results: Sequence[ServerResult]) -> list[str]:
    """Failures, crashes, unclean exits and tracebacks, with the last lines of the output."""
    lines = []
    for result in results:
        said = problem_summary(result)
        if said:
            lines.append(f"- **{result.spec.title}**: " + "; ".join(said))
            if result.log_tail:
                lines += ["", "  ```text", *("  " + x for x in result.log_tail.splitlines())]
                lines += ["  ```"]
    return lines


def render_markdown(report: Report) -> str:
    """Render the whole benchmark.md."""
    s = report.settings
    kind = "quick run" if s.quick else "full run"
    lines = [
        "# Benchmark",
        "",
        f"Generated by `{report.command_line}` ({kind}: {s.runs} × {s.duration_s} s per server, "
        f"took {report.elapsed_s / 60:.1f} min) on "
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC.",
        "",
        "## Machine",
        "",
        *(f"- {key}: {value}" for key, value in report.machine),
        "",
        "## Method",
        "",
        *render_method(report),
        *(f"- {note}" for note in report.notes),
        "",
        f"## Results: `{PAGE}`, best run per server",
        "",
        *render_results_table(report.results),
        "",
    ]
    if report.chart:
        lines += [f"![req/s and latency per server]({report.chart})", ""]
    lines += ["## Targets", "", *render_checks(evaluate_checks(report.results)), ""]
    size = format_size(s.large_file_size) if s.large_file_size else "large"
    lines += [f"## Large file ({size}), fastest of {s.runs} download(s) per server", ""]
    lines += [*render_large_table(report.results), ""]
    problems = render_problems(report.results)
    if problems:
        lines += ["## Problems", "", *problems, ""]
    lines += ["## Commands", "", *render_commands(report.results), ""]
    lines += ["# wrk output, best run per server", "", *render_raw_sections(report.results)]
    return "\n".join(lines).rstrip() + "\n"


def draw_chart(results: Sequence[ServerResult], path: Path, title: str) -> None:
    """Draw req/s and p50/p99 latency per server (ours in blue, peers in grey) into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [(r, r.best) for r in results if r.best is not None]
    labels = [r.spec.name for r, _ in measured]
    colors = ["tab:blue" if r.spec.ours else "tab:gray" for r, _ in measured]
    rows = range(len(measured))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 1.5 + 0.45 * len(measured)), sharey=True)
    left.barh(rows, [best.requests_per_sec for _, best in measured], color=colors)
    left.set_yticks(list(rows), labels)
    left.invert_yaxis()
    left.set_xlabel("requests/s (best run)")
    left.set_title("blue: http_server.py modes, grey: peers", fontsize=9)
    left.margins(x=0.15)
    for row, (_, best) in zip(rows, measured, strict=True):
        left.annotate(f"{best.requests_per_sec:,.0f}", (best.requests_per_sec, row), va="center")
    for offset, key, color in ((-0.2, 50.0, "tab:green"), (0.2, 99.0, "tab:red")):
        values = [best.percentiles_ms.get(key, 0.0) for _, best in measured]
        right.barh([r + offset for r in rows], values, height=0.4, color=color, label=f"p{key:g}")
    right.set_xscale("log")
    right.set_xlabel("latency (ms, log scale)")
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------
# Processes: start in a new session, wait until serving, stop the whole group.
# ----------------------------------------------------------------------------------------------


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
        result.log_tail, result.tracebacks = read_log(log_path)


def read_log(path: Path, lines: int = 15) -> tuple[str, int]:
    """Return the last `lines` lines of a server's output and how many tracebacks it holds."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "", 0
    return "\n".join(text.splitlines()[-lines:]), text.count("Traceback (most recent call last)")


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


# ----------------------------------------------------------------------------------------------
# Measurements.
# ----------------------------------------------------------------------------------------------


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


def run_wrk(loadgen: LoadGenerator, url: str, duration_s: int) -> WrkResult:
    """Run the course's wrk command once and parse its report."""
    return parse_wrk_output(run_tool(loadgen.command(url, duration_s), duration_s + 60))


def tree_rss(root: psutil.Process) -> int:
    """Return the summed RSS of a process and all its descendants (0 if it is gone)."""
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total


class RssSampler:
    """Sample the RSS of a process tree in a background thread, as (time, bytes) pairs."""

    def __init__(self, pid: int, interval_s: float = RSS_INTERVAL_S) -> None:
        self.samples: list[tuple[float, int]] = []
        self._root = psutil.Process(pid)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler")

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), tree_rss(self._root)))
            self._stop.wait(self._interval_s)


def download_large_file(port: int, pid: int, expected: int) -> LargeFileResult:
    """Download the large file once with curl while sampling the server's RSS."""
    url = f"http://{HOST}:{port}/{LARGE_FILE}"
    argv = ["curl", "-sS", "-o", os.devnull, "-w", CURL_WRITE_OUT]
    with RssSampler(pid) as sampler:
        time.sleep(0.5)
        start = time.monotonic()
        output = run_tool([*argv, "--max-time", "600", url], 660)
    status, received, speed = parse_curl_output(output)
    baseline, peak = rss_growth(sampler.samples, start)
    return LargeFileResult(status, received, expected, speed, baseline, peak)


def best_download(downloads: Sequence[LargeFileResult]) -> LargeFileResult:
    """Summarise repeated downloads of the large file as one result.

    A download takes a fraction of a second, so its speed depends on where the scheduler happens
    to put curl: the fastest one is reported, as wrk's best run is. Memory is never flattered:
    the result carries the largest RSS growth any download caused, and an incomplete download
    is reported as it is.

    Args:
        downloads: at least one download of the same file from the same server.
    Returns: the incomplete download if there is one, else the fastest with the worst growth.
    """
    for download in downloads:
        if not download.complete:
            return download
    fastest = max(downloads, key=lambda download: download.bytes_per_sec)
    worst = max(downloads, key=lambda download: download.peak_rss - download.baseline_rss)
    return dataclasses.replace(fastest, baseline_rss=worst.baseline_rss, peak_rss=worst.peak_rss)


def measure_load(
    process: subprocess.Popen, url: str, loadgen: LoadGenerator, settings: Settings
) -> tuple[list[WrkResult], list[str]]:
    """Warm up, then run wrk `settings.runs` times; return the runs and any failures."""
    run_tool(loadgen.command(url, settings.warmup_s, measure=False), settings.warmup_s + 60)
    runs, failures = [], []
    for index in range(1, settings.runs + 1):
        try:
            run = run_wrk(loadgen, url, settings.duration_s)
        except (BenchmarkError, subprocess.TimeoutExpired) as error:
            failures.append(f"run {index}: {error}")
        else:
            runs.append(run)
            progress(f"  run {index}/{settings.runs}: {describe(run)}")
        if process.poll() is not None:
            failures.append(f"server died during run {index} (status {process.returncode})")
            break
    return runs, failures


def describe(run: WrkResult) -> str:
    """One progress line for a wrk run."""
    return (
        f"{run.requests_per_sec:,.0f} req/s, p50 {fmt_ms(run.p50_ms)}, p99 {fmt_ms(run.p99_ms)}, "
        f"socket errors {fmt_errors(run.socket_errors)}, non-2xx {run.non_2xx}"
    )


def measure_server(
    spec: ServerSpec, loadgen: LoadGenerator, settings: Settings, tmp: Path
) -> ServerResult:
    """Start one server, load it, download the large file, stop it; never raises for it."""
    port = free_port()
    launch = spec.launch(port)
    result = ServerResult(spec, command=launch.display(tmp))
    progress(f"{spec.title}: starting on port {port}")
    with running(launch, tmp / f"{spec.name}.log", result) as process:
        try:
            wait_until_serving(process, port, PAGE_SIZE)
            result.rss_start = tree_rss(psutil.Process(process.pid))
            url = f"http://{HOST}:{port}/{PAGE}"
            result.runs, result.failures = measure_load(process, url, loadgen, settings)
            result.rss_after_load = tree_rss(psutil.Process(process.pid))
            if settings.large_file_size and process.poll() is None:
                result.large = best_download(
                    [
                        download_large_file(port, process.pid, settings.large_file_size)
                        for _ in range(settings.runs)
                    ]
                )
                progress(
                    f"  large file: {result.large.mb_per_sec:,.0f} MB/s, RSS growth "
                    f"{result.large.rss_growth_mb:.1f} MB"
                )
        except (BenchmarkError, subprocess.TimeoutExpired, ValueError, psutil.Error) as error:
            result.failures.append(str(error))
            progress(f"  failed: {error}")
    tracebacks = f", {result.tracebacks} traceback(s) in its output" if result.tracebacks else ""
    progress(f"{spec.title}: stopped (status {result.exit_code}){tracebacks}")
    return result


# ----------------------------------------------------------------------------------------------
# The servers: our modes (from -h) and the peers.
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What every launch needs: interpreter, server script, folders, worker count."""

    python: str
    server: Path
    www: Path
    tmp: Path
    workers: int
    server_has_workers: bool


def mode_spec(ctx: Context, mode: str) -> ServerSpec:
    """Our server in one mode; process-pool gets the same --workers as gunicorn sync."""
    extra = ("--workers", str(ctx.workers)) if mode == "process-pool" else ()
    extra = extra if ctx.server_has_workers else ()

    def launch(port: int) -> Launch:
        base = (ctx.python, str(ctx.server), "-p", str(port), "-f", str(ctx.www), "-c", mode)
        return Launch((*base, *extra))

    return ServerSpec(mode, MODE_TITLES.get(mode, mode.replace("-", " ").title()), True, launch)


def gunicorn_launch(ctx: Context, port: int, options: Sequence[str]) -> Launch:
    """gunicorn serving tools/peers/wsgi_files.py."""
    argv = (ctx.python, "-m", "gunicorn", "--bind", f"{HOST}:{port}", *options)
    argv += ("--log-level", "warning", "--chdir", str(PEERS_DIR), "wsgi_files:app")
    return Launch(argv, {"BENCH_FOLDER": str(ctx.www)})


def uvicorn_launch(ctx: Context, port: int) -> Launch:
    """uvicorn, one worker, serving tools/peers/asgi_files.py."""
    argv = (ctx.python, "-m", "uvicorn", "--host", HOST, "--port", str(port), "--workers", "1")
    argv += ("--log-level", "warning", "--no-access-log", "--app-dir", str(PEERS_DIR))
    return Launch((*argv, "asgi_files:app"), {"BENCH_FOLDER": str(ctx.www)})


def nginx_launch(ctx: Context, port: int) -> Launch:
    """nginx from tools/peers/nginx.conf.template, everything it writes under a run dir."""
    run_dir = ctx.tmp / f"nginx-{port}"
    run_dir.mkdir(mode=0o755)
    template = (PEERS_DIR / "nginx.conf.template").read_text()
    filled = {"@PORT@": str(port), "@ROOT@": str(ctx.www), "@RUNDIR@": str(run_dir)}
    for key, value in filled.items():
        template = template.replace(key, value)
    (run_dir / "nginx.conf").write_text(template)
    argv = (nginx_path() or "nginx", "-p", f"{run_dir}/", "-c", str(run_dir / "nginx.conf"))
    return Launch((*argv, "-e", str(run_dir / "error.log")))


def peer_spec(ctx: Context, name: str) -> ServerSpec:
    """One peer server by name (see PEER_NAMES)."""
    py, www = ctx.python, str(ctx.www)
    sync_options = ("--worker-class", "sync", "--workers", str(ctx.workers))
    gthread_options = ("--worker-class", "gthread", "--workers", "1", "--threads", "8")
    table: dict[str, tuple[str, Callable[[int], Launch]]] = {
        "http.server": (
            "python -m http.server (ThreadingHTTPServer)",
            lambda port: Launch((py, "-m", "http.server", "-b", HOST, "-d", www, str(port))),
        ),
        "forking": (
            "http.server + ForkingMixIn",
            lambda port: Launch(
                (py, str(PEERS_DIR / "forking_http_server.py"), "-b", HOST, "-d", www, str(port))
            ),
        ),
        "gunicorn-sync": (
            f"gunicorn sync ×{ctx.workers}",
            lambda port: gunicorn_launch(ctx, port, sync_options),
        ),
        "gunicorn-gthread": (
            "gunicorn gthread 1×8",
            lambda port: gunicorn_launch(ctx, port, (*gthread_options, "--keep-alive", "0")),
        ),
        "uvicorn": ("uvicorn (1 worker)", lambda port: uvicorn_launch(ctx, port)),
        "nginx": ("nginx (1 worker)", lambda port: nginx_launch(ctx, port)),
    }
    title, launch = table[name]
    return ServerSpec(name, title, False, launch)


def nginx_path() -> str | None:
    """Return nginx's path (PATH, then /usr/sbin, where Debian puts it), or None."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def package_versions(python: str, names: Sequence[str]) -> dict[str, str | None]:
    """Return the installed version of each package for `python` (None if missing)."""
    script = (
        "import importlib.metadata as m, json, sys\n"
        "def v(n):\n"
        "    try: return m.version(n)\n"
        "    except m.PackageNotFoundError: return None\n"
        "print(json.dumps({n: v(n) for n in sys.argv[1:]}))\n"
    )
    output = subprocess.run(
        [python, "-c", script, *names], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output)


def missing_peer_reason(name: str, versions: dict[str, str | None]) -> str | None:
    """Say why a peer cannot run here, or None when it can."""
    package = {"gunicorn-sync": "gunicorn", "gunicorn-gthread": "gunicorn"}.get(name, name)
    if package in ("gunicorn", "uvicorn") and not versions.get(package):
        return f"{package} is not installed for this Python ({INSTALL_HINT})"
    if name == "nginx" and nginx_path() is None:
        return "nginx is not installed"
    return None


# ----------------------------------------------------------------------------------------------
# Machine description and the load generator.
# ----------------------------------------------------------------------------------------------


def detect_load_generator() -> LoadGenerator:
    """Prefer wrk2 (or a wrk that accepts -R); else fall back to closed-loop wrk.

    Raises BenchmarkError when no wrk is on PATH.
    """
    fallback = None
    for name in ("wrk2", "wrk"):
        exe = shutil.which(name)
        if exe is None:
            continue
        usage = run_tool([exe, "--help"], 10)
        version = first_line(run_tool([exe, "-v"], 10)).split(" Copyright")[0]
        if accepts_rate(usage):
            return LoadGenerator(exe, version, open_loop=True)
        fallback = fallback or LoadGenerator(exe, version, open_loop=False)
    if fallback is None:
        raise BenchmarkError("neither wrk2 nor wrk is on PATH (Debian: apt-get install wrk)")
    return fallback


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo (or platform's guess)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def tool_version(argv: Sequence[str]) -> str:
    """Return the first line a tool prints for its version flag."""
    try:
        return first_line(run_tool(argv, 10))
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


def describe_machine(
    python: str, loadgen: LoadGenerator, versions: dict[str, str | None]
) -> list[tuple[str, str]]:
    """The facts written into benchmark.md's Machine section."""
    script = "import platform; print(platform.python_implementation(), platform.python_version())"
    py_version = first_line(run_tool([python, "-c", script], 30))
    kind = "open loop, wrk2 -R" if loadgen.open_loop else "closed loop: no -R support"
    http_impl = "httptools" if versions.get("httptools") else "h11"
    loop = "uvloop" if versions.get("uvloop") else "asyncio"
    nginx = tool_version([nginx_path() or "nginx", "-v"]).replace("nginx version: ", "")
    return [
        (
            "CPU",
            f"{cpu_model()}, {os.cpu_count()} logical / "
            f"{psutil.cpu_count(logical=False)} physical cores",
        ),
        ("Memory", f"{psutil.virtual_memory().total / 1024**3:.1f} GiB"),
        ("Load average at start", " ".join(f"{load:.2f}" for load in os.getloadavg())),
        ("OS", platform.platform()),
        ("Python (servers)", f"`{python}`: {py_version}"),
        ("Load generator", f"`{loadgen.exe}`: {loadgen.version} ({kind})"),
        ("curl", " ".join(tool_version(["curl", "--version"]).split()[:2])),
        (
            "Peers",
            f"gunicorn {versions.get('gunicorn')}, uvicorn {versions.get('uvicorn')} "
            f"({http_impl}, {loop}), {nginx}",
        ),
    ]


# ----------------------------------------------------------------------------------------------
# The served folder.
# ----------------------------------------------------------------------------------------------


def page_html(size: int = PAGE_SIZE) -> bytes:
    """Return an HTML page of exactly `size` bytes (the course's page.html is 1260)."""
    head = b"<!DOCTYPE html>\n<html>\n<head><title>Benchmark page</title></head>\n<body>\n<p>"
    tail_ = b"</p>\n</body>\n</html>\n"
    filler = b"All work and no play makes a benchmark a dull page. " * (size // 40)
    return head + filler[: size - len(head) - len(tail_)] + tail_


def write_large_file(path: Path, size: int) -> None:
    """Write a real (not sparse) file of `size` bytes, repeating one random MiB."""
    block = os.urandom(1024 * 1024)
    with path.open("wb") as file:
        for _ in range(size // len(block)):
            file.write(block)
        file.write(block[: size % len(block)])


def make_site(tmp: Path, large_file_size: int) -> Path:
    """Create the served folder under `tmp`, readable by nginx's unprivileged worker."""
    tmp.chmod(0o755)
    www = tmp / "www"
    www.mkdir(mode=0o755)
    (www / PAGE).write_bytes(page_html())
    if large_file_size:
        if shutil.disk_usage(tmp).free < large_file_size + 256 * 1024**2:
            raise BenchmarkError(f"not enough space in {tmp} for the large file")
        progress(f"writing a {format_size(large_file_size)} file in {www}")
        write_large_file(www / LARGE_FILE, large_file_size)
    for path in www.iterdir():
        path.chmod(0o644)
    return www


# ----------------------------------------------------------------------------------------------
# Command line.
# ----------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="Benchmark http_server.py's modes against http.server, gunicorn, uvicorn "
        "and nginx with wrk, and write benchmark.md plus a PNG chart."
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="one 5 s run per server after a 1 s warm-up")
    add("--modes", help="comma-separated modes (default: every mode in -h; 'none' for none)")
    add("--peers", help=f"comma-separated peers (default: all of {', '.join(PEER_NAMES)})")
    add("--output", metavar="PATH", type=Path, default=REPO / "benchmark.md", help="report file")
    add("--duration", metavar="S", type=int, help="seconds per wrk run (30; quick 5)")
    add("--runs", metavar="N", type=int, help="wrk runs per server, best kept (3; quick 1)")
    add("--server", metavar="PATH", type=Path, default=REPO / "http_server.py", help="our server")
    add("--python", metavar="EXE", default=sys.executable, help="interpreter for the servers")
    add(
        "--large-file-size",
        metavar="SIZE",
        type=parse_size,
        default=parse_size("1G"),
        help="size of the large-file download (default 1G; 0 skips it)",
    )
    add("--no-chart", action="store_true", help="do not draw the PNG chart")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace, workers: int) -> Settings:
    """Turn the options into Settings (quick: one 5 s run after a 1 s warm-up)."""
    return Settings(
        quick=args.quick,
        duration_s=args.duration or (5 if args.quick else 30),
        runs=args.runs or (1 if args.quick else 3),
        warmup_s=1 if args.quick else 3,
        large_file_size=args.large_file_size,
        workers=workers,
    )


def names_in(text: str) -> list[str]:
    """Split a comma-separated option value; 'none' (or nothing) means an empty list."""
    return [name.strip() for name in text.split(",") if name.strip() not in ("", "none")]


def split_names(text: str | None, available: Sequence[str], what: str) -> list[str]:
    """Return the requested names (all when None, none for 'none'), checked against `available`."""
    if text is None:
        return list(available)
    names = names_in(text)
    unknown = [name for name in names if name not in available]
    if unknown:
        raise BenchmarkError(f"unknown {what} {', '.join(unknown)}; choose from {available}")
    return names


def server_help(python: str, server: Path) -> str:
    """Return `http_server.py -h`, or raise BenchmarkError when it cannot run."""
    if not server.is_file():
        raise BenchmarkError(f"{server} does not exist (use --modes none for the peers only)")
    done = subprocess.run([python, str(server), "-h"], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise BenchmarkError(f"{server} -h failed: {first_line(done.stderr)}")
    return done.stdout


def choose_modes(args: argparse.Namespace) -> tuple[list[str], str]:
    """Return the modes to run and the server's -h text ("" when no mode is run)."""
    if args.modes is not None and not names_in(args.modes):
        return [], ""
    help_text = server_help(args.python, args.server)
    return split_names(args.modes, parse_modes(help_text), "mode"), help_text


def choose_workers(help_text: str) -> tuple[int, str]:
    """Pick process-pool's and gunicorn sync's worker count, and say how it was picked."""
    default = parse_workers_default(help_text)
    threads = parse_workers_default(help_text, "thread-pool")
    thread_pool = f"; thread-pool keeps its own default ({threads} per `-h`)" if threads else ""
    if default is not None:
        return default, f"{default}, the `--workers` default shown by `-h`{thread_pool}"
    workers = max(4, os.cpu_count() or 1)
    return workers, f"{workers} = max(4, cores), passed explicitly{thread_pool}"


def build_specs(
    ctx: Context, modes: Sequence[str], peers: Sequence[str], versions: dict[str, str | None]
) -> tuple[list[ServerSpec], list[str]]:
    """Return the servers to measure and a note for each requested peer that cannot run."""
    specs = [mode_spec(ctx, mode) for mode in modes]
    notes = []
    for name in peers:
        reason = missing_peer_reason(name, versions)
        if reason:
            notes.append(f"Peer {name} skipped: {reason}.")
        else:
            specs.append(peer_spec(ctx, name))
    return specs, notes


def busy_machine_note() -> list[str]:
    """Warn (and say in the report) when the machine is already busy as the run starts."""
    load = os.getloadavg()[0]
    if load < 1.0:
        return []
    note = f"The 1-minute load average was {load:.2f} at the start: other work shared the CPUs."
    progress(f"warning: {note}")
    return [note]


def run_benchmark(args: argparse.Namespace, tmp: Path) -> Report:
    """Measure every requested server and return the report material."""
    started = time.monotonic()
    modes, help_text = choose_modes(args)
    peers = split_names(args.peers, PEER_NAMES, "peer")
    workers, workers_note = choose_workers(help_text)
    settings = settings_from(args, workers)
    curl_note = []
    if settings.large_file_size and not shutil.which("curl"):
        settings = dataclasses.replace(settings, large_file_size=0)
        curl_note = ["Large file skipped: curl is not installed."]
    loadgen = detect_load_generator()
    progress(
        f"load generator: {loadgen.version} ({'open' if loadgen.open_loop else 'closed'} loop)"
    )
    versions = package_versions(args.python, ["gunicorn", "uvicorn", "httptools", "uvloop"])
    www = make_site(tmp, settings.large_file_size)
    has_workers = "--workers" in help_text
    ctx = Context(args.python, args.server.resolve(), www, tmp, workers, has_workers)
    specs, notes = build_specs(ctx, modes, peers, versions)
    notes = [f"Workers for process-pool and gunicorn sync: {workers_note}.", *notes, *curl_note]
    if modes and not has_workers:
        notes[0] = f"`http_server.py -h` shows no `--workers`; gunicorn sync uses {workers}."
    machine = describe_machine(args.python, loadgen, versions)
    notes += busy_machine_note()
    results = [measure_server(spec, loadgen, settings, tmp) for spec in specs]
    command_line = shlex.join(["python3", "tools/benchmark.py", *sys.argv[1:]])
    report = Report(settings, loadgen, machine, results, notes, command_line)
    report.elapsed_s = time.monotonic() - started
    return report


def write_outputs(report: Report, output: Path, chart: bool) -> None:
    """Write the chart (unless disabled or matplotlib is missing) and benchmark.md."""
    if chart and any(result.best for result in report.results):
        path = output.with_suffix(".png")
        try:
            kind = "wrk2 -R10000" if report.loadgen.open_loop else "closed-loop wrk -t10 -c10"
            draw_chart(report.results, path, f"{PAGE}, {kind}, best run per server")
            report.chart = path.name
        except ImportError:
            report.notes.append("No chart: matplotlib is not installed.")
    output.write_text(render_markdown(report))
    progress(f"wrote {output}" + (f" and {report.chart}" if report.chart else ""))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return 0, or 1 when it could not run or a server was not measured."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    tmp = Path(tempfile.mkdtemp(prefix="benchmark-"))
    try:
        report = run_benchmark(args, tmp)
        write_outputs(report, args.output, chart=not args.no_chart)
    except BenchmarkError as error:
        print(f"benchmark.py: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("benchmark.py: interrupted; every server it started was stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    progress(f"done in {report.elapsed_s / 60:.1f} min")
    return 1 if any(result.best is None for result in report.results) else 0


if __name__ == "__main__":
    sys.exit(main())
