"""Tests for submissions from git repositories and lists (tools/grading/sources.py), and for the
GitHub Classroom side: the reporter's result and the workflow file students copy.

Strategy: repositories are made here, in a temporary folder (a work tree, and a bare copy standing
in for GitHub), so nothing touches the network; a stub grade function records what it was given,
since the point is which commit gets graded and how it is named, not the suite.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

TOOLS = Path(__file__).resolve().parents[1]
ROOT = TOOLS.parent
sys.path.insert(0, str(TOOLS))

import grade  # noqa: E402
from grading import GradeOptions, Scorecard  # noqa: E402
from grading.classroom import runner_result  # noqa: E402
from grading.runner import Progress, SubmissionError  # noqa: E402
from grading.sources import expand, grade_source, unique_names  # noqa: E402
from narrow import NARROW, SMOKE_RUBRIC  # noqa: E402

WORKFLOW = TOOLS / "classroom" / "workflow.yml"
OPTIONS = GradeOptions(modes=("thread",))


def git(folder: Path, *arguments: str) -> str:
    """Run git in `folder` as a throw-away identity; return its output."""
    identity = ("-c", "user.name=Student", "-c", "user.email=student@example.org")
    command = ["git", "-C", str(folder), *identity, *arguments]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def student_repository(tmp_path: Path, name: str, tag: str | None = "final") -> Path:
    """Make a work tree whose `tag` commit says "tagged" and whose newer commit says "later"."""
    work = tmp_path / name
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    for text in ("tagged", "later"):
        (work / "http_server.py").write_text(f"print({text!r})\n")
        git(work, "add", "http_server.py")
        git(work, "commit", "-q", "-m", text)
        if tag and text == "tagged":
            git(work, "tag", tag)
    return work


def bare_copy(work: Path) -> Path:
    """Return a bare clone of `work`, as GitHub holds the student's repository."""
    bare = work.with_name(work.name + ".git")
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return bare


class StubGrader:
    """Stands in for grade_submission: records the server text and history length it was shown."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.commits: list[str] = []

    def __call__(
        self, path: str | Path, options: GradeOptions, name: str, progress: Progress | None
    ) -> Scorecard:
        """Read the submission's http_server.py and return a graded card pointing at it."""
        server = Path(path) / "http_server.py"
        self.seen.append(server.read_text())
        self.commits.append(git(Path(path), "rev-list", "--count", "HEAD"))
        return Scorecard(name=name, submission=str(path), server=str(server), score=100.0)


def test_a_repository_is_graded_at_its_final_tag_and_named_after_it(tmp_path: Path) -> None:
    bare = bare_copy(student_repository(tmp_path, "lab6-alice"))
    stub = StubGrader()
    url = bare.as_uri()
    card = grade_source(url, OPTIONS, unique_names([url])[0], grade=stub)
    assert stub.seen == ["print('tagged')\n"] and stub.commits == ["1"]  # a shallow clone
    assert card.name == "lab6-alice" and card.score == 100.0
    assert card.submission.startswith(f"{url} at tag final (commit ")
    assert card.server.endswith("/http_server.py") and str(tmp_path) not in card.server.split()[-1]


def test_a_local_clone_is_graded_at_the_tag_unless_the_working_tree_is_asked(
    tmp_path: Path,
) -> None:
    work = student_repository(tmp_path, "bob")
    stub = StubGrader()
    grade_source(str(work), OPTIONS, "bob", grade=stub)
    grade_source(str(work), OPTIONS, "bob", working_tree=True, grade=stub)
    assert stub.seen == ["print('tagged')\n", "print('later')\n"]


def test_another_tag_can_be_asked(tmp_path: Path) -> None:
    bare = bare_copy(student_repository(tmp_path, "carol", tag="v1"))
    stub = StubGrader()
    assert grade_source(str(bare), OPTIONS, "carol", tag="v1", grade=stub).score == 100.0
    assert stub.seen == ["print('tagged')\n"]


def test_a_missing_tag_is_one_line_in_the_summary_and_no_score(tmp_path: Path) -> None:
    untagged = [bare_copy(student_repository(tmp_path, f"s{n}", tag=None)) for n in (1, 2)]
    listing = tmp_path / "repos.txt"
    listing.write_text("# the class\n\n" + "\n".join(path.name for path in untagged) + "\n")
    output = tmp_path / "grades"
    assert grade.main([str(listing), "--output", str(output)]) == 1
    card = json.loads((output / "s1" / "scorecard.json").read_text())
    assert card["status"] == "invalid" and card["score"] == 0.0
    assert "no tag 'final'" in card["error"] and "\n" not in card["error"]
    summary = (output / "summary.md").read_text()
    assert summary.count("invalid: ") == 2 and "Traceback" not in summary
    assert "s2,,," in (output / "summary.csv").read_text()


