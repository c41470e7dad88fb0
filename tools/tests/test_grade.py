"""Tests for tools/grade.py and tools/grading/: scoring, rendering, names, bad input, Gradescope.

Strategy: hand-built results records (the shape harness/plugin.py writes) go through the pure
scoring and rendering functions, so almost everything runs in milliseconds without a server.
One end-to-end test grades our own server for real, narrowed to one smoke case in one mode.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1]
ROOT = TOOLS.parent
sys.path.insert(0, str(TOOLS))

import grade  # noqa: E402
from grading import (  # noqa: E402
    GradeOptions,
    Scorecard,
    grade_submission,
    score_card,
    unique_names,
)
from grading.render import gradescope_results, scorecard_json, scorecard_markdown  # noqa: E402
from grading.runner import SubmissionError, find_server, merge, run_with_timeout  # noqa: E402
from grading.scoring import GROUPS, NOT_OFFERED, NOT_RUN  # noqa: E402
from grading.summary import summary_markdown, write_outputs  # noqa: E402

CONFORMANCE = "conformance/test_conformance.py::test_case"
OVERLAP = "concurrency_tests/test_overlap.py::test_delayed_requests_overlap"
SIGNALS = "concurrency_tests/test_shutdown.py::test_in_flight_requests_finish"
VARIANTS = ("whole", "bytewise", "first-byte", "split-crlf")
WEIGHT = {group.name: group.weight for group in GROUPS}


def case(
    case_id: str, verdict: str = "passed", *, mode: str = "thread", variant: str = "whole", **extra
) -> dict:
    """Return a conformance record as the harness writes it."""
    return {
        "nodeid": f"{CONFORMANCE}[{mode}-{case_id}-{variant}]",
        "verdict": verdict,
        "duration": 0.1,
        "message": extra.pop("message", ""),
        "case_id": case_id,
        "mode": mode,
        "variant": variant,
        "tier": extra.pop("tier", "required"),
        "source": extra.pop("source", f"lab5: rule of {case_id}"),
        "sent": "'GET /page.html HTTP/1.0\\r\\n\\r\\n'",
        "received": "outcome: response\n  HTTP/1.0 200 OK",
        **extra,
    }


def check(nodeid: str, verdict: str = "passed", *, mode: str | None = "thread", **extra) -> dict:
    """Return a non-case record (a concurrency test), parametrized by mode unless mode is None."""
    params = f"[{mode}{extra.pop('params', '')}]" if mode else ""
    record = {"nodeid": nodeid + params, "verdict": verdict, "duration": 1.0, "message": ""}
    return record | {"mode": mode, "tier": "required", **extra}


def card(*modes: str, offered: tuple[str, ...] = ("thread", "process")) -> Scorecard:
    """Return an empty Scorecard grading `modes` (default thread) of a server offering `offered`."""
    graded = list(modes or ("thread",))
    return Scorecard(
        name="alice", submission="/subs/alice", graded_modes=graded, offered_modes=list(offered)
    )


def test_case_variants_count_together_as_one_item() -> None:
    records = [
        case("get-page", "failed" if v == "bytewise" else "passed", variant=v) for v in VARIANTS
    ]
    result = score_card(card(), records)
    (group,) = result.modes[0].groups
    assert (group.items, group.items_passed, group.fraction) == (1, 0, 0.75)
    assert result.score == 75.0
    assert result.modes[0].required.passed == 3 and result.modes[0].required.failed == 1


def test_groups_are_weighted_not_counted() -> None:
    http = [case(f"case-{n}") for n in range(300)]
    result = score_card(card(), [*http, check(OVERLAP, "failed")])
    http_weight, overlap_weight = (
        WEIGHT["HTTP conformance cases"],
        WEIGHT["Concurrent service under --delay"],
    )
    assert result.score == pytest.approx(
        100 * http_weight / (http_weight + overlap_weight), abs=0.01
    )


def test_parametrizations_of_a_test_count_once_per_mode() -> None:
    records = [
        check(SIGNALS, "passed", params="-SIGINT"),
        check(SIGNALS, "failed", params="-SIGTERM"),
        check(SIGNALS, "passed", mode="process", params="-SIGINT"),
        check(SIGNALS, "passed", mode="process", params="-SIGTERM"),
    ]
    result = score_card(card("thread", "process"), records)
    assert [mode.points for mode in result.modes] == [25.0, 50.0]
    (failure,) = result.failures
    assert (failure.mode, failure.variants) == ("thread", ["thread-SIGTERM"])


def test_mode_not_offered_scores_zero_with_a_note() -> None:
    result = score_card(card("thread", "process", offered=("thread",)), [case("get-page")])
    assert [mode.status for mode in result.modes] == ["graded", NOT_OFFERED]
    assert result.score == 50.0
    assert any("process is not offered" in note for note in result.notes)


def test_recommended_tier_is_reported_not_scored() -> None:
    records = [case("get-page"), case("date-header", "failed", tier="recommended")]
    result = score_card(card(), records)
    assert result.score == 100.0
    assert result.modes[0].recommended.failed == 1
    assert result.failures[0].tier == "recommended"


def test_skips_are_listed_not_counted_and_not_run_fails() -> None:
    records = [
        case("get-page"),
        check(OVERLAP, "skipped", message="chromium not installed"),
        check(SIGNALS, None, message="not run: the run was stopped after 5 s"),
    ]
    result = score_card(card(), records)
    assert [(skip.count, skip.reason) for skip in result.skipped] == [
        (1, "skipped: chromium not installed")
    ]
    signals = next(g for g in result.modes[0].groups if g.group.startswith("Graceful"))
    assert signals.fraction == 0.0 and result.failures[0].verdicts == [NOT_RUN]
    assert not any(g.group.startswith("Concurrent") for g in result.modes[0].groups)


def test_tests_without_a_mode_count_in_every_mode() -> None:
    records = [
        case("get-page"),
        case("get-page", mode="process"),
        check(SIGNALS, "failed", mode=None),
    ]
    result = score_card(card("thread", "process"), records)
    assert all(mode.required.failed == 1 for mode in result.modes)
    assert result.score < 100.0


def test_server_crashes_become_notes_per_mode() -> None:
    death = (
        "server under test (mode process, pid 4242, port 5000) died: exit status -13 "
        "(killed by SIGPIPE); last stderr lines:\nBrokenPipeError"
    )
    stopped = death.replace("4242", "4343").replace(
        "-13 (killed by SIGPIPE)", "-15 (killed by SIGTERM)"
    )
    records = [case("get-page", "failed", mode="process", message=death)] * 2
    records.append(case("post-405", "failed", mode="process", message=stopped))
    result = score_card(card("process"), records)
    crashes = [note for note in result.notes if "crashed" in note]
    assert crashes == [
        "server crashed in process mode 1 time(s) (exit status -13 (killed by SIGPIPE))"
    ]


def test_failure_problem_is_the_assertion_of_a_traceback() -> None:
    message = (
        "mode = 'thread'\n\n>       assert not broken\nE       AssertionError: reset after 0 s\n"
    )
    result = score_card(card(), [check(SIGNALS, "failed", message=message)])
    assert result.failures[0].problem == "reset after 0 s"


def failing_card() -> Scorecard:
    """Return a scored card with one required failure whose message is long."""
    message = "[gw1] linux -- Python 3.11.7 /usr/bin/python3\nget-page (lab5: rule of get-page): "
    message += "status 500 is not one of [200]\n" + "\n".join(f"line {n}" for n in range(100))
    records = [case("get-page", "failed", message=message), case("post-405")]
    return score_card(card("thread", "process", offered=("thread",)), records)


def test_scorecard_markdown_shows_score_modes_and_failure_details() -> None:
    text = scorecard_markdown(failing_card())
    assert "**25.00 / 100**" in text and "| process | not offered |" in text
    assert "### lab5: rule of get-page" in text
    assert "- **get-page** (mode thread; failed: whole): status 500 is not one of [200]" in text
    assert "[gw1]" not in text and "line 20" in text and "line 90" not in text
    assert "more lines" in text and "How the score is computed" in text


def test_scorecard_json_holds_the_same_facts() -> None:
    document = json.loads(json.dumps(scorecard_json(failing_card())))
    assert document["score"] == 25.0 and document["failures"][0]["name"] == "get-page"
    assert [mode["status"] for mode in document["modes"]] == ["graded", "not offered"]
    assert {row["group"] for row in document["weights"]} == set(WEIGHT)


def test_gradescope_results_follow_the_format() -> None:
    document = json.loads(json.dumps(gradescope_results(failing_card())))
    assert set(document) >= {"score", "output", "visibility", "tests"}
    assert document["score"] == 25.0
    scored = [t for t in document["tests"] if "score" in t]
    assert sum(t["max_score"] for t in scored) == pytest.approx(100.0)
    assert sum(t["score"] for t in scored) == pytest.approx(25.0)
    for entry in document["tests"]:
        assert {"name", "status", "output", "visibility"} <= set(entry)
        assert entry["status"] in ("passed", "failed") and entry["visibility"] == "visible"
    assert "get-page [whole]: status 500" in scored[0]["output"]


def test_unique_names_from_folders_and_files() -> None:
    paths = ["/a/alice", "/b/alice/http_server.py", "/c/Alice", "/d/bob.py", "/e/summary.md"]
    assert unique_names(paths) == ["alice", "alice-2", "Alice-3", "bob", "summary.md-2"]


def test_find_server_rejects_bad_input_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "binary.py").write_bytes(b"\x7fELF\x00\x01\xff\xfe")
    cases = {"missing": "no such file", "empty": "no http_server.py", "notes.txt": "not a Python"}
    for name, expected in (cases | {"binary.py": "not a Python file"}).items():
        with pytest.raises(SubmissionError, match=expected) as error:
            find_server(tmp_path / name)
        assert "\n" not in str(error.value)
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "http_server.py").write_text("print('hi')\n")
    assert find_server(tmp_path / "ok") == (tmp_path / "ok" / "http_server.py").resolve()


def test_bad_submission_is_recorded_and_the_exit_status_says_so(tmp_path: Path) -> None:
    output = tmp_path / "grades"
    status = grade.main(
        [str(tmp_path / "nobody"), str(tmp_path / "nobody"), "--output", str(output)]
    )
    assert status == 1
    first = json.loads((output / "nobody" / "scorecard.json").read_text())
    assert first["status"] == "invalid" and "no such file or folder" in first["error"]
    assert (output / "nobody-2" / "results.json").is_file()
    summary = (output / "summary.md").read_text()
    assert summary.count("| [nobody") == 2 and "invalid: " in summary


def test_merge_counts_tests_a_stopped_run_never_reached() -> None:
    collected = [{"nodeid": "a", "mode": "thread", "tier": "required"}, {"nodeid": "b"}]
    records = [{"nodeid": "a", "verdict": "passed", "case_id": None, "message": ""}]
    merged = merge(collected, records, "not run: stopped")
    assert merged[0]["verdict"] == "passed" and merged[0]["mode"] == "thread"
    assert merged[1] == {"nodeid": "b", "message": "not run: stopped"}


def test_run_with_timeout_stops_the_run(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"]
    code, timed_out, tail = run_with_timeout(command, tmp_path / "log", 1.0)
    assert timed_out and code is not None and "started" in tail


def test_summary_has_one_row_per_submission() -> None:
    cards = [failing_card(), score_card(card(), [case("get-page")])]
    text = summary_markdown(cards)
    assert text.count("\n| [alice](alice/scorecard.md) |") == 2
    assert "| 25.00 |" in text and "| 100.00 |" in text and "not offered" in text


def test_command_line_rejects_bad_numbers() -> None:
    with pytest.raises(SystemExit) as exit_info:
        grade.parse_args(["sub", "--jobs", "-1"])
    assert exit_info.value.code == 2


def test_grading_our_server_end_to_end(tmp_path: Path) -> None:
    options = GradeOptions(
        modes=("thread",), tier="required", jobs=0, pytest_args=("-k", "smoke-get-page")
    )
    result = grade_submission(ROOT, options, "ours")
    written = write_outputs([result, result], tmp_path)
    assert result.status == "graded" and result.score == 100.0, [*result.notes, result.error]
    assert result.modes[0].required.passed == 4
    names = {"scorecard.md", "scorecard.json", "results.json"}
    assert {path.name for path in (tmp_path / "ours").iterdir()} == names
    assert tmp_path / "summary.md" in written
