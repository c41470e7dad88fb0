"""The suite passes student-style correct servers and catches each one-rule broken variant.

Strategy: selftest/students/ holds servers written the ways students write the lab (not derived
from httpd/) and broken variants that each change one rule of one of them; EXPECTED.toml lists
every script with its course-year profile and modes. A correct server must pass every required
check of conformance/ and concurrency_tests/ in its modes (a slow run: heavy). A broken one is
run on the tests that target its rule (-k, its first mode, required tier): they must fail, each
record naming the lab rule it enforces and carrying evidence, and the correct server it was
made from must pass the same selection. The rubric items each script loses are the grader's
selftest (tools/grading).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
STUDENTS = HERE / "students"
EXPECTED = tomllib.loads((STUDENTS / "EXPECTED.toml").read_text())["server"]
CORRECT = sorted(name for name, entry in EXPECTED.items() if not entry["loses"])
RUN_TIMEOUT = 1800


@dataclass(frozen=True)
class Breakage:
    """A broken student server, its base, the mode and -k selection that catch it."""

    script: str
    base: str
    mode: str
    selection: str
    failing: str


BREAKAGES = (
    Breakage("broken_traversal.py", "threads_processes.py", "thread", "smoke-traversal", "smoke"),
    Breakage("broken_always_200.py", "threads_processes.py", "thread", "smoke-post", "405"),
    Breakage("broken_no_405.py", "pool_async.py", "async", "smoke-post", "405"),
    Breakage(
        "broken_crash_on_bad_request.py",
        "selectors_loop.py",
        "select",
        "smoke-bad-request",
        "400",
    ),
    Breakage(
        "broken_sequential_thread.py",
        "threads_processes.py",
        "thread",
        "test_default_mode_is_thread or test_thread_mode_starts",
        "thread",
    ),
    Breakage(
        "broken_delay_ignored.py",
        "threads_processes.py",
        "thread",
        "test_delay_holds",
        "delay",
    ),
    Breakage(
        "broken_zombies.py",
        "threads_processes.py",
        "process",
        "test_process_mode_zombies",
        "zombies",
    ),
    Breakage(
        "broken_sigint_drops_reply.py",
        "threads_processes.py",
        "thread",
        "test_in_flight_requests_finish_after_shutdown_signal and sigint-pid",
        "shutdown",
    ),
    Breakage(
        "broken_never_closes.py",
        "threads_processes.py",
        "thread",
        "test_connection_is_closed or smoke-get-page",
        "closed",
    ),
    Breakage(
        "broken_dies_on_client_abort.py",
        "threads_processes.py",
        "thread",
        "test_server_survives_clients_hanging_up",
        "hanging",
    ),
    Breakage(
        "broken_wrong_default_port.py",
        "threads_processes.py",
        "thread",
        "test_default_port",
        "port",
    ),
    Breakage("broken_http11.py", "threads_processes.py", "thread", "test_responses_are", "http10"),
    Breakage(
        "broken_stdout_logging.py",
        "threads_processes.py",
        "thread",
        "test_nothing_is_printed",
        "stdout",
    ),
    Breakage(
        "broken_404_from_cwd.py",
        "threads_processes.py",
        "thread",
        "test_404_page_comes_from",
        "404",
    ),
    Breakage(
        "broken_ignores_missing_folder.py",
        "threads_processes.py",
        "thread",
        "test_missing_folder",
        "folder",
    ),
    Breakage(
        "broken_no_verbose_option.py",
        "threads_processes.py",
        "thread",
        "test_help_lists or test_verbose",
        "",
    ),
)


def run_suite(script: str, modes: list[str], results: Path, selection: str = "") -> list[dict]:
    """Run the required tier of both suites on a student script; return the records."""
    argv = [sys.executable, "-m", "pytest", "conformance", "concurrency_tests"]
    argv += ["--server", str(STUDENTS / script), "--modes", ",".join(modes)]
    argv += ["--tier", "required", "-q", "-p", "no:cacheprovider", "--results-json", str(results)]
    argv += ["-k", selection] if selection else ["-n", "2"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HTTP_", "PYTEST_"))}
    done = subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    assert results.exists(), f"no results from {script}:\n{done.stdout[-3000:]}{done.stderr}"
    return json.loads(results.read_text())["tests"]


def not_passed(records: list[dict]) -> dict[str, str]:
    """Return nodeid -> verdict and message of every record that neither passed nor was skipped.

    The message (the failure's first lines, what was sent and what came back) is what tells a
    real defect from a race when a correct server fails once in a CI run.
    """
    return {
        r["nodeid"]: f"{r['verdict']}: {r['message'][:1500]}"
        for r in records
        if r["verdict"] not in ("passed", "skipped")
    }


def test_expected_table_lists_every_script() -> None:
    """EXPECTED.toml names every script of selftest/students/, and nothing else."""
    scripts = {path.name for path in STUDENTS.glob("*.py")}
    assert scripts == set(EXPECTED), sorted(scripts ^ set(EXPECTED))
    assert {b.script for b in BREAKAGES} == {name for name in EXPECTED if name not in CORRECT}


@pytest.mark.heavy
@pytest.mark.parametrize("script", CORRECT)
def test_correct_student_server_passes_every_required_check(script: str, tmp_path: Path) -> None:
    """A correct student-style server passes the whole required tier in each of its modes.

    A lab-5 server (no -c) is held to the lab-5 rules only: the lab-6 checks are not its lab's.
    """
    records = run_suite(script, EXPECTED[script]["modes"], tmp_path / "results.json")
    if EXPECTED[script]["lab"] == "lab5":
        records = [r for r in records if (r["lab"] or "").startswith("lab5.")]
    failed = not_passed(records)
    assert records and not failed, f"{script} must pass every required check: {failed}"
    unlabelled = [r["nodeid"] for r in records if r["lab"] is None and r["mode"] is not None]
    assert not unlabelled, f"required checks without a lab rule: {unlabelled[:5]}"


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda b: b.script.removesuffix(".py"))
def test_broken_student_server_fails_the_check_of_its_rule(
    breakage: Breakage, tmp_path: Path
) -> None:
    """The targeted checks fail the broken server (with a lab key and evidence); its base passes."""
    records = run_suite(
        breakage.script, [breakage.mode], tmp_path / "broken.json", breakage.selection
    )
    failed = [r for r in records if r["verdict"] == "failed"]
    assert failed, f"{breakage.script}: nothing failed in {[r['nodeid'] for r in records]}"
    assert all(r["lab"] and r["evidence"] for r in failed), [
        (r["nodeid"], r["lab"], r["evidence"]) for r in failed
    ]
    assert any(breakage.failing in r["nodeid"] + r["message"] for r in failed), failed[0]
    base = run_suite(breakage.base, [breakage.mode], tmp_path / "base.json", breakage.selection)
    assert base and not not_passed(base), f"{breakage.base} must pass: {not_passed(base)}"
