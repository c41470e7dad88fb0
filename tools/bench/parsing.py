"""Parsing what the tools print: wrk's and wrk2's reports, curl's write-out, sizes, `-h` text.

Strategy: pure functions over text (regular expressions), tested on recorded output without
starting anything.
"""

from __future__ import annotations

import argparse
import re
import statistics
from collections.abc import Sequence

from .model import BenchmarkError, WrkResult

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
