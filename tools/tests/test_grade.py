"""Tests for tools/grade.py and tools/grading/: scoring, rendering, names, bad input, Gradescope.

Strategy: hand-built results records (the shape harness/plugin.py writes) go through the pure
scoring and rendering functions, so almost everything runs in milliseconds without a server.
One end-to-end test grades our own server for real, narrowed to one smoke case in one mode.
"""

from __future__ import annotations

import dataclasses
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
    load_rubric,
    unique_names,
)
from grading.render import gradescope_results, scorecard_json, scorecard_markdown  # noqa: E402
from grading.runner import SubmissionError, find_server, merge, run_with_timeout  # noqa: E402
from grading.summary import summary_markdown, write_outputs  # noqa: E402
from grading.timeline import timeline_text  # noqa: E402
from PIL import Image  # noqa: E402
from records import check, correct_records, failing, grade_records  # noqa: E402


def failing_card() -> Scorecard:
    """Return a card that lost security (with evidence) and method-405, and has a timeline."""
    evidence = [
        {
            "request": "GET /../outside/secret.txt HTTP/1.0\\r\\n\\r\\n",
            "response": "HTTP/1.0 200 OK\nContent-Length: 31\nContent-Type: text/plain",
            "expected": "400, 403, 404 or close, never a byte from outside the folder",
            "exit_status": "",
            "stderr_tail": "",
        }
    ]
    traceback = (
        "mode = 'thread'\n\n>       assert reply.status == 405\nE       AssertionError: got 200"
    )
    records = failing(
        correct_records(),
        lambda r: r.get("case") in ("traversal-dotdot", "post-405", "put-405"),
        evidence=evidence,
        message=traceback,
    )
    records += [
        check(
            "concurrency_tests/test_overlap.py::test_overlap",
            mode,
            None,
            tier="recommended",
            timeline={
                "delay": 5.0,
                "clients": [[0.0, 5.0], [0.0 if mode == "thread" else 5.0, 10.0]],
            },
        )
        for mode in ("thread", "process")
    ]
    return grade_records(records)


def test_scorecard_is_short_and_shows_the_table_lost_items_and_examples() -> None:
    text = scorecard_markdown(failing_card())
    assert len(text.splitlines()) < 150
    assert "| security | 10 | **0** | traversal-dotdot failed: " in text
    assert "### security: No request reaches outside the served folder" in text
    assert "> It could look relative to the root directory" in text
    assert "sent:     GET /../outside/secret.txt HTTP/1.0\\r\\n\\r\\n" in text
    assert "got:      HTTP/1.0 200 OK\n          Content-Length: 31" in text
    assert "Traceback" not in text and ">       assert" not in text
    assert (
        "![timelines](timeline.png)" in text and "answered one at a time (5.0 s to 10.0 s)" in text
    )


def test_scorecard_json_holds_every_detail() -> None:
    document = json.loads(json.dumps(scorecard_json(failing_card())))
    security = next(entry for entry in document["items"] if entry["id"] == "security")
    assert security["failed"] == ["traversal-dotdot"] and security["examples"][0]["request"]
    assert document["lab"] == "seed" and document["max_score"] == 100.0


def test_gradescope_has_one_test_per_rubric_item_with_the_request_that_lost_it() -> None:
    result = failing_card()
    document = json.loads(json.dumps(gradescope_results(result)))
    assert document["score"] == result.score
    scored = [test for test in document["tests"] if "score" in test]
    assert [test["name"].split(":")[0] for test in scored] == [
        entry.id + (" (extra credit)" if entry.extra else "") for entry in result.items
    ]
    assert sum(t["max_score"] for t in scored if "extra" not in t["name"]) == 100.0
    security = scored[0]
    assert security["status"] == "failed" and "GET /../outside/secret.txt" in security["output"]
    for entry in document["tests"]:
        assert {"name", "status", "output", "visibility"} <= set(entry)


