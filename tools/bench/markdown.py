"""Rendering the report as Markdown: tables, method, problems, commands, raw wrk output.

Strategy: each section is a function returning lines; render_markdown joins them in the
order of the committed benchmark.md.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
from collections.abc import Sequence

from .model import (
    COURSE_RATE,
    COURSE_THREADS,
    CURL_WRITE_OUT,
    HOST,
    LARGE_FILE,
    MB,
    MEMORY_SUFFIX,
    PAGE,
    PAGE_SIZE,
    RSS_INTERVAL_S,
    Check,
    Report,
    ServerResult,
)
from .parsing import format_size
from .targets import evaluate_checks, natural_peer, ratio, requests_per_sec

HANGUP_ERRORS = frozenset({"BrokenPipeError", "ConnectionResetError", "ConnectionAbortedError"})


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
    """The ratio column: a mode's req/s over its natural peer's, and over that peer's
    in-memory twin when it was measured too ("2.07x uvicorn (1.28x from memory)")."""
    peer = natural_peer(result.spec.name) if result.spec.ours else None
    ours = requests_per_sec(by_name, result.spec.name)
    value = ratio(ours, requests_per_sec(by_name, peer))
    if not peer or value is None:
        return "–"
    twin = ratio(ours, requests_per_sec(by_name, f"{peer}{MEMORY_SUFFIX}"))
    return f"{value:.2f}× {peer}" + (f" ({twin:.2f}× from memory)" if twin is not None else "")


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


def traceback_note(result: ServerResult) -> str:
    """Say what the tracebacks in a server's output are ("" when there are none).

    A peer's log of clients that hung up (BrokenPipeError, ConnectionResetError: wrk closes its
    connections with requests in flight as each run ends, and http.server prints a traceback
    for each) is explained as noise; anything else, and any traceback of ours, is reported.
    """
    if not result.tracebacks:
        return ""
    kinds = ", ".join(f"{kind} ×{count}" for kind, count in result.traceback_kinds.items())
    said = f"{result.tracebacks} traceback(s) in its output" + (f" ({kinds})" if kinds else "")
    if hangups_only(result):
        return f"{said}: clients hanging up as each wrk run ends, which it logs; not a failure"
    return said


def hangups_only(result: ServerResult) -> bool:
    """Tell whether a peer's tracebacks all record clients that hung up on it."""
    kinds = set(result.traceback_kinds)
    return not result.spec.ours and bool(kinds) and kinds <= HANGUP_ERRORS


def problem_summary(result: ServerResult) -> list[str]:
    """What went wrong with one server, in words (empty when nothing did)."""
    said = list(result.failures)
    if result.spec.ours and result.alive_at_stop and result.exit_code != 0:
        said.append(f"exit status {result.exit_code} after SIGINT (expected 0)")
    if result.tracebacks and not hangups_only(result):
        said.append(traceback_note(result))
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
