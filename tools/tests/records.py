"""Hand-made suite records that follow the suite/grader contract, for the grader's tests.

Strategy: a "correct server" record set (every lab rule checked by a few cases or tests, in every
mode) passes every item of the default rubric; tests then fail the records of one rule and
assert exactly what the grader makes of it. No server runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[1]
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))

from grading.rubric import load_rubric, rubric_path  # noqa: E402
from grading.scoring import EARNED, Scorecard, score_card  # noqa: E402

SEED = load_rubric(rubric_path("seed"))
VARIANTS = ("whole", "bytewise")
BENCHMARK = "| mode | req/s |\n|---|---|\n| thread | 1200 |\n| process | 900 |\n"
ALL_BENCHMARKED = BENCHMARK + "thread-pool 1\nprocess-pool 2\nasync 3\n"
CASES = {  # lab key -> the cases a correct server passes, a few per rule
    "lab5.security": ["traversal-dotdot", "traversal-encoded"],
    "lab5.get-file": ["get-page", "get-image", "get-nested"],
    "lab5.parse-headers": ["many-headers"],
    "lab5.http10": ["status-line-version"],
    "lab5.content-length": ["content-length-exact"],
    "lab5.404": ["missing-file"],
    "lab5.parse-all-types-405": ["post-405", "put-405", "delete-405"],
    "lab5.malformed": ["garbage-line", "no-version", "bad-version"],
    "lab5.large-files": ["get-10mb"],
}
TESTS = {  # lab key -> (test nodeid, per mode?) of the non-case checks
    "lab5.cli": ("server_tests/test_cli.py::test_verbose_is_accepted", False),
    "lab5.default-folder": ("concurrency_tests/test_cli.py::test_no_f_serves_cwd", False),
    "lab5.class-norms": ("concurrency_tests/test_cli.py::test_nothing_on_stdout", False),
    "lab6.default-port": ("concurrency_tests/test_cli.py::test_default_port_8085", False),
    "lab6.c-flag": ("concurrency_tests/test_cli.py::test_no_c_runs_threads", False),
    "lab5.delay": ("concurrency_tests/test_overlap.py::test_delay_waits", True),
    "lab6.concurrent": ("concurrency_tests/test_overlap.py::test_delayed_requests_overlap", True),
    "lab6.low-level-objects": ("concurrency_tests/test_process_model.py::test_model", True),
    "lab6.graceful-shutdown": ("concurrency_tests/test_shutdown.py::test_in_flight", True),
}
ZOMBIES = "concurrency_tests/test_process_model.py::test_zombies_do_not_accumulate"
HANG_UP = "conformance/test_invariants.py::test_server_survives_clients_hanging_up"
LEFT_OPEN = "conformance/test_invariants.py::test_connection_closed_after_response"
ALL_MODES = ("thread", "process", "thread-pool", "process-pool", "async")


def case(lab: str, case_id: str, mode: str, variant: str = "whole", **extra) -> dict:
    """Return a conformance record as the harness writes it."""
    record = {
        "nodeid": f"conformance/test_conformance.py::test_case[{mode}-{case_id}-{variant}]",
        "verdict": "passed",
        "tier": "required",
        "mode": mode,
        "lab": lab,
        "case": case_id,
        "category": "cases",
        "variant": variant,
        "message": "",
    }
    return record | extra


def check(nodeid: str, mode: str | None, lab: str | None, **extra) -> dict:
    """Return a non-case record (parametrized by mode unless mode is None)."""
    name = f"{nodeid}[{mode}]" if mode else nodeid
    record = {"nodeid": name, "verdict": "passed", "tier": "required", "mode": mode, "lab": lab}
    return record | {"case": None, "category": nodeid.split("::")[0], "message": ""} | extra


def correct_records(modes: tuple[str, ...] = ALL_MODES) -> list[dict]:
    """Return the records of a server that passes everything in `modes`."""
    records = [
        case(lab, case_id, mode, variant)
        for mode in modes
        for lab, ids in CASES.items()
        for case_id in ids
        for variant in VARIANTS
    ]
    for lab, (nodeid, per_mode) in TESTS.items():
        records += [check(nodeid, mode, lab) for mode in modes] if per_mode else []
        records += [] if per_mode else [check(nodeid, None, lab)]
    records += [check(ZOMBIES, "process", "lab6.worker-per-client")] if "process" in modes else []
    records += [check(HANG_UP, mode, "lab5.client-abort") for mode in modes]
    records += [check(LEFT_OPEN, mode, "lab5.http10-close") for mode in modes]
    return records


def card(offered: tuple[str, ...] = ALL_MODES, graded: tuple[str, ...] = ALL_MODES) -> Scorecard:
    """Return an empty Scorecard of a server whose -h offers `offered`."""
    return Scorecard(
        name="alice",
        submission="/subs/alice",
        graded_modes=list(graded),
        offered_modes=list(offered),
    )


def grade_records(records: list[dict], benchmark: str | None = BENCHMARK, **card_args) -> Scorecard:
    """Score records by the seed rubric."""
    return score_card(card(**card_args), records, SEED, benchmark)


def lost(result: Scorecard) -> set[str]:
    """Return the ids of every item not earned (extra credit included)."""
    return {item.id for item in result.items if item.status != EARNED}


def item(result: Scorecard, item_id: str):
    """Return one item's result."""
    return next(entry for entry in result.items if entry.id == item_id)


def failing(records: list[dict], predicate, **changes) -> list[dict]:
    """Return records with those matching `predicate` failed (and changed)."""
    return [r | {"verdict": "failed", **changes} if predicate(r) else r for r in records]
