"""Each hostile-client check fails the broken server built to fall to its attack, and only it."""

# Strategy: each selftest/broken/hostile_*.py falls to exactly one attack of
# concurrency_tests/test_hostile.py. The whole file (but its @heavy flood) runs on it in a
# subprocess, in the one mode it offers, writing --results-json: the targeted case must be the
# only one failing, for the stated reason, and every other case must pass (so no broken server
# proves a check by failing them all). That the same checks pass a correct server is shown by the
# suite itself, which runs test_hostile.py on our server in every mode. Heavy: six runs of about a
# minute each.

from __future__ import annotations

from pathlib import Path

import pytest

from selftest.test_concurrency_selftest import Fault, finish_suite, start_suite

HERE = Path(__file__).resolve().parent
EVERY_CASE = "test_hostile and not 1500-silent"
FAULTS = (
    Fault(
        "hostile_flood_capped_threads.py",
        "thread",
        EVERY_CASE,
        "test_silent_connection_flood",
        "silent connections held open",
    ),
    Fault("hostile_slowloris_pool.py", "thread", EVERY_CASE, "test_slowloris", "slowloris"),
    Fault("hostile_slow_reader_pool.py", "thread", EVERY_CASE, "test_slow_readers", "slow reader"),
    Fault("hostile_stray_bytes_reset.py", "thread", EVERY_CASE, "test_stray_bytes", "were cut"),
    Fault(
        "hostile_abort_crashes.py",
        "single",
        EVERY_CASE,
        "test_aborted_downloads",
        "still be running",
    ),
    Fault("hostile_shrink_spins.py", "thread", EVERY_CASE, "test_shrinking_file", "must end"),
)


@pytest.mark.heavy
@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.id)
def test_broken_server_fails_only_the_check_for_its_attack(fault: Fault, tmp_path: Path) -> None:
    """The broken server fails the case for its attack, for its reason, and passes the others."""
    results = tmp_path / "broken.json"
    run = start_suite(HERE / "broken" / fault.script, fault, results)
    records, output = finish_suite(run, results)
    verdicts = {name: record["verdict"] for name, record in records.items()}
    failed = [name for name, verdict in verdicts.items() if verdict != "passed"]
    assert len(failed) == 1 and fault.failing in failed[0], (
        f"{fault.script} (mode {fault.mode}): exactly the case matching {fault.failing!r} "
        f"should fail and every other pass, but the verdicts were {verdicts}\n{output}"
    )
    record = records[failed[0]]
    assert (
        record["verdict"] == "failed" and fault.reason in record["message"]
    ), f"{fault.script}: the failure should say {fault.reason!r}:\n{record['message']}"
