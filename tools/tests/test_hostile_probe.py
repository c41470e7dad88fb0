"""Tests for the hostile probe's pure parts: its options, the baseline rule and the table.

Strategy: hand-built usages and rows go through the functions that judge and render them; no
server is started, so the file runs in well under a second.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOOLS))

from hostile_probe import CONCURRENT_MODES, Row, Usage, markdown_table, parse_args  # noqa: E402


def test_defaults_are_the_figures_of_issue_10() -> None:
    """Without options: every concurrent mode, 5,000 silent, 200 slowloris, 50 readers of 50 MB."""
    args = parse_args([])
    assert args.modes == list(CONCURRENT_MODES)
    assert (args.silent, args.slowloris, args.slow_readers, args.file_mb) == (5000, 200, 50, 50)


def test_modes_are_split_and_stripped() -> None:
    """--modes takes a comma-separated list; blanks around names are dropped."""
    assert parse_args(["--modes", " thread, select ,"]).modes == ["thread", "select"]


@pytest.mark.parametrize("argv", [["--modes", ","], ["--silent", "0"], ["--burst", "-1"]])
def test_empty_modes_or_counts_below_one_are_refused(
    argv: list[str], capsys: pytest.CaptureFixture
) -> None:
    """A probe that would attack nothing exits 2 with one line saying why."""
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    assert "every count must be at least 1" in capsys.readouterr().err


def test_usage_is_back_within_slack_but_not_with_an_extra_child() -> None:
    """A few fds or threads more are slack (lazily started helpers); one child more is not."""
    base = Usage(fds=10, threads=2, children=1)
    assert base.covers(Usage(fds=18, threads=10, children=1))
    assert not base.covers(Usage(fds=19, threads=2, children=1))
    assert not base.covers(Usage(fds=10, threads=2, children=2))


def test_table_shows_usage_before_and_after_and_flags_a_leak() -> None:
    """Each row renders its usage as before → after, and "**no**" when it did not come back."""
    back = Row("thread", "slowloris", "0.01 s", "0.01 s", "200 trickling", Usage(7, 1, 0))
    back.after = Usage(7, 1, 0)
    leak = Row("select", "silent flood", "0.02 s", "0.02 s", "5000 of 5000 open", Usage(9, 1, 0))
    leak.after = Usage(900, 1, 0)
    stop = Row("select", "SIGTERM, flood open", "", "", "exit 0 0.50 s after SIGTERM")
    lines = markdown_table([back, leak, stop]).splitlines()
    assert lines[0].startswith("| mode | attack | normal client during | after |")
    assert lines[2] == (
        "| thread | slowloris | 0.01 s | 0.01 s | 200 trickling | 7 → 7 | 1 → 1 | 0 → 0 | yes |"
    )
    assert lines[3].endswith("| 9 → 900 | 1 → 1 | 0 → 0 | **no** |")
    assert (
        lines[4]
        == "| select | SIGTERM, flood open |  |  | exit 0 0.50 s after SIGTERM |  |  |  |  |"
    )
