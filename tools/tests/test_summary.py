"""Tests for the class at a glance (tools/grading/summary.py) and the progress display.

Strategy: tiny Scorecards scored from hand-made records (no server runs) go through the pure
functions that make summary.md, summary.csv and summary.html; the page is parsed back with the
standard library's HTML parser to check its charts say what the cards say.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

from rich.console import Console

TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))

from grading import Scorecard, score_card  # noqa: E402
from grading.progress import ClassProgress  # noqa: E402
from grading.rubric import Item, Rubric  # noqa: E402
from grading.runner import run_with_timeout  # noqa: E402
from grading.summary import (  # noqa: E402
    SUMMARY_FILES,
    lost_items,
    rubric_scores,
    score_distribution,
    summary_csv,
    summary_html,
    write_outputs,
)
from grading.ticks import TICKS_ENV, ticks_done  # noqa: E402

CONFORMANCE = "conformance/test_conformance.py::test_case"
OVERLAP = "concurrency_tests/test_overlap.py::test_delayed_requests_overlap"
RUBRIC = Rubric(
    name="tiny",
    title="two items",
    required_modes=("thread",),
    items=(
        Item(id="get-file", title="GET works", points=50, lab=("lab5.get-file",)),
        Item(id="concurrent-thread", title="overlap", points=50, lab=("lab6.concurrent",)),
    ),
)


def graded(name: str, http: str, overlap: str) -> Scorecard:
    """Return a card of one thread-mode HTTP case and one overlap test with these verdicts."""
    records = [
        {"nodeid": f"{CONFORMANCE}[thread-get-whole]", "verdict": http, "lab": "lab5.get-file"},
        {"nodeid": f"{OVERLAP}[thread]", "verdict": overlap, "lab": "lab6.concurrent"},
    ]
    records = [record | {"mode": "thread", "tier": "required"} for record in records]
    card = Scorecard(name, f"/subs/{name}", graded_modes=["thread"], offered_modes=["thread"])
    return score_card(card, records, RUBRIC)


def invalid(name: str) -> Scorecard:
    """Return a card that could not be graded."""
    return Scorecard(name=name, submission=f"/subs/{name}", status="invalid", error="no server")


def the_class() -> list[Scorecard]:
    """Three graded students (all, HTTP only, nothing) and one that could not be graded."""
    return [
        graded("alice", "passed", "passed"),
        graded("bob", "passed", "failed"),
        graded("carol", "failed", "failed"),
        invalid("dave"),
    ]


def test_csv_has_one_row_per_student_and_one_column_per_rubric_item() -> None:
    rows = list(csv.reader(io.StringIO(summary_csv(the_class()))))
    keys = [item.key for item in rubric_scores(the_class()[0])]
    assert rows[0] == ["name", "total", "extra credit", *keys, "status"] and len(keys) == 2
    by_name = {row[0]: row for row in rows[1:]}
    assert list(by_name) == ["alice", "bob", "carol", "dave"]
    assert by_name["alice"][1:3] == ["100.00", "0.00"]
    bob = dict(zip(rows[0], by_name["bob"], strict=True))
    assert float(bob["total"]) == float(bob[keys[0]]) + float(bob[keys[1]]) < 100
    assert by_name["dave"][1] == "" and "invalid: no server" in by_name["dave"][-1]


def test_lost_items_are_the_share_of_the_graded_class_most_lost_first() -> None:
    bars = lost_items(the_class())
    assert [bar.label for bar in bars] == ["overlap (concurrent-thread)", "GET works (get-file)"]
    assert [bar.text for bar in bars] == ["2 of 3", "1 of 3"]
    assert [round(bar.share, 3) for bar in bars] == [0.667, 0.333]


def test_distribution_counts_graded_scores_per_band() -> None:
    bars = score_distribution(the_class())
    assert len(bars) == 10 and bars[0].label == "0–10 %" and bars[-1].label == "90–100 %"
    counts = {bar.label: int(bar.text) for bar in bars if bar.text != "0"}
    assert sum(counts.values()) == 3 and counts["90–100 %"] == 1 and counts["0–10 %"] == 1


class _Page(HTMLParser):
    """Collects the widths of the 'lost' bars and the text of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.widths: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        style = dict(attrs).get("style") or ""
        if style.startswith("width:"):
            self.widths.append(style)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_page_is_static_and_charts_what_the_class_lost() -> None:
    cards = [*the_class(), invalid("<script>alert(1)</script>")]
    page = summary_html(cards)
    parser = _Page()
    parser.feed(page)
    text = " ".join(parser.text)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert parser.widths == ["width:66.7%", "width:33.3%"]
    assert "5 submissions, 3 graded" in text and "median" in text


def test_outputs_for_a_class_include_the_three_summaries(tmp_path: Path) -> None:
    written = write_outputs(the_class(), tmp_path)
    assert {path.name for path in written} >= set(SUMMARY_FILES)
    assert (tmp_path / "alice" / "results.json").is_file()


def test_progress_prints_each_verdict_and_draws_only_on_a_terminal(capsys) -> None:
    quiet = Console(file=io.StringIO(), force_terminal=False)
    with ClassProgress(2, console=quiet) as progress:
        for name in ("alice", "bob"):
            progress.finished(progress.started(name), f"{name}: 100/100")
    printed = capsys.readouterr()
    assert printed.out == "alice: 100/100\nbob: 100/100\n"
    assert printed.err == "grading alice ...\ngrading bob ...\n"
    assert quiet.file.getvalue() == ""
    drawn = Console(file=io.StringIO(), force_terminal=True, width=100)
    with ClassProgress(1, console=drawn) as progress:
        progress.finished(progress.started("carol"), "carol: 50/100")
    assert "1/1" in drawn.file.getvalue()


def test_a_submission_bar_counts_its_tests() -> None:
    drawn = Console(file=io.StringIO(), force_terminal=True, width=100, color_system=None)
    with ClassProgress(1, console=drawn) as progress:
        task = progress.started("erin")
        progress.update(task, 7, 20)
        progress._live.refresh()
        assert "erin" in drawn.file.getvalue() and "7/20 tests" in drawn.file.getvalue()
        progress.finished(task, "erin: 90/100")


def test_the_ticks_plugin_counts_finished_tests_under_xdist(tmp_path: Path) -> None:
    (tmp_path / "test_three.py").write_text(
        "import pytest\n\n@pytest.mark.parametrize('n', range(3))\ndef test_n(n):\n"
        "    assert n != 1\n"
    )
    ticks = tmp_path / "ticks"
    env = os.environ | {TICKS_ENV: str(ticks), "PYTHONPATH": str(TOOLS)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "grading.ticks", "-n", "2"]
    command += ["-p", "no:cacheprovider", str(tmp_path / "test_three.py")]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 1, done.stdout + done.stderr  # one of the three fails
    assert ticks_done(ticks) == 3 and ticks_done(tmp_path / "none") == 0


def test_a_waiting_run_reports_while_it_runs(tmp_path: Path) -> None:
    calls: list[str] = []
    command = [sys.executable, "-c", "import time; time.sleep(2.5)"]
    waiting = lambda: calls.append("waiting")  # noqa: E731
    code, timed_out, _ = run_with_timeout(command, tmp_path / "log", 60.0, None, waiting)
    assert code == 0 and not timed_out and len(calls) >= 1
