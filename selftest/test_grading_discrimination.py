"""The grader tells correct student servers from broken ones, item by item, the same every time.

Strategy: selftest/students/EXPECTED.toml names, for each student-style server, its course year
(`lab`, the rubric), its modes and the rubric items it must lose. Each one is graded for real
(required tier) from a throw-away folder holding every student script (the broken ones import
the correct one they break) and a benchmark.md reporting each of its modes, several submissions
at a time. A correct server is graded in all its modes and must lose nothing and earn the extra
credit of every extra mode it offers. A broken one is graded only in the modes its items need
(its first mode, plus those its lost items are about): among the items judged there it must lose
exactly its own. Two servers are graded a second time, while the rest load the machine, and
must come out with the same items.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
STUDENTS = HERE / "students"
sys.path.insert(0, str(HERE.parent / "tools"))

from grading import (  # noqa: E402
    GradeOptions,
    Scorecard,
    grade_submission,
    load_rubric,
    rubric_path,
)
from grading.rubric import Rubric  # noqa: E402
from grading.scoring import EARNED, NOT_CHECKED, NOT_GRADED  # noqa: E402

EXPECTED: dict[str, dict] = tomllib.loads((STUDENTS / "EXPECTED.toml").read_text())["server"]
TWICE = ("threads_processes.py", "broken_traversal.py")  # graded twice: determinism
PARALLEL = 5  # submissions graded at once (each runs its own suite with xdist workers)
XDIST_WORKERS = 2
# A broken server is judged on the whole requests only: splitting them (bytewise, first-byte,
# split-crlf) is the suite's concern, proven by its own selftests, and triples the run.
WHOLE_REQUESTS = ("-k", "not bytewise and not first-byte and not split-crlf")
TIMEOUT = 900.0


def submission(script: str, folder: Path) -> Path:
    """Return a graded copy of `script`: a folder with every student script and a benchmark.md."""
    folder.mkdir(parents=True)
    for source in STUDENTS.glob("*.py"):
        shutil.copy(source, folder / source.name)
    rows = "\n".join(f"| {mode} | {1000 + index} |" for index, mode in enumerate(modes(script)))
    (folder / "benchmark.md").write_text(f"| mode | requests/s |\n|---|---|\n{rows}\n")
    return folder / script


def modes(script: str) -> tuple[str, ...]:
    """Return the modes EXPECTED.toml says a script offers."""
    return tuple(EXPECTED[script]["modes"])


def rubric_of(script: str) -> Rubric:
    """Return the rubric of a script's course year."""
    return load_rubric(rubric_path(EXPECTED[script]["lab"]))


def modes_to_grade(script: str) -> tuple[str, ...]:
    """Return every mode of a correct script; a broken one's first mode and its items' modes."""
    if not EXPECTED[script]["loses"]:
        return modes(script)
    rubric = rubric_of(script)
    named = [
        mode
        for item in rubric.items
        if item.id in EXPECTED[script]["loses"]
        for mode in rubric.modes_of(item)
    ]
    return tuple(dict.fromkeys([modes(script)[0], *named]))


def grade(script: str, folder: Path) -> Scorecard:
    """Grade one student script by its course year's rubric, in its modes, required tier."""
    options = GradeOptions(
        rubric=rubric_of(script),
        modes=modes_to_grade(script),
        tier="required",
        workers=XDIST_WORKERS,
        timeout=TIMEOUT,
        pytest_args=WHOLE_REQUESTS if EXPECTED[script]["loses"] else (),
    )
    return grade_submission(submission(script, folder), options, folder.name)


def grade_all(root: Path) -> dict[tuple[str, int], Scorecard]:
    """Grade every server in EXPECTED.toml (and TWICE a second time), PARALLEL at once."""
    runs = [(script, 1) for script in EXPECTED] + [(script, 2) for script in TWICE]
    with ThreadPoolExecutor(PARALLEL) as pool:
        cards = pool.map(lambda run: grade(run[0], root / f"{run[1]}-{run[0][:-3]}"), runs)
        return dict(zip(runs, cards, strict=True))


def unjudged_here(reason: str) -> bool:
    """Whether an item was not judged in this run: a mode not graded, or every check skipped
    (say, port 8085 taken on this machine). An item no check covers at all is still lost."""
    return reason.startswith(NOT_GRADED) or (reason.startswith(NOT_CHECKED) and "skipped" in reason)


def mismatch(script: str, card: Scorecard) -> str:
    """Return what is wrong with a card against EXPECTED.toml, or "" when it is right."""
    if card.status != "graded":
        return f"{script}: {card.status}: {card.error or card.log_tail[-500:]}"
    judged = [item for item in card.items if not unjudged_here(item.reason)]
    lost = sorted(item.id for item in judged if not item.extra and item.status != EARNED)
    expected = sorted(EXPECTED[script]["loses"])
    extras = [item for item in judged if item.extra and item.modes[0] in modes(script)]
    missed = [item.id for item in extras if item.status != EARNED and not expected]
    unjudged = sorted(set(expected) - {item.id for item in judged})
    if lost == expected and not missed and not unjudged:
        return ""
    why = "; ".join(f"{i.id}: {i.reason}" for i in judged if i.status != EARNED)
    return f"{script}: lost {lost}, expected {expected}, extra credit missed {missed} ({why})"


@pytest.mark.heavy
def test_each_server_loses_exactly_the_items_it_breaks_and_twice_the_same(
    tmp_path: Path,
) -> None:
    """One test, so one process grades them all at once (xdist would split a parametrization)."""
    cards = grade_all(tmp_path)
    problems = [mismatch(script, cards[(script, 1)]) for script in sorted(EXPECTED)]
    for script in TWICE:
        first, second = cards[(script, 1)], cards[(script, 2)]
        if [(i.id, i.status) for i in first.items] != [(i.id, i.status) for i in second.items]:
            problems.append(f"{script}: graded twice, {first.score} then {second.score}")
    problems = [problem for problem in problems if problem]
    assert not problems, "\n".join(problems)
