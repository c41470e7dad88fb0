#!/usr/bin/env python3
"""Grade student http_server.py submissions with the suite; write scorecards and a summary."""

# Strategy: a thin command line over the grading package (tools/grading/): parse options, expand
# list files, grade the submissions (folders, or git repositories at their `final` tag), --jobs at
# once (each in its own sandbox and network namespace, so their ports never meet), under a
# progress display, write each one's folder as soon as it is graded, then the class summary.
# Exit status 1 if any submission could not be graded at all. Two subcommands, named by the
# first word, package the same grader for Gradescope and GitHub Classroom.

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import os
import shlex
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

try:
    from grading import GradeOptions, Scorecard, SubmissionError, classroom, gradescope
    from grading.progress import ClassProgress
    from grading.render import SCORING_RULES, score_line, write_card
    from grading.rubric import (
        DEFAULT_LAB,
        Rubric,
        RubricError,
        labs,
        load_rubric,
        rubric_path,
        rubric_table,
        rubric_toml,
    )
    from grading.sandbox import CHOICES, SandboxError, isolation_note
    from grading.sources import DEFAULT_TAG, expand, grade_source, unique_names
    from grading.summary import write_summary
except ModuleNotFoundError as missing:  # even --help needs the scoring rules, so say it at once
    if (missing.name or "").split(".")[0] in ("grading", "harness"):
        raise
    sys.exit(
        f"grade.py: {missing.name} is not installed for this Python: it needs the [test] extra "
        "(pip install -c constraints.txt -e '.[test]'), or run it as "
        ".tox/py311/bin/python tools/grade.py after ./run-tests"
    )

DEFAULT_JOBS, DEFAULT_WORKERS = 2, 4

EPILOG = f"""\
Each submission is a folder holding http_server.py, the path of that file, or a git repository (a
URL, or a local clone): a repository is graded at its commit tagged --tag (GitHub Classroom's
"tag the commit you want graded `final`"), cloned shallow into a temporary folder. A .txt file
lists submissions, one per line (# comments; relative paths from the list's folder). Each
submission's output folder (named after its folder or repository, made unique: alice, alice-2)
holds scorecard.md, scorecard.json and Gradescope's results.json; when several are graded,
summary.md, summary.csv (the gradebook: one row per student, one column per rubric item) and
summary.html (charts: score distribution, share of the class that lost each item) go beside them.
A submission's benchmark.md (beside http_server.py) is read for the benchmark item.

Course years (--lab): seed (lab 6: thread, process required; thread-pool, process-pool, async
extra credit), later (lab 6: thread, thread-pool, select required; Python 3.12), lab5 (the
single-threaded HTTP server: no -c, default port 8084). --print-rubric prints a rubric as TOML;
edit a copy and pass it with --rubric FILE.

Subcommands (the first word; a submission folder of that name: write ./NAME):
  grade.py gradescope-bundle OUT.zip [GRADING OPTIONS]   Gradescope's autograder archive
  grade.py classroom-result RESULTS.json                 GitHub Classroom's reporter input

{rubric_table(load_rubric(rubric_path(DEFAULT_LAB)))}

{SCORING_RULES}

Exit status: 0 when every submission was graded (whatever its score; a timed-out run is graded
on what finished); 1 when any could not be graded (missing path, no http_server.py, not a Python
file, the suite could not run); 2 for a bad command line.
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="grade.py",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("submissions", nargs="*", metavar="SUBMISSION")
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument(
        "--lab",
        choices=labs(),
        default=DEFAULT_LAB,
        help=f"course year whose rubric grades (default {DEFAULT_LAB})",
    )
    chosen.add_argument("--rubric", type=Path, metavar="FILE", help="grade by this rubric file")
    parser.add_argument(
        "--print-rubric", action="store_true", help="print the chosen rubric as TOML and exit"
    )
    parser.add_argument(
        "--modes",
        type=_modes,
        default=(),
        help="modes to run (default: the rubric's required and extra-credit modes)",
    )
    parser.add_argument(
        "--required-modes",
        type=_modes,
        default=(),
        help="override the rubric's required modes, e.g. thread,thread-pool,async",
    )
    parser.add_argument(
        "--tier",
        choices=("required", "recommended"),
        default="required",
        help="tests to run: required only (default: they alone decide the score), or both tiers "
        "(adds the unscored recommended tier to the scorecard; about 4x the time)",
    )
    parser.add_argument(
        "--output", type=Path, default=Path("grades"), help="output folder (default: ./grades)"
    )
    parser.add_argument(
        "--python",
        default="",
        help="interpreter running the servers (default: the rubric's python, else this one)",
    )
    parser.add_argument(
        "--jobs",
        type=_positive,
        default=DEFAULT_JOBS,
        help=f"submissions graded at once, each in its own sandbox (default {DEFAULT_JOBS})",
    )
    parser.add_argument(
        "--workers",
        type=_count,
        default=DEFAULT_WORKERS,
        help=f"xdist workers per submission (default {DEFAULT_WORKERS}; 0: none)",
    )
    parser.add_argument(
        "--sandbox",
        choices=CHOICES,
        default="auto",
        help="run servers sandboxed: auto (default: where bwrap works), on (or fail), off",
    )
    parser.add_argument(
        "--timeout-per-submission",
        type=float,
        default=1800.0,
        metavar="SECONDS",
        help="stop a submission's run after this long and grade what finished (default 1800)",
    )
    parser.add_argument(
        "--pytest-args",
        default="",
        metavar="ARGS",
        help='extra pytest arguments, one string, e.g. "-k smoke"',
    )
    parser.add_argument(
        "--tag",
        default=DEFAULT_TAG,
        help=f"the tag of the commit to grade in a repository (default {DEFAULT_TAG})",
    )
    parser.add_argument(
        "--working-tree",
        action="store_true",
        help="grade local clones as they are on disk, not at --tag (URLs are still cloned)",
    )
    args = parser.parse_args(argv)
    if not args.submissions and not args.print_rubric:
        parser.error("name at least one SUBMISSION (or --print-rubric)")
    try:
        args.rubric = chosen_rubric(args)
        if not args.print_rubric:
            args.python = interpreter(args.python, args.rubric)
    except RubricError as exc:
        parser.error(str(exc))
    return args


def chosen_rubric(args: argparse.Namespace) -> Rubric:
    """Return the rubric of --rubric FILE or --lab NAME, with --required-modes applied."""
    rubric = load_rubric(args.rubric or rubric_path(args.lab))
    if args.required_modes:
        rubric = dataclasses.replace(rubric, required_modes=args.required_modes)
    return rubric


def interpreter(python: str, rubric: Rubric) -> str:
    """Return --python, else the rubric's interpreter (if installed), else this one."""
    if python or not rubric.python:
        return python or sys.executable
    found = shutil.which(rubric.python)
    if not found:
        raise RubricError(
            f"rubric {rubric.name!r} runs servers with {rubric.python}, which is "
            "not installed here: pass --python"
        )
    return found


