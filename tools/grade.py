#!/usr/bin/env python3
"""Grade student http_server.py submissions with the suite; write scorecards and a summary."""

# Strategy: a thin command line over the grading package (tools/grading/): parse options, grade
# the submissions one after the other (in parallel they would spoil each other's timing tests),
# write each one's folder as soon as it is graded, then the summary. Exit status 1 if any
# submission could not be graded at all.

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from grading import GradeOptions, Scorecard, grade_submission, unique_names
from grading.render import scoring_rules, write_card, write_summary

EPILOG = f"""\
Each submission is a folder holding http_server.py, or the path of that file. Its output folder
(named after the submission's folder, made unique: alice, alice-2) holds scorecard.md,
scorecard.json and Gradescope's results.json; summary.md is written beside them when several
submissions are graded.

{scoring_rules()}

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
    parser.add_argument("submissions", nargs="+", metavar="SUBMISSION")
    parser.add_argument(
        "--modes", type=_modes, default=(), help="modes to grade (default: the required modes)"
    )
    parser.add_argument(
        "--required-modes",
        type=_modes,
        default=("thread", "process"),
        help="modes the lab demands (default thread,process; later lab: thread,thread-pool,select)",
    )
    parser.add_argument(
        "--tier",
        choices=("required", "recommended"),
        default="recommended",
        help="tests to run: required only, or both tiers (default; only required is scored)",
    )
    parser.add_argument(
        "--output", type=Path, default=Path("grades"), help="output folder (default: ./grades)"
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter that runs the servers (default: this one)",
    )
    parser.add_argument(
        "--jobs", type=_count, default=4, help="xdist workers per submission (default 4; 0: none)"
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
    return parser.parse_args(argv)


def _modes(text: str) -> tuple[str, ...]:
    """Parse a comma-separated, non-empty list of modes."""
    modes = tuple(dict.fromkeys(mode.strip() for mode in text.split(",") if mode.strip()))
    if not modes:
        raise argparse.ArgumentTypeError("expected modes separated by commas, e.g. thread,process")
    return modes


def _count(text: str) -> int:
    """Parse a non-negative integer."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, not {text!r}")
    return int(text)


def options_from(args: argparse.Namespace) -> GradeOptions:
    """Return the GradeOptions the parsed command line asks for."""
    return GradeOptions(
        modes=args.modes,
        required_modes=args.required_modes,
        tier=args.tier,
        python=args.python,
        jobs=args.jobs,
        timeout=args.timeout_per_submission,
        pytest_args=tuple(shlex.split(args.pytest_args)),
    )


def report(card: Scorecard, index: int, total: int) -> None:
    """Print one line about a graded submission."""
    verdict = (
        f"{card.score:.2f}/100 ({card.status})" if card.graded else f"NOT GRADED: {card.error}"
    )
    print(f"[{index}/{total}] {card.name}: {verdict} in {card.duration:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Grade every submission named on the command line; return the exit status."""
    args = parse_args(argv)
    options = options_from(args)
    names = unique_names(args.submissions)
    cards = []
    for index, (path, name) in enumerate(zip(args.submissions, names, strict=True), start=1):
        print(f"[{index}/{len(names)}] grading {path} ...", file=sys.stderr, flush=True)
        cards.append(grade_submission(path, options, name))
        write_card(cards[-1], args.output)
        report(cards[-1], index, len(names))
    if len(cards) > 1:
        write_summary(cards, args.output)
    print(f"scorecards in {args.output}/", flush=True)
    return 0 if all(card.graded for card in cards) else 1


if __name__ == "__main__":
    sys.exit(main())
