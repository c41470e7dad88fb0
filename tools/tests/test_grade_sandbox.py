"""The grader's isolation and speed: --jobs grades at once, the pre-flight finds hung modes.

Strategy: --jobs is checked with a stub in place of the real grading (two stubs must be in
flight together to pass a barrier); the pre-flight runs on the selftest server that hangs on
every request and on one that answers, as the grader runs it (a subprocess, isolated); the
one-line note and the option's choices are checked directly.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1]
ROOT = TOOLS.parent
sys.path.insert(0, str(TOOLS))

import grade  # noqa: E402
from grading import GradeOptions, Scorecard  # noqa: E402
from grading.runner import preflight  # noqa: E402
from grading.sandbox import isolated, isolation_note  # noqa: E402

from harness.sandbox import processes_of  # noqa: E402

SANDBOX_SERVERS = ROOT / "selftest" / "sandbox"


def test_jobs_grades_submissions_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    together = threading.Barrier(2, timeout=30)

    def stub(spec: str, options: GradeOptions, name: str, *rest: object) -> Scorecard:
        together.wait()
        return Scorecard(name=name, submission=spec, status="graded")

    monkeypatch.setattr(grade, "grade_source", stub)
    args = grade.parse_args(["a", "b", "--jobs", "2", "--output", str(tmp_path)])
    cards = grade.grade_all(args, ["a", "b"])
    assert [card.name for card in cards] == ["a", "b"]


def test_jobs_and_sandbox_options_are_checked() -> None:
    for bad in (["--jobs", "0"], ["--sandbox", "maybe"], ["--workers", "-1"]):
        with pytest.raises(SystemExit) as exit_info:
            grade.parse_args(["sub", *bad])
        assert exit_info.value.code == 2


def test_isolation_note_is_one_line() -> None:
    assert isolation_note("off").count("\n") == 0 and "unconfined" in isolation_note("off")
    assert "\n" not in isolation_note("auto")


@pytest.mark.parametrize(
    ("script", "hung"),
    [("hangs_on_every_request.py", ["thread"]), ("writes_outside_folder.py", [])],
    ids=["hangs", "answers"],
)
def test_preflight_lists_the_modes_that_answer_nothing(
    tmp_path: Path, script: str, hung: list[str]
) -> None:
    with isolated("auto", SANDBOX_SERVERS / script) as isolation:
        found, notes = preflight(
            SANDBOX_SERVERS / script, ("thread",), sys.executable, isolation, tmp_path
        )
    assert found == hung, (tmp_path / "preflight.log").read_text()
    assert len(notes) == len(hung) and all("answered none" in note for note in notes)
    if isolation.uid is not None:
        assert not processes_of(isolation.uid)