@pytest.mark.heavy
def test_our_server_is_graded_for_real_from_a_repository_at_its_tag(tmp_path: Path) -> None:
    work = tmp_path / "lab6-ours"
    shutil.copytree(ROOT / "httpd", work / "httpd", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "http_server.py", work)
    git(work, "init", "-q", "-b", "main")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "lab 6")
    git(work, "tag", "final")
    url = bare_copy(work).as_uri()
    output = tmp_path / "grades"
    narrow = [*NARROW, "--rubric", str(SMOKE_RUBRIC)]
    assert grade.main([url, "--output", str(output), *narrow]) == 0
    card = json.loads((output / "lab6-ours" / "scorecard.json").read_text())
    assert card["score"] == 100.0 and card["submission"].startswith(f"{url} at tag final")


def test_an_unreachable_repository_is_one_line(tmp_path: Path) -> None:
    missing = (tmp_path / "nowhere.git").as_uri()
    card = grade_source(missing, OPTIONS, "nowhere", grade=StubGrader())
    assert card.status == "invalid" and "git ls-remote failed" in card.error
    assert "\n" not in card.error


def test_lists_expand_in_place_relative_to_their_folder(tmp_path: Path) -> None:
    (tmp_path / "class").mkdir()
    listing = tmp_path / "class" / "repos.txt"
    listing.write_text("https://github.com/org/lab6-dan.git\n  # away\nalice\n")
    got = expand(["first", str(listing), "last.py"])
    assert got == [
        "first",
        "https://github.com/org/lab6-dan.git",
        str(tmp_path / "class/alice"),
        "last.py",
    ]
    (tmp_path / "empty.txt").write_text("# nobody yet\n")
    with pytest.raises(SubmissionError, match="names no submission"):
        expand([str(tmp_path / "empty.txt")])


def test_a_local_clone_is_named_after_its_folder(tmp_path: Path, monkeypatch) -> None:
    work = student_repository(tmp_path, "lab6-gus")
    monkeypatch.chdir(work)
    assert unique_names([".", str(work) + "/", str(bare_copy(work))]) == [
        "lab6-gus",
        "lab6-gus-2",
        "lab6-gus-3",
    ]


def test_names_come_from_repositories_and_stay_unique() -> None:
    specs = [
        "https://github.com/org/lab6-eve.git",
        "git@github.com:org/lab6-eve.git",
        "ssh://git@host/org/lab6-fay",
        "/subs/summary.csv",
    ]
    assert unique_names(specs) == ["lab6-eve", "lab6-eve-2", "lab6-fay", "summary.csv-2"]


def test_the_reporter_gets_every_scored_test_and_the_total() -> None:
    results = {
        "score": 62.5,
        "tests": [
            {"name": "thread: HTTP", "score": 50.0, "max_score": 50.0, "status": "passed"},
            {
                "name": "thread: delay",
                "score": 12.5,
                "max_score": 50.0,
                "status": "failed",
                "output": "- overlap: took 10 s",
            },
            {"name": "thread: recommended tier (not scored)", "status": "failed"},
        ],
    }
    result = runner_result(results)
    assert result["max_score"] == 100.0 and result["status"] == "fail"
    assert [test["score"] for test in result["tests"]] == [50.0, 12.5]
    assert result["tests"][1]["message"] == "- overlap: took 10 s"
    nothing = runner_result({"score": 0.0, "output": "Could not grade: no server", "tests": []})
    assert nothing["status"] == "error" and "no server" in nothing["tests"][0]["message"]


def test_classroom_result_prints_the_github_output_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"score": 0.0, "output": "Could not grade", "tests": []}))
    assert grade.main(["classroom-result", str(path)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("result=")
    assert json.loads(base64.b64decode(line.removeprefix("result=")))["version"] == 1
    with pytest.raises(SystemExit) as exit_info:
        grade.main(["classroom-result", str(tmp_path / "none.json")])
    assert exit_info.value.code == 2


def test_the_workflow_is_a_valid_github_actions_workflow() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            str(WORKFLOW),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = WORKFLOW.read_text()
    assert "grade.py classroom-result" in text and "autograding-grading-reporter@v1" in text


def test_the_workflow_shell_steps_pass_shellcheck(tmp_path: Path) -> None:
    steps = YAML(typ="safe").load(WORKFLOW.read_text())["jobs"]["run-autograding-tests"]["steps"]
    scripts = []
    for number, step in enumerate(step for step in steps if "run" in step):
        scripts.append(tmp_path / f"step-{number}.sh")
        scripts[-1].write_text("#!/usr/bin/env bash\n" + step["run"])
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    shellcheck = shutil.which("shellcheck", path=search)
    assert shellcheck and len(scripts) == 2, "shellcheck is missing: pip install -e '.[test]'"
    done = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
