"""The concurrency suite catches deliberately broken servers, and passes ours on the same tests."""

# Strategy: each selftest/broken/conc_*.py is our server with one fault. For each, the concurrency
# suite runs twice at once in subprocesses, on the broken server and on ours, in one mode and
# narrowed with -k to the test that targets the fault, each writing --results-json. The broken run
# must fail exactly that test, for the stated reason; our run must pass it.

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OURS = REPO / "http_server.py"
RUN_TIMEOUT = 300


@dataclass(frozen=True)
class Fault:
    """A broken server, the mode and -k selection that target it, and how it must fail."""

    script: str
    mode: str
    selection: str
    failing: str
    reason: str

    @property
    def id(self) -> str:
        """The pytest id: the script's name and the mode."""
        return f"{self.script.removeprefix('conc_').removesuffix('.py')}-{self.mode}"


OVERLAP = "test_delayed_requests_are_served_concurrently and 4-clients"
IN_FLIGHT = "test_in_flight_requests_finish_after_shutdown_signal"
FAULTS = (
    Fault("conc_thread_sequential.py", "thread", OVERLAP, "4-clients", "must overlap"),
    Fault("conc_async_blocking_delay.py", "async", OVERLAP, "4-clients", "must overlap"),
    Fault("conc_delay_ignored.py", "thread", OVERLAP, "4-clients", "ignores -d"),
    Fault(
        "conc_pool_thread_per_request.py",
        "thread-pool",
        "test_thread_pool_keeps_a_fixed_set_of_threads",
        "thread-pool",
        "pre-started and bounded",
    ),
    Fault(
        "conc_pool_of_one.py",
        "thread-pool",
        "test_delayed_requests_are_served_concurrently and not 10",
        "thread-pool",
        "must overlap",
    ),
    Fault(
        "conc_process_zombies.py",
        "process",
        "test_process_mode_reaps_each_child_at_once",
        "process",
        "reaped as soon as",
    ),
    Fault(
        "conc_sigint_exits_at_once.py",
        "thread",
        f"{IN_FLIGHT} and sigint-pid",
        "sigint-pid",
        "complete, exact 200",
    ),
    Fault(
        "conc_sigint_ignored.py",
        "thread",
        f"{IN_FLIGHT} and sigint-pid",
        "sigint-pid",
        "exit status still running",
    ),
    Fault(
        "conc_second_sigint_ignored.py",
        "thread",
        "test_second_sigint_forces_an_immediate_exit",
        "thread",
        "second SIGINT during the drain",
    ),
    Fault(
        "conc_children_die_on_sigint.py",
        "process",
        f"{IN_FLIGHT} and sigint-group",
        "sigint-group",
        "complete, exact 200",
    ),
    Fault(
        "conc_idle_takes_a_worker.py",
        "thread-pool",
        "test_idle_connections_do_not_delay_other_clients",
        "thread-pool",
        "idle connections open",
    ),
    Fault(
        "conc_idle_takes_a_worker.py",
        "thread",
        "test_idle_connection_does_not_delay_shutdown",
        "thread",
        "must not keep the server alive",
    ),
    Fault(
        "conc_leaks_files.py",
        "thread",
        "test_500_concurrent_clients",
        "thread",
        "release what they used",
    ),
    Fault(
        "conc_listens_while_draining.py",
        "thread",
        "test_new_connections_are_refused_after_shutdown_signal and sigint-pid",
        "sigint-pid",
        "none refused",
    ),
)


def start_suite(server: Path, fault: Fault, results: Path) -> subprocess.Popen:
    """Start the concurrency suite on `server` in the fault's mode and selection."""
    argv = [sys.executable, "-m", "pytest", "concurrency_tests", "--server", str(server)]
    argv += ["--modes", fault.mode, "--tier", "recommended", "-k", fault.selection, "-q"]
    argv += ["-p", "no:cacheprovider", "--results-json", str(results)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HTTP_", "PYTEST_"))}
    return subprocess.Popen(
        argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def finish_suite(run: subprocess.Popen, results: Path) -> tuple[dict[str, dict], str]:
    """Wait for a suite run; return (test name with id -> results record, output tail)."""
    try:
        output, _ = run.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        run.kill()
        output = run.communicate()[0] + f"\n(killed after {RUN_TIMEOUT} s)"
    records = json.loads(results.read_text())["tests"] if results.exists() else []
    return {r["nodeid"].split("::")[-1]: r for r in records}, output[-5000:]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.id)
def test_broken_server_fails_the_targeted_test_and_ours_passes(
    fault: Fault, tmp_path: Path
) -> None:
    """The suite fails the broken server on the targeted test only, for its reason; ours passes."""
    broken_run = start_suite(HERE / "broken" / fault.script, fault, tmp_path / "broken.json")
    our_run = start_suite(OURS, fault, tmp_path / "ours.json")
    broken, broken_output = finish_suite(broken_run, tmp_path / "broken.json")
    ours, our_output = finish_suite(our_run, tmp_path / "ours.json")
    failed = {name: r for name, r in broken.items() if r["verdict"] != "passed"}
    assert len(failed) == 1 and fault.failing in next(iter(failed)), (
        f"{fault.script}: exactly the test matching {fault.failing!r} should fail, but the "
        f"verdicts were { {name: r['verdict'] for name, r in broken.items()} }\n{broken_output}"
    )
    record = next(iter(failed.values()))
    assert (
        record["verdict"] == "failed" and fault.reason in record["message"]
    ), f"{fault.script}: the failure should say {fault.reason!r}:\n{record['message']}"
    not_passed = {name: r["verdict"] for name, r in ours.items() if r["verdict"] != "passed"}
    assert set(ours) == set(broken) and not not_passed, (
        f"our server must pass the same selection ({sorted(broken)}), got {not_passed or ours}"
        f"\n{our_output}"
    )
