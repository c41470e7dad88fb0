"""The course's targets and the checks that compare measured numbers with them.

Strategy: SPEED_TARGETS lists each req/s goal as (mode, peer, ratio); health and large-file
checks are fixed rules. A target whose peer was not measured is 'n/a', never 'missed'.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .model import Check, ServerResult

MAX_P99_MS = 20.0
LARGE_FILE_PEER = "nginx"
LARGE_FILE_RATIO = 0.8
MAX_RSS_GROWTH_MB = 30.0


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
