"""Tests for the rubric engine (tools/grading/rubric.py, scoring.py) on hand-made records.

Strategy: records follow the suite/grader contract (lab key, case, category, evidence, finding,
timeline); a "correct server" record set passes every item of the default rubric, and each test
breaks one rule and asserts the exact items lost, so the engine is checked in milliseconds,
without running a server.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))

from grading.rubric import RubricError, labs, load_rubric, rubric_path, rubric_toml  # noqa: E402
from grading.scoring import (  # noqa: E402
    EARNED,
    LOST,
    NOT_OFFERED,
    benchmark_results,
    run_modes,
    score_card,
)
from grading.timeline import timeline_png, timeline_text  # noqa: E402
from records import (  # noqa: E402
    ALL_BENCHMARKED,
    BENCHMARK,
    LEFT_OPEN,
    SEED,
    TESTS,
    ZOMBIES,
    card,
    case,
    check,
    correct_records,
    failing,
    grade_records,
    item,
    lost,
)


def test_a_correct_server_earns_every_item_and_extra_credit_it_benchmarks() -> None:
    benchmark = BENCHMARK + "| thread-pool | 1500 |\n| asyncio | 2000 |\n"
    result = grade_records(correct_records(), benchmark)
    assert lost(result) == {"extra-process-pool"}
    assert item(result, "extra-process-pool").reason.startswith("benchmark.md has no line")
    assert (result.score, result.extra_score, result.max_score) == (110.0, 10.0, 100.0)


def test_one_traversal_variant_in_one_mode_loses_the_whole_security_item() -> None:
    records = failing(
        correct_records(),
        lambda r: r.get("case") == "traversal-encoded"
        and r["variant"] == "bytewise"
        and r["mode"] == "process",
        evidence=[
            {
                "request": "GET /%2e%2e/outside/secret.txt HTTP/1.0\\r\\n\\r\\n",
                "response": "HTTP/1.0 200 OK\nContent-Length: 31",
                "expected": "400, 403, 404 or close, never a byte from outside the folder",
            }
        ],
    )
    result = grade_records(records)
    assert lost(result) == {"security", "extra-process-pool", "extra-thread-pool", "extra-async"}
    security = item(result, "security")
    assert security.earned == 0 and security.failed == ["traversal-encoded"]
    assert security.examples[0].request.startswith("GET /%2e%2e/outside")
    assert "It could look relative to the root directory" in security.quotes[0]


def test_broad_items_forgive_their_threshold_counting_distinct_cases() -> None:
    one = failing(correct_records(), lambda r: r.get("case") == "put-405")
    assert "method-405" not in lost(grade_records(one))
    assert "put-405 failed, within the 1 forgiven" in item(grade_records(one), "method-405").reason
    two = failing(one, lambda r: r.get("case") == "delete-405" and r["variant"] == "whole")
    result = grade_records(two)
    assert "method-405" in lost(result)
    assert item(result, "method-405").reason.startswith("2 of 3 checks failed")


def test_a_connection_left_open_is_one_finding_and_one_item() -> None:
    evidence = [
        {
            "request": "GET /page.html HTTP/1.0\\r\\n\\r\\n",
            "response": "HTTP/1.0 200 OK",
            "expected": "the server closes the connection after the response",
        }
    ]
    records = failing(
        correct_records(),
        lambda r: r["nodeid"].startswith(LEFT_OPEN),
        finding="left-open",
        evidence=evidence,
        message="connection still open 1 s after the response",
    )
    result = grade_records(records)
    assert lost(result) - {"extra-process-pool", "extra-thread-pool", "extra-async"} == {
        "closes-connection"
    }
    (found,) = result.findings
    assert (found.id, found.modes[:2]) == ("left-open", ["async", "process"])
    assert "http10" not in lost(result)


def test_a_required_mode_not_offered_loses_its_items_in_one_line() -> None:
    records = correct_records(("thread",))
    result = grade_records(records, offered=("thread",), graded=("thread",))
    assert {i.id for i in result.items if i.status == NOT_OFFERED} == {
        "concurrent-process",
        "real-processes",
        "no-zombie-buildup",
        "extra-thread-pool",
        "extra-process-pool",
        "extra-async",
    }
    notes = [note for note in result.notes if "not offered" in note]
    assert notes == [
        "required mode(s) process not offered by -h (it offers: thread): lost "
        "concurrent-process, real-processes, no-zombie-buildup"
    ]
    assert result.score == 86.0 and "get-file" not in lost(result)


def test_a_lab5_server_under_the_seed_rubric_still_gets_http_verdicts() -> None:
    assert run_modes(SEED, ()) == ["default"]
    records = correct_records(("default",))
    result = grade_records(records, offered=(), graded=("default",))
    assert item(result, "get-file").status == EARNED and item(result, "security").status == EARNED
    assert item(result, "concurrent-thread").status == NOT_OFFERED
    lab5 = load_rubric(rubric_path("lab5"))
    assert run_modes(lab5, ("thread",)) == ["default"]


def test_specific_items_pick_their_records_first() -> None:
    records = failing(correct_records(), lambda r: r["nodeid"].startswith(ZOMBIES))
    assert lost(grade_records(records)) >= {"no-zombie-buildup"}
    assert "real-processes" not in lost(grade_records(records))


def test_an_item_no_check_ran_is_lost_and_says_so() -> None:
    records = [r for r in correct_records() if r.get("lab") != "lab5.delay"]
    records.append(
        check(
            TESTS["lab5.delay"][0],
            "thread",
            "lab5.delay",
            verdict="skipped",
            message="chromium is not installed",
        )
    )
    reason = item(grade_records(records), "delay").reason
    assert reason == "not checked: no test of this rule ran (1 skipped: chromium is not installed)"
    assert [note for note in grade_records(records).notes if note.startswith("not checked")] == [
        "not checked on this machine (their checks were skipped, see each item): delay; they "
        "count as lost until a regrade where they can run"
    ]


def test_recommended_failures_are_reported_not_scored() -> None:
    extra = case(None, "date-header", "thread", tier="recommended", verdict="failed")
    result = grade_records(
        [*correct_records(), extra], BENCHMARK + "thread-pool 1 process-pool 2 async 3"
    )
    assert result.score == 115.0
    assert result.recommended.failing == ["date-header"]


def test_benchmark_needs_each_mode_as_a_word_beside_a_number() -> None:
    text = "# Results\nthread-pool: 1500 requests/s\nProcess | 900\n| async_io | 7 |\n"
    assert set(benchmark_results(text, ("thread", "process", "thread-pool"))) == {
        "process",
        "thread-pool",
    }
    result = grade_records(correct_records(), None)
    assert item(result, "benchmark").reason == "the submission has no benchmark.md"


def test_an_extra_mode_that_fails_its_concurrency_check_earns_nothing() -> None:
    records = failing(
        correct_records(), lambda r: r["mode"] == "async" and r.get("lab") == "lab6.concurrent"
    )
    result = grade_records(records, ALL_BENCHMARKED)
    assert lost(result) == {"extra-async"} and result.extra_score == 10.0


def test_grading_is_the_same_whatever_the_order_records_arrive_in() -> None:
    records = failing(correct_records(), lambda r: r.get("lab") == "lab5.malformed")
    first = grade_records(records)
    shuffled = records[:]
    random.Random(13).shuffle(shuffled)
    second = grade_records(shuffled)
    assert [(i.id, i.earned, i.reason, i.examples) for i in first.items] == [
        (i.id, i.earned, i.reason, i.examples) for i in second.items
    ]


def test_every_built_in_rubric_loads_and_prints_back_the_same() -> None:
    assert labs() == ["lab5", "later", "seed"]
    for lab in labs():
        rubric = load_rubric(rubric_path(lab))
        assert rubric.max_points == 100.0
        assert rubric.items[0].id == "security"


def test_printed_rubric_is_a_valid_rubric_file(tmp_path: Path) -> None:
    printed = tmp_path / "mine.toml"
    printed.write_text(rubric_toml(SEED))
    again = load_rubric(printed)
    assert again.items == SEED.items and again.required_modes == SEED.required_modes


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('required_modes = ["thread"]\n[points]\nnope = 5\n', "has points but no [item.nope]"),
        ('required_modes = ["thread"]\nwat = 1\n[points]\n', "unknown field 'wat'"),
        (
            'required_modes = ["thread"]\n[points]\nx = 5\n[item.x]\nlab = ["lab9.x"]\n',
            "lab key 'lab9.x' is not in harness/lab_rules.toml",
        ),
        (
            'required_modes = ["thread"]\n[points]\nx = -1\n[item.x]\nlab = ["lab5.http10"]\n',
            "points must be a number >= 0",
        ),
        (
            'required_modes = ["thread"]\n[points]\nx = 1\n[item.x]\nmodes = "some"\n'
            'lab = ["lab5.http10"]\n',
            'modes must be "required", "graded" or a list',
        ),
        ("required_modes = [\n", "not valid TOML"),
    ],
)
def test_a_bad_rubric_is_one_line_naming_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(RubricError, match=None) as error:
        load_rubric(path)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_item_results_say_lost_only_when_lost() -> None:
    result = grade_records(
        correct_records(), BENCHMARK + "thread-pool 1\nprocess-pool 2\nasync 3\n"
    )
    assert {i.status for i in result.items} == {EARNED}
    assert all(i.reason for i in result.items)
    broken = grade_records(failing(correct_records(), lambda r: r.get("lab") == "lab5.404"))
    assert item(broken, "not-found-404").status == LOST


def test_an_item_decided_by_a_finding_alone_is_earned_until_one_is_reported(
    tmp_path: Path,
) -> None:
    path = tmp_path / "crash.toml"
    path.write_text(
        'required_modes = ["thread"]\n[points]\nno-crash = 10\nget-file = 90\n'
        '[item.no-crash]\nfinding = ["crash"]\nmodes = "graded"\nquote = ["lab5.malformed"]\n'
        '[item.get-file]\nlab = ["lab5.get-file"]\n'
    )
    rubric = load_rubric(path)
    records = [case("lab5.get-file", "get-page", "thread")]
    result = score_card(card(("thread",), ("thread",)), records, rubric)
    assert item(result, "no-crash").reason == "no check reported crash" and result.score == 100
    crashed = case("lab5.get-file", "get-bad", "thread", verdict="failed", finding="crash")
    result = score_card(card(("thread",), ("thread",)), [*records, crashed], rubric)
    assert lost(result) == {"no-crash"} and result.findings[0].id == "crash"


def test_a_client_never_answered_is_drawn_open_and_bad_timelines_are_skipped() -> None:
    overlap = "concurrency_tests/test_overlap.py::test_overlap"
    records = [
        check(
            overlap, "thread", None, timeline={"delay": 5.0, "clients": [[0.0, 5.1], [0.0, None]]}
        ),
        check(overlap, "process", None, timeline={"delay": 5.0, "clients": [["x", 1]]}),
    ]
    result = score_card(card(("thread", "process"), ("thread", "process")), records)
    (timeline,) = result.timelines
    assert timeline.clients[1] == [0.0, None]
    text = timeline_text(result.timelines)
    assert "answered: 1 of 2" in text
    assert "client 2 |" + "?" * 40 + "| 0.0-no reply" in text
    assert timeline_png(result.timelines).startswith(b"\x89PNG")


def test_a_file_written_into_the_folder_loses_security_not_the_case_it_came_with() -> None:
    records = failing(
        correct_records(),
        lambda r: r.get("case") == "put-405" and r["mode"] == "thread" and r["variant"] == "whole",
        finding="tree-changed",
        message="the served tree changed: added upload.txt",
    )
    result = grade_records(records, ALL_BENCHMARKED)
    assert lost(result) == {"security"}
    assert item(result, "security").failed == ["put-405"]