def test_a_required_tier_card_says_the_recommended_tier_was_not_run() -> None:
    card = dataclasses.replace(grade_records(correct_records()), tier="required")
    assert "Recommended tier (RFC 9110/9112, good practice): not run" in scorecard_markdown(card)
    names = [test["name"] for test in gradescope_results(card)["tests"]]
    assert "recommended tier (not scored)" not in names
    both = dataclasses.replace(card, tier="recommended")
    assert "recommended tier (not scored)" in [t["name"] for t in gradescope_results(both)["tests"]]


def test_timeline_png_is_written_beside_the_scorecard(tmp_path: Path) -> None:
    folder = write_outputs([failing_card()], tmp_path)[0]
    with Image.open(folder / "timeline.png") as image:
        assert image.format == "PNG" and image.width > 100
    text = timeline_text(failing_card().timelines)
    assert "client 2 |                    ====================|" in text


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
    text = summary_markdown(
        [failing_card(), grade_records(correct_records(), "thread 1 process 2")]
    )
    assert text.count("\n| [alice](alice/scorecard.md) |") == 2
    assert "| 86 | 0 | security, method-405 |" in text


def test_command_line_rejects_bad_numbers() -> None:
    with pytest.raises(SystemExit) as exit_info:
        grade.parse_args(["sub", "--jobs", "-1"])
    assert exit_info.value.code == 2


def test_command_line_chooses_the_rubric_of_a_course_year(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--lab picks the year's rubric and its interpreter; a missing one is a usage error."""
    installed = {"python3.12": "/opt/bin/python3.12"}
    monkeypatch.setattr(grade.shutil, "which", installed.get)
    later = grade.parse_args(["sub", "--lab", "later"])
    assert later.rubric.required_modes == ("thread", "thread-pool", "select")
    assert later.python == "/opt/bin/python3.12"
    seed = grade.parse_args(["sub", "--required-modes", "thread,async", "--python", "python3"])
    assert seed.rubric.name == "seed" and seed.rubric.required_modes == ("thread", "async")
    installed.clear()
    with pytest.raises(SystemExit) as exit_info:
        grade.parse_args(["sub", "--lab", "later"])
    assert exit_info.value.code == 2
    assert "runs servers with python3.12, which is not installed here" in capsys.readouterr().err


def test_a_bad_rubric_file_is_a_one_line_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "mine.toml"
    bad.write_text('required_modes = ["thread"]\n[points]\nspeed = 5\n')
    with pytest.raises(SystemExit) as exit_info:
        grade.parse_args(["sub", "--rubric", str(bad)])
    assert exit_info.value.code == 2
    assert "item 'speed' has points but no [item.speed] definition" in capsys.readouterr().err


def test_print_rubric_prints_a_rubric_file_it_can_read_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--print-rubric works without the rubric's interpreter (it runs no server)."""
    monkeypatch.setattr(grade.shutil, "which", lambda name: None)
    assert grade.main(["--print-rubric", "--lab", "lab5"]) == 0
    printed = tmp_path / "printed.toml"
    printed.write_text(capsys.readouterr().out)
    assert [item.id for item in load_rubric(printed).items][:2] == ["security", "get-file"]


def test_grading_our_server_end_to_end(tmp_path: Path) -> None:
    options = GradeOptions(
        rubric=load_rubric(TOOLS / "tests" / "smoke_rubric.toml"),
        tier="required",
        workers=0,
        pytest_args=("-k", "smoke-get-page"),
    )
    result = grade_submission(ROOT, options, "ours")
    written = write_outputs([result, result], tmp_path / "out")
    assert result.status == "graded" and result.score == 100.0, [*result.notes, result.error]
    assert result.graded_modes == ["thread"] and result.required.passed == 4
    names = {"scorecard.md", "scorecard.json", "results.json"}
    assert {path.name for path in (tmp_path / "out" / "ours").iterdir()} == names
    assert tmp_path / "out" / "summary.md" in written
