"""`grade.py classroom-result RESULTS.json`: a scorecard's points for GitHub Classroom's reporter.

Strategy: in a student's repository, tools/classroom/workflow.yml grades the pushed commit with
grade.py, then hands the points to classroom-resources/autograding-grading-reporter, which reads
each runner's result from the environment as base64-encoded JSON ({"version", "status",
"max_score", "tests": [{"name", "status", "score", "message", ...}]}), prints it and posts the
total to Classroom. That result is made from the scorecard's Gradescope results.json (render's
format, so the rubric shown on Gradescope and on GitHub is the same): one test per scored entry.
Printed as `result=...`, the line a step appends to $GITHUB_OUTPUT.
"""

from __future__ import annotations

import argparse
import base64
import json
from collections.abc import Sequence
from pathlib import Path

from .scoring import MAX_POINTS

MESSAGE_CHARS = 1000


def runner_result(results: dict) -> dict:
    """Return the reporter's runner result for a Gradescope results.json document."""
    scored = [test for test in results.get("tests", []) if "max_score" in test]
    tests = [
        {
            "name": test["name"],
            "status": "pass" if test.get("status") == "passed" else "fail",
            "score": test.get("score", 0.0),
            "message": str(test.get("output", ""))[:MESSAGE_CHARS],
            "line_no": 0,
            "execution_time": "0s",
        }
        for test in scored
    ]
    if not tests:
        why = str(results.get("output", "")) or "nothing was graded"
        tests = [{"name": "grading", "status": "error", "score": 0.0, "message": why}]
    status = "pass" if all(test["status"] == "pass" for test in tests) else "fail"
    if tests[0]["status"] == "error":
        status = "error"
    return {"version": 1, "status": status, "max_score": MAX_POINTS, "tests": tests}


def encoded(result: dict) -> str:
    """Return a runner result as the reporter reads it: base64 of its JSON."""
    return base64.b64encode(json.dumps(result).encode()).decode()


def main(argv: Sequence[str]) -> int:
    """Print `result=<base64>` for a results.json; return the exit status (2: unreadable file)."""
    parser = argparse.ArgumentParser(
        prog="grade.py classroom-result",
        description="Print a scorecard's points as GitHub Classroom's grading reporter reads them"
        " (append the line to $GITHUB_OUTPUT; see tools/classroom/workflow.yml).",
    )
    parser.add_argument("results", type=Path, metavar="RESULTS.json")
    args = parser.parse_args(argv)
    try:
        results = json.loads(args.results.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        parser.error(f"{args.results}: cannot read a results.json: {exc}")
    if not isinstance(results, dict):
        parser.error(f"{args.results}: not a results.json (expected a JSON object)")
    print(f"result={encoded(runner_result(results))}", flush=True)
    return 0
