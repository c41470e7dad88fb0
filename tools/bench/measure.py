"""Measuring one server: warm-up, repeated wrk runs, large downloads with RSS sampling.

Strategy: wrk and curl run as child processes; a background thread samples the server's
process-tree RSS (psutil) during each download. measure_server never raises for the server
it measures: what went wrong goes into its ServerResult.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from .markdown import fmt_errors, fmt_ms, traceback_note
from .model import (
    CURL_WRITE_OUT,
    HOST,
    LARGE_FILE,
    PAGE,
    PAGE_SIZE,
    RSS_INTERVAL_S,
    BenchmarkError,
    LargeFileResult,
    LoadGenerator,
    ServerResult,
    ServerSpec,
    Settings,
    WrkResult,
)
from .parsing import parse_curl_output, parse_wrk_output, rss_growth
from .processes import free_port, progress, run_tool, running, wait_until_serving


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
    note = traceback_note(result)
    progress(f"{spec.title}: stopped (status {result.exit_code})" + (f"; {note}" if note else ""))
    return result
