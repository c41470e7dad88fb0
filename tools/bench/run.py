"""One benchmark run: choose the modes and peers, measure each in turn, write the report.

Strategy: run_benchmark gathers everything into a Report; write_outputs draws the chart and
writes the Markdown into a fresh folder (or the file --output names).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .chart import draw_chart
from .folder import make_site
from .machine import describe_machine, detect_load_generator
from .markdown import render_markdown
from .measure import measure_server
from .model import (
    INSTALL_HINT,
    PAGE,
    PEER_NAMES,
    BenchmarkError,
    LoadGenerator,
    Report,
    ServerSpec,
    Settings,
)
from .parsing import first_line, parse_modes, parse_workers_default
from .processes import progress
from .servers import Context, missing_peer_reason, mode_spec, package_versions, peer_spec

FULL_LARGE_FILE = 1024**3
QUICK_LARGE_FILE = 256 * 1024**2
CURL_HINT = "Large file skipped: curl is not installed (Debian: apt-get install curl)."
CHART_HINT = f"matplotlib is not installed ({INSTALL_HINT})"
WRK2_HINT = (
    "wrk2 is not on PATH, so the load is closed-loop wrk, not the course's wrk2 -R10000 "
    "(Debian has no wrk2 package: build it from its source and put `wrk2` on PATH)"
)


def settings_from(args: argparse.Namespace, workers: int) -> Settings:
    """Turn the options into Settings (quick: one 5 s run after a 1 s warm-up, a smaller file)."""
    return Settings(
        quick=args.quick,
        duration_s=args.duration or (5 if args.quick else 30),
        runs=args.runs or (1 if args.quick else 3),
        warmup_s=1 if args.quick else 3,
        large_file_size=(
            args.large_file_size
            if args.large_file_size is not None
            else QUICK_LARGE_FILE if args.quick else FULL_LARGE_FILE
        ),
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


def missing_pieces(args: argparse.Namespace, loadgen: LoadGenerator) -> list[str]:
    """Name each optional piece that is missing here (no wrk2, no curl, no matplotlib)."""
    notes = [] if loadgen.open_loop else [f"{WRK2_HINT}."]
    if not shutil.which("curl") and args.large_file_size != 0:
        notes.append(CURL_HINT)
    if not args.no_chart and importlib.util.find_spec("matplotlib") is None:
        notes.append(f"No chart: {CHART_HINT}.")
    return notes


def run_benchmark(args: argparse.Namespace, tmp: Path) -> Report:
    """Measure every requested server and return the report material.

    Every missing optional piece is named in one progress line before anything is measured.
    """
    started = time.monotonic()
    modes, help_text = choose_modes(args)
    peers = split_names(args.peers, PEER_NAMES, "peer")
    workers, workers_note = choose_workers(help_text)
    loadgen = detect_load_generator()
    progress(
        f"load generator: {loadgen.version} ({'open' if loadgen.open_loop else 'closed'} loop)"
    )
    missing = missing_pieces(args, loadgen)
    settings = settings_from(args, workers)
    if not shutil.which("curl"):
        settings = dataclasses.replace(settings, large_file_size=0)
    versions = package_versions(args.python, ["gunicorn", "uvicorn", "httptools", "uvloop"])
    www = make_site(tmp, settings.large_file_size)
    has_workers = "--workers" in help_text
    ctx = Context(args.python, args.server.resolve(), www, tmp, workers, has_workers)
    specs, skipped = build_specs(ctx, modes, peers, versions)
    for note in missing + skipped:
        progress(f"note: {note}")
    notes = [f"Workers for process-pool and gunicorn sync: {workers_note}.", *skipped, *missing]
    if modes and not has_workers:
        notes[0] = f"`http_server.py -h` shows no `--workers`; gunicorn sync uses {workers}."
    machine = describe_machine(args.python, loadgen, versions)
    notes += busy_machine_note()
    results = [measure_server(spec, loadgen, settings, tmp) for spec in specs]
    command_line = shlex.join(["python3", "tools/benchmark.py", *sys.argv[1:]])
    report = Report(settings, loadgen, machine, results, notes, command_line)
    report.want_chart = not args.no_chart and importlib.util.find_spec("matplotlib") is not None
    report.elapsed_s = time.monotonic() - started
    return report


def write_outputs(report: Report, output: Path) -> None:
    """Write the chart (when wanted and matplotlib is there) beside the Markdown report."""
    if report.want_chart and any(result.best for result in report.results):
        path = output.with_suffix(".png")
        kind = "wrk2 -R10000" if report.loadgen.open_loop else "closed-loop wrk -t10 -c10"
        draw_chart(report.results, path, f"{PAGE}, {kind}, best run per server")
        report.chart = path.name
    output.write_text(render_markdown(report))
    progress(f"wrote {output}" + (f" and {report.chart}" if report.chart else ""))
