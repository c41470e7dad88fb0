"""Tests for the benchmark's (tools/bench/) pure parts: wrk/curl parsing, ratios, targets, Markdown.

Strategy: feed recorded wrk and wrk2 reports and hand-built results to the functions that turn
them into numbers and text; no server, wrk or curl is ever started, so the file runs in well
under a second.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))

from bench import (  # noqa: E402
    cli,
    folder,
    markdown,
    measure,
    model,
    parsing,
    processes,
    run,
    servers,
    targets,
)

WRK_WITH_ERRORS = """\
Running 30s test @ http://127.0.0.1:8085/page.html
  10 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   851.20us    1.10ms  22.85ms   93.91%
    Req/Sec     1.06k    98.77     2.11k    91.11%
  Latency Distribution
     50%  612.00us
     75%    0.91ms
     90%    1.52ms
     99%    4.30ms
  299938 requests in 30.00s, 372.14MB read
  Socket errors: connect 0, read 12, write 3, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:   9997.85
Transfer/sec:     12.40MB
"""

WRK2_OUTPUT = """\
Running 30s test @ http://127.0.0.1:8085/page.html
  10 threads and 10 connections
  Thread calibration: mean lat.: 1.112ms, rate sampling interval: 10ms
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    16.51s     4.76s   24.53s    57.02%
    Req/Sec   181.80      0.40   182.00    100.00%
  Latency Distribution (HdrHistogram - Recorded Latency)
 50.000%   16.50s
 75.000%   20.10s
 90.000%   22.54s
 99.000%   24.20s
 99.900%   24.48s
 99.990%   24.53s
 99.999%   24.53s
100.000%   24.53s

  Detailed Percentile spectrum:
       Value   Percentile   TotalCount 1/(1-Percentile)

    8216.575     0.000000            1         1.00
   24530.943     1.000000        54673          inf
#[Mean    =    16510.123, StdDeviation   =     4760.456]
#[Max     =    24530.943, Total count    =        54673]
----------------------------------------------------------
  54673 requests in 30.00s, 67.83MB read
Requests/sec:   1822.19
Transfer/sec:      2.26MB
"""

WRK_USAGE = """\
Usage: wrk <options> <url>
  Options:
    -c, --connections <N>  Connections to keep open
    -d, --duration    <T>  Duration of test
    -t, --threads     <N>  Number of threads to use
        --latency          Print latency statistics
"""

WRK2_USAGE = WRK_USAGE + "    -R, --rate        <T>  work rate (throughput)\n"

SERVER_HELP = """\
usage: http_server.py [-h] [-p PORT] [-c {thread,thread-pool,process,process-pool,async,select,single}] [--workers N]

options:
  -c {thread,thread-pool,process,process-pool,async,select,single}, --concurrency {thread,thread-pool,process,process-pool,async,select,single}
                        concurrency methodology (default thread)
  --workers N           pool size (default 16 threads for thread-pool, 4 processes for
                        process-pool)
  --bind ADDR           address to listen on
