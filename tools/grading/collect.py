"""pytest plugin for the grader's collect-only pass: write the selected tests to a JSON file."""

# Strategy: the grader lists the tests before running them, so a test that a stopped run never
# reached still counts (as not run) under the right mode, tier and case. By the end of collection
# the harness has put tier and mode into each item's user_properties; a conformance test's `run`
# parameter names its case, variant and source. The file path comes from GRADE_COLLECT_JSON.

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

COLLECT_ENV = "GRADE_COLLECT_JSON"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Write one row per selected test to the file named by GRADE_COLLECT_JSON, if set."""
    target = os.environ.get(COLLECT_ENV)
    if target:
        rows = [describe(item) for item in session.items]
        Path(target).write_text(json.dumps(rows, ensure_ascii=False))


def describe(item: pytest.Item) -> dict:
    """Return a test's nodeid, user properties and, for a conformance case, its case fields."""
    row = {"nodeid": item.nodeid, **dict(item.user_properties)}
    params = getattr(getattr(item, "callspec", None), "params", {})
    run = params.get("run")
    case = getattr(run, "case", None)
    if case is not None:
        row |= {"case_id": case.id, "variant": run.variant, "source": case.source}
    return row
