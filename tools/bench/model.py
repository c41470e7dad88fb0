"""What the benchmark starts and measures: constants, launches, results, settings, the report.

Strategy: plain frozen dataclasses (no behaviour beyond small derived properties), shared by
every other module of the package so that parsing, targets and rendering stay pure functions.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PEERS_DIR = REPO / "tools" / "peers"
HOST = "127.0.0.1"
PAGE = "page.html"
PAGE_SIZE = 1260
LARGE_FILE = "large.bin"
COURSE_THREADS = 10
COURSE_CONNECTIONS = 10
COURSE_RATE = 10_000
RSS_INTERVAL_S = 0.05
MB = 1_000_000
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
MEMORY_SUFFIX = "-memory"
PEER_NAMES = (
    "http.server",
    "forking",
    "gunicorn-sync",
    "gunicorn-sync-memory",
    "gunicorn-gthread",
    "gunicorn-gthread-memory",
    "uvicorn",
    "uvicorn-memory",
    "nginx",
)


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
    traceback_kinds: dict[str, int] = field(default_factory=dict)
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
    want_chart: bool = False
    tmp_shown: str = ""


class BenchmarkError(Exception):
    """A problem that stops the benchmark (or one server's measurement) with a message."""


def best_run(runs: Sequence[WrkResult]) -> WrkResult | None:
    """Return the best run: the highest req/s, ties broken by the lower p99."""
    if not runs:
        return None
    return max(runs, key=lambda run: (run.requests_per_sec, -(run.p99_ms or 0.0)))
