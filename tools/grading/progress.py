"""Progress while a class is graded: one bar for the class (done, time left), one per submission.

Strategy: rich draws the bars on stderr, and only on a terminal (a log or a test sees plain
lines instead: "grading NAME ..." on stderr, the verdict on stdout). Lines printed while the bars
are up go above them, so the one-line verdicts stay readable. The class bar's time left is
rich's estimate from the submissions done so far; a submission's own bar counts its tests done
(the runner reads them from grading.ticks) and pulses until its suite has been collected. Safe
to call from several grading threads at once (rich locks its state).
"""

from __future__ import annotations

import sys
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class ClassProgress:
    """The progress display of one grading run; use as a context manager."""

    def __init__(self, total: int, console: Console | None = None) -> None:
        """Prepare a display for `total` submissions (drawn only if the console is a terminal)."""
        console = console or Console(stderr=True)
        self._submissions = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("tests"),
            TimeElapsedColumn(),
        )
        self._class = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("elapsed,"),
            TimeRemainingColumn(),
            TextColumn("left"),
        )
        self._class_task = self._class.add_task("class", total=total)
        self._live = Live(
            Group(self._submissions, self._class),
            console=console,
            redirect_stdout=sys.stdout.isatty(),
            redirect_stderr=False,
            transient=True,
        )
        self._shown = console.is_terminal

    def __enter__(self) -> ClassProgress:
        """Show the bars (on a terminal)."""
        if self._shown:
            self._live.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Take the bars down (the printed lines stay)."""
        if self._shown:
            self._live.stop()

    def started(self, name: str) -> TaskID:
        """Add a pulsing bar for a submission being graded (without bars, say so on stderr).

        Returns: its handle for finished().
        """
        if not self._shown:
            print(f"grading {name} ...", file=sys.stderr, flush=True)
        return self._submissions.add_task(name, total=None)

    def update(self, task: TaskID, done: int, total: int) -> None:
        """Show that `done` of a submission's `total` tests have finished."""
        self._submissions.update(task, completed=done, total=total)

    def finished(self, task: TaskID, line: str) -> None:
        """Remove a submission's bar, print its verdict line, and count it done for the class."""
        self._submissions.remove_task(task)
        print(line, flush=True)
        self._class.advance(self._class_task)