def _modes(text: str) -> tuple[str, ...]:
    """Parse a comma-separated, non-empty list of modes."""
    modes = tuple(dict.fromkeys(mode.strip() for mode in text.split(",") if mode.strip()))
    if not modes:
        raise argparse.ArgumentTypeError("expected modes separated by commas, e.g. thread,process")
    return modes


def _positive(text: str) -> int:
    """Parse a whole number >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, not {text!r}")
    return int(text)


def _count(text: str) -> int:
    """Parse a non-negative integer."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, not {text!r}")
    return int(text)


def options_from(args: argparse.Namespace) -> GradeOptions:
    """Return the GradeOptions the parsed command line asks for."""
    return GradeOptions(
        rubric=args.rubric,
        modes=args.modes,
        tier=args.tier,
        python=args.python,
        workers=args.workers,
        sandbox=args.sandbox,
        timeout=args.timeout_per_submission,
        pytest_args=tuple(shlex.split(args.pytest_args)),
    )


def verdict(card: Scorecard, index: int, total: int) -> str:
    """Return the one line telling how a submission was graded."""
    outcome = f"{score_line(card)} ({card.status})" if card.graded else f"NOT GRADED: {card.error}"
    return f"[{index}/{total}] {card.name}: {outcome} in {card.duration:.0f} s"


def missing_clients() -> list[str]:
    """Name each real client the suite drives that is not installed, and how to install it.

    Without one, its checks skip (and a skipped check scores as not run), so say it up front.
    """
    from concurrency_tests.real_clients import CHROMIUM_ENV, CHROMIUM_NAMES

    clients = {"chromium": (os.environ.get(CHROMIUM_ENV, ""), *CHROMIUM_NAMES)}
    clients |= {"curl": ("curl",), "wrk": ("wrk",)}
    return [
        f"{name} is not installed, so its checks skip (Debian: apt-get install {name})"
        for name, programs in clients.items()
        if not any(shutil.which(program) for program in programs if program)
    ]


def grade_all(args: argparse.Namespace, submissions: list[str]) -> list[Scorecard]:
    """Grade the submissions, --jobs of them at once; write each one's folder when it is done.

    Returns: the scorecards, in the order of `submissions`.
    """
    options = options_from(args)
    names = unique_names(submissions)
    done = itertools.count(1)
    with ClassProgress(len(names)) as progress:

        def grade_one(spec: str, name: str) -> Scorecard:
            """Grade one submission under its own progress bar; write its folder."""
            task = progress.started(name)
            told = functools.partial(progress.update, task)
            card = grade_source(spec, options, name, args.tag, args.working_tree, told)
            write_card(card, args.output)
            progress.finished(task, verdict(card, next(done), len(names)))
            return card

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            return list(pool.map(grade_one, submissions, names))


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand, or grade every submission named on the command line; return the status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["gradescope-bundle"]:
        return gradescope.main(argv[1:], parse_args)
    if argv[:1] == ["classroom-result"]:
        return classroom.main(argv[1:])
    args = parse_args(argv)
    if args.print_rubric:
        print(rubric_toml(args.rubric), end="")
        return 0
    try:
        submissions = expand(args.submissions)
    except SubmissionError as exc:
        print(f"grade.py: error: {exc}", file=sys.stderr)
        return 2
    for note in missing_clients():
        print(f"grade.py: note: {note}", file=sys.stderr, flush=True)
    try:
        note = isolation_note(args.sandbox)
    except SandboxError as exc:
        print(f"grade.py: error: {exc}", file=sys.stderr)
        return 2
    if note:
        print(note, file=sys.stderr, flush=True)
    cards = grade_all(args, submissions)
    if len(cards) > 1:
        write_summary(cards, args.output)
    print(f"scorecards in {args.output}/", flush=True)
    return 0 if all(card.graded for card in cards) else 1


if __name__ == "__main__":
    sys.exit(main())