"""  # noqa: E501


def wrk_result(rps: float, p99: float = 2.0, **changes: object) -> model.WrkResult:
    """A WrkResult with sensible defaults."""
    fields = {
        "requests_per_sec": rps,
        "requests": int(rps * 30),
        "latency_avg_ms": 1.0,
        "latency_max_ms": 9.0,
        "percentiles_ms": {50.0: 1.0, 99.0: p99},
        "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0},
        "non_2xx": 0,
        "summary": "Requests/sec: {rps}",
    }
    return model.WrkResult(**{**fields, **changes})


def server_result(name: str, ours: bool, *runs: model.WrkResult, **changes: object):
    """A ServerResult for server `name` with the given runs."""
    title = model.MODE_TITLES.get(name, name)
    spec = model.ServerSpec(name, title, ours, lambda port: model.Launch(("x",)))
    result = model.ServerResult(spec, command=f"run {name}", runs=list(runs), exit_code=0)
    for key, value in changes.items():
        setattr(result, key, value)
    return result


def large(mb_per_sec: float, growth_mb: float = 1.0, status: int = 200) -> model.LargeFileResult:
    """A LargeFileResult of a 1 GiB download."""
    size = 1024**3
    return model.LargeFileResult(
        status, size, size, mb_per_sec * model.MB, 20 * model.MB, int((20 + growth_mb) * model.MB)
    )


def report(results: list, open_loop: bool = False) -> model.Report:
    """A Report around `results`, as run_benchmark would build it."""
    settings = model.Settings(
        quick=True, duration_s=5, runs=1, warmup_s=1, large_file_size=1024**3, workers=4
    )
    loadgen = model.LoadGenerator("/usr/bin/wrk", "wrk 4.1.0", open_loop)
    machine = [("CPU", "test CPU, 2 cores")]
    return model.Report(settings, loadgen, machine, results, ["a note"], "python3 x --quick")


# --- wrk output ---------------------------------------------------------------------------------


def test_wrk_report_gives_throughput_latencies_errors_and_non_2xx():
    result = parsing.parse_wrk_output(WRK_WITH_ERRORS)
    assert result.requests_per_sec == 9997.85
    assert result.requests == 299938
    assert result.latency_avg_ms == pytest.approx(0.8512)
    assert result.latency_max_ms == pytest.approx(22.85)
    assert result.p50_ms == pytest.approx(0.612)
    assert result.p99_ms == pytest.approx(4.30)
    assert result.socket_errors == {"connect": 0, "read": 12, "write": 3, "timeout": 1}
    assert result.socket_error_total == 16
    assert result.non_2xx == 7


def test_wrk2_report_gives_hdr_percentiles_in_ms_and_skips_the_spectrum():
    result = parsing.parse_wrk_output(WRK2_OUTPUT)
    assert result.requests_per_sec == 1822.19
    assert result.p50_ms == pytest.approx(16_500)
    assert result.p99_ms == pytest.approx(24_200)
    assert result.percentiles_ms[99.9] == pytest.approx(24_480)
    assert result.socket_errors == {} and result.socket_error_total == 0
    assert result.non_2xx == 0
    assert "Detailed Percentile" not in result.summary
    assert "8216.575" not in result.summary and "100.000%" not in result.summary


def test_summary_keeps_the_lines_example_benchmark_shows_plus_errors():
    summary = parsing.parse_wrk_output(WRK_WITH_ERRORS).summary.splitlines()
    assert summary[0].startswith("  Thread Stats")
    assert summary[-2:] == ["Requests/sec:   9997.85", "Transfer/sec:     12.40MB"]
    assert "  Socket errors: connect 0, read 12, write 3, timeout 1" in summary
    assert "  Non-2xx or 3xx responses: 7" in summary
    assert not any(line.startswith("Running") for line in summary)


def test_wrk_failure_is_reported_not_parsed():
    with pytest.raises(model.BenchmarkError, match="unable to connect"):
        parsing.parse_wrk_output("unable to connect to 127.0.0.1:1 Connection refused\n")


@pytest.mark.parametrize(
    ("value", "unit", "ms"),
    [("850", "us", 0.85), ("1.5", "ms", 1.5), ("2", "s", 2000.0), ("1", "m", 60_000.0)],
)
def test_wrk_time_units_convert_to_milliseconds(value, unit, ms):
    assert parsing.to_ms(value, unit) == pytest.approx(ms)


def test_best_run_is_the_fastest_and_ties_go_to_the_lower_p99():
    slow, fast, fast_but_jittery = wrk_result(900), wrk_result(1000, p99=1.0), wrk_result(1000, 5)
    assert model.best_run([slow, fast_but_jittery, fast]) is fast
    assert model.best_run([]) is None


def test_rate_option_is_detected_in_wrk2_usage_only():
    assert parsing.accepts_rate(WRK2_USAGE)
    assert not parsing.accepts_rate(WRK_USAGE)
    assert not parsing.accepts_rate("wrk: invalid option -- 'R'\n" + WRK_USAGE)


def test_course_command_gets_a_rate_only_when_open_loop():
    url = "http://127.0.0.1:1/page.html"
    closed = model.LoadGenerator("wrk", "wrk 4", open_loop=False)
    opened = model.LoadGenerator("wrk2", "wrk 4", open_loop=True)
    assert closed.command(url, 30) == ["wrk", "-t10", "-c10", "-d30s", "--latency", url]
    assert opened.command(url, 30) == ["wrk2", "-t10", "-c10", "-d30s", "-R10000", "--latency", url]
    assert opened.command(url, 2, measure=False) == ["wrk2", "-t10", "-c10", "-d2s", url]


# --- curl, RSS, sizes, -h -----------------------------------------------------------------------


def test_curl_write_out_is_parsed():
    assert parsing.parse_curl_output("200 1073741824 1234567890.5\n") == (
        200,
        1 << 30,
        1234567890.5,
    )


def test_rss_growth_is_peak_during_minus_median_before():
    samples = [(0.0, 100), (0.1, 110), (0.2, 105), (0.3, 150), (0.4, 130)]
    assert parsing.rss_growth(samples, start=0.25) == (105, 150)
    assert parsing.rss_growth([(1.0, 80)], start=0.5) == (80, 80)
    assert parsing.rss_growth([], start=0.5) == (0, 0)


@pytest.mark.parametrize(
    ("text", "size"), [("1G", 1 << 30), ("256M", 256 << 20), ("64KiB", 64 << 10), ("0", 0)]
)
def test_sizes_use_binary_units(text, size):
    assert parsing.parse_size(text) == size


def test_bad_size_is_an_argparse_error():
    with pytest.raises(argparse.ArgumentTypeError):
        parsing.parse_size("lots")


def test_sizes_format_back():
    assert parsing.format_size(1 << 30) == "1 GiB"
    assert parsing.format_size(256 << 20) == "256 MiB"
    assert parsing.format_size(1260) == "1.23 KiB"


def test_modes_come_from_the_concurrency_choices():
    assert parsing.parse_modes(SERVER_HELP) == [
        "thread",
        "thread-pool",
        "process",
        "process-pool",
        "async",
        "select",
        "single",
    ]
    with pytest.raises(model.BenchmarkError):
        parsing.parse_modes("usage: server.py [-h]")


@pytest.mark.parametrize(
    ("help_text", "workers"),
    [
        (SERVER_HELP, 4),
        ("  --workers N  pool size (default: 8)\n  --bind ADDR", 8),
        ("  -w N, --workers N  size (default 8 for thread-pool, 3 for process-pool)", 3),
        ("  --workers N  thread-pool: 12, process-pool: 6", 6),
        ("  --workers N  pool size (default: number of CPUs)", None),
        ("usage: s.py [--workers N]\n\noptions:\n  -h, --help  help\n", None),
    ],
)
def test_process_pool_workers_default_is_read_from_help(help_text, workers):
    assert parsing.parse_workers_default(help_text) == workers


def test_thread_pool_default_is_told_apart():
    assert parsing.parse_workers_default(SERVER_HELP, "thread-pool") == 16


def test_mode_and_peer_lists_accept_none_and_reject_unknown_names():
    assert run.split_names(None, ["a", "b"], "mode") == ["a", "b"]
    assert run.split_names("none", ["a", "b"], "mode") == []
    assert run.split_names("b, a", ["a", "b"], "mode") == ["b", "a"]
    with pytest.raises(model.BenchmarkError, match="unknown mode c"):
        run.split_names("a,c", ["a", "b"], "mode")


def test_page_is_exactly_the_course_size_and_html():
    page = folder.page_html()
    assert len(page) == model.PAGE_SIZE == 1260
    assert page.startswith(b"<!DOCTYPE html>") and page.endswith(b"</html>\n")


def test_commands_show_the_temp_dir_and_repo_relative_paths():
    tmp = Path("/tmp/benchmark-abc")
    launch = model.Launch(
        ("python3", str(model.REPO / "http_server.py"), "-f", f"{tmp}/www"), {"A": "x y"}
    )
    assert launch.display(tmp) == "A='x y' python3 http_server.py -f $BENCH_TMP/www"


# --- ratios and targets -------------------------------------------------------------------------


def test_ratio_needs_both_numbers():
    assert targets.ratio(300.0, 100.0) == 3.0
    assert targets.ratio(None, 100.0) is None
    assert targets.ratio(300.0, None) is None
    assert targets.ratio(300.0, 0.0) is None


def test_each_mode_has_its_natural_peer():
    assert targets.natural_peer("thread") == "http.server"
    assert targets.natural_peer("process") == "forking"
    assert targets.natural_peer("thread-pool") == "gunicorn-gthread"
    assert targets.natural_peer("process-pool") == "gunicorn-sync"
    assert targets.natural_peer("async") == "uvicorn"
    assert targets.natural_peer("single") is None


def checks_by_what(checks, mode):
    return {check.what: check for check in checks if check.mode == mode}


def test_speed_targets_compare_with_each_named_peer():
    results = [
        server_result("async", True, wrk_result(6500)),
        server_result("uvicorn", False, wrk_result(5000)),
        server_result("nginx", False, wrk_result(10000)),
    ]
    checks = checks_by_what(targets.evaluate_checks(results), "async")
    assert checks["req/s vs uvicorn"].measured == "1.30×" and checks["req/s vs uvicorn"].met
    assert checks["req/s vs nginx"].measured == "0.65×" and checks["req/s vs nginx"].met


def test_missing_peer_makes_a_target_not_applicable_rather_than_missed():
    checks = targets.evaluate_checks([server_result("thread", True, wrk_result(1))])
    checks = checks_by_what(checks, "thread")
    assert checks["req/s vs http.server"].met is None


def test_missed_targets_are_reported():
    thread = wrk_result(3000, p99=25.0, non_2xx=2, socket_errors={"connect": 0, "read": 4})
    results = [
        server_result("thread", True, thread, exit_code=1),
        server_result("http.server", False, wrk_result(2000)),
    ]
    checks = checks_by_what(targets.evaluate_checks(results), "thread")
    assert checks["req/s vs http.server"].met is False
    assert checks["socket errors"].measured == "4" and checks["socket errors"].met is False
    assert checks["non-2xx responses"].met is False
    assert checks["p99 latency"].met is False
    assert checks["exit status after SIGINT"].met is False


def test_large_file_targets_compare_with_nginx_and_bound_rss_growth():
    results = [
        server_result("select", True, wrk_result(1), large=large(1700, growth_mb=40)),
        server_result("nginx", False, wrk_result(1), large=large(2000)),
    ]
    checks = checks_by_what(targets.evaluate_checks(results), "select")
    assert checks["large file MB/s vs nginx"].measured == "0.85×"
    assert checks["large file MB/s vs nginx"].met
    assert checks["RSS growth serving it"].measured == "40.0 MB"
    assert checks["RSS growth serving it"].met is False


def test_incomplete_download_is_a_failed_check():
    broken = model.LargeFileResult(200, 10, 1024**3, 1.0, 0, 0)
    checks = targets.evaluate_checks([server_result("thread", True, wrk_result(1), large=broken)])
    assert checks_by_what(checks, "thread")["large file download"].met is False


def test_repeated_downloads_report_the_fastest_with_the_worst_rss_growth():
    summary = measure.best_download([large(1500, growth_mb=9), large(2500), large(2000)])
    assert summary.mb_per_sec == 2500
    assert summary.rss_growth_mb == 9


def test_an_incomplete_download_among_repeats_is_the_one_reported():
    broken = model.LargeFileResult(200, 10, 1024**3, 9000 * model.MB, 0, 0)
    assert measure.best_download([large(2500), broken, large(2000)]) is broken


def test_a_mode_that_never_ran_fails_its_load_check():
    result = server_result("process", True, failures=["not serving after 20 s"])
    checks = checks_by_what(targets.evaluate_checks([result]), "process")
    assert checks["load test"].met is False
    assert "not serving" in checks["load test"].measured


# --- Markdown -----------------------------------------------------------------------------------


def test_markdown_has_machine_results_ratios_targets_and_raw_output():
    results = [
        server_result("thread", True, parsing.parse_wrk_output(WRK_WITH_ERRORS), large=large(900)),
        server_result("http.server", False, wrk_result(2000)),
        server_result("nginx", False, wrk_result(20000), large=large(1000)),
    ]
    text = markdown.render_markdown(report(results))
    assert text.startswith("# Benchmark\n")
    assert "- CPU: test CPU, 2 cores" in text
    assert "**Closed loop.**" in text and "- a note" in text
    row = "| **thread** | 9,998 | 0.61 ms | 4.30 ms | 22.85 ms | 16 (read 12, write 3, timeout 1) "
    assert row + "| 7 | 1 | 5.00× http.server |" in text
    assert "| thread | req/s vs http.server | 5.00× | ≥ 2.0× | met |" in text
    assert "| thread | socket errors | 16 | 0 | **MISSED** |" in text
    assert "| **thread** | 900 | 20.0 MB | 21.0 MB | 1.0 MB | ok |" in text
    assert "- Threading: `run thread`" in text
    assert "## Threading\n\n```text\n  Thread Stats" in text
    assert "Requests/sec:   9997.85" in text


def test_markdown_says_when_the_run_is_open_loop():
    text = markdown.render_markdown(report([], open_loop=True))
    assert "Open loop (wrk2 `-R10000`)" in text and "**Closed loop.**" not in text
    assert "-R10000 --latency http://127.0.0.1:PORT/page.html" in text
    assert "No mode of ours was measured" in text


def test_markdown_lists_failures_with_the_server_output():
    failed = server_result("select", True, failures=["exited with status 1 before serving"])
    failed.exit_code, failed.log_tail = 1, "Traceback (most recent call last):\nOSError: boom"
    text = markdown.render_markdown(report([failed]))
    assert "| **select** | failed: exited with status 1 before serving |" in text
    assert "## Problems" in text and "  OSError: boom" in text


def test_chart_embedding_uses_the_png_name():
    rep = report([server_result("thread", True, wrk_result(10))])
    rep.chart = "benchmark.png"
    assert "![req/s and latency per server](benchmark.png)" in markdown.render_markdown(rep)


def test_problems_name_unclean_exits_of_our_modes_and_any_traceback_of_ours():
    ours = server_result("select", True, wrk_result(1), exit_code=-9, tracebacks=4)
    ours.alive_at_stop, ours.traceback_kinds = True, {"BrokenPipeError": 4}
    peer = server_result("forking", False, wrk_result(1), exit_code=1)
    assert markdown.problem_summary(ours) == [
        "exit status -9 after SIGINT (expected 0)",
        "4 traceback(s) in its output (BrokenPipeError ×4)",
    ]
    assert markdown.problem_summary(peer) == []


def test_a_peers_log_of_clients_hanging_up_is_explained_not_reported():
    peer = server_result(
        "forking",
        False,
        wrk_result(1),
        tracebacks=5,
        traceback_kinds={"BrokenPipeError": 3, "ConnectionResetError": 2},
    )
    note = markdown.traceback_note(peer)
    assert note.startswith("5 traceback(s) in its output (BrokenPipeError ×3, Connection")
    assert "clients hanging up as each wrk run ends" in note and "not a failure" in note
    assert markdown.problem_summary(peer) == []


def test_a_peers_other_tracebacks_are_reported():
    peer = server_result(
        "uvicorn", False, wrk_result(1), tracebacks=1, traceback_kinds={"ValueError": 1}
    )
    assert markdown.problem_summary(peer) == ["1 traceback(s) in its output (ValueError ×1)"]
    assert markdown.traceback_note(server_result("nginx", False, wrk_result(1))) == ""


def test_a_server_that_died_earlier_is_not_blamed_for_its_sigint_exit():
    died = server_result("select", True, wrk_result(1), exit_code=-11, failures=["died"])
    assert markdown.problem_summary(died) == ["died"]
    checks = checks_by_what(targets.evaluate_checks([died]), "select")
    assert checks["exit status after SIGINT"].measured == "-11 (had died before SIGINT)"
    assert checks["exit status after SIGINT"].met is False


def test_results_table_shows_rss_before_and_after_the_load():
    result = server_result(
        "select", True, wrk_result(1), rss_start=25_700_000, rss_after_load=309_500_000
    )
    assert "| 25.7 → 309.5 MB |" in "\n".join(markdown.render_results_table([result]))


def test_server_log_tail_traceback_count_and_kinds(tmp_path):
    log = tmp_path / "select.log"
    trace = "Traceback (most recent call last):\n  boom\nBrokenPipeError: [Errno 32] Broken pipe\n"
    log.write_text("start\n" + trace * 2 + "stopped\n")
    tail, tracebacks, kinds = processes.read_log(log, lines=2)
    assert (tail, tracebacks) == ("BrokenPipeError: [Errno 32] Broken pipe\nstopped", 2)
    assert kinds == {"BrokenPipeError": 2}
    assert processes.read_log(tmp_path / "missing.log") == ("", 0, {})


# --- command line, defaults, peers --------------------------------------------------------------


def test_the_report_goes_to_a_fresh_folder_never_the_committed_benchmark_md():
    output = cli.default_output()
    assert output.name == "benchmark.md" and output.parent.parent == cli.RUNS_DIR
    assert output != model.REPO / "benchmark.md"
    assert cli.parse_args(["--quick"]).output is None
    assert cli.parse_args(["--output", "x.md"]).output == Path("x.md")


def test_quick_downloads_a_smaller_large_file_unless_told_a_size():
    quick = run.settings_from(cli.parse_args(["--quick"]), workers=4)
    full = run.settings_from(cli.parse_args([]), workers=4)
    sized = run.settings_from(cli.parse_args(["--quick", "--large-file-size", "8M"]), workers=4)
    assert quick.large_file_size == 256 * 1024**2 < full.large_file_size == 1024**3
    assert sized.large_file_size == 8 * 1024**2


def test_missing_wrk2_and_matplotlib_are_named_with_how_to_get_them(monkeypatch):
    closed = model.LoadGenerator("wrk", "wrk 4", open_loop=False)
    opened = model.LoadGenerator("wrk2", "wrk 4", open_loop=True)
    monkeypatch.setattr(run.importlib.util, "find_spec", lambda name: None)
    notes = run.missing_pieces(cli.parse_args([]), closed)
    assert any(note.startswith("wrk2 is not on PATH") for note in notes)
    assert f"No chart: matplotlib is not installed ({model.INSTALL_HINT})." in notes
    assert run.missing_pieces(cli.parse_args(["--no-chart"]), opened) in ([], [run.CURL_HINT])


def test_each_python_peer_also_runs_from_memory(tmp_path):
    ctx = servers.Context("python3", tmp_path / "s.py", tmp_path, tmp_path, 4, True)
    for name in ("uvicorn", "gunicorn-sync", "gunicorn-gthread"):
        on_disk = " ".join(servers.peer_spec(ctx, name).launch(1).argv)
        in_memory = servers.peer_spec(ctx, name + model.MEMORY_SUFFIX)
        assert name + model.MEMORY_SUFFIX in model.PEER_NAMES
        assert "_files:app" in on_disk and "from memory" in in_memory.title
        assert "_memory:app" in " ".join(in_memory.launch(1).argv)


def test_ratio_column_adds_the_in_memory_twin_when_measured():
    results = [
        server_result("async", True, wrk_result(6400)),
        server_result("uvicorn", False, wrk_result(3200)),
        server_result("uvicorn-memory", False, wrk_result(5000)),
    ]
    by_name = {result.spec.name: result for result in results}
    assert markdown.ratio_cell(results[0], by_name) == "2.00× uvicorn (1.28× from memory)"
    del by_name["uvicorn-memory"]
    assert markdown.ratio_cell(results[0], by_name) == "2.00× uvicorn"


def test_a_missing_peer_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(servers, "nginx_path", lambda: None)
    assert "apt-get install nginx" in servers.missing_peer_reason("nginx", {})
    reason = servers.missing_peer_reason("uvicorn-memory", {"uvicorn": None})
    assert reason == f"uvicorn is not installed for this Python ({model.INSTALL_HINT})"
    assert servers.missing_peer_reason("gunicorn-gthread-memory", {"gunicorn": "23"}) is None
