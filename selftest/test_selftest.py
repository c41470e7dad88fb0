"""The conformance suite catches deliberately broken servers and passes the base they break."""

# Strategy: each server in selftest/broken/ breaks exactly one rule of _base.py. For each, the
# conformance suite runs in a subprocess (thread mode, the smoke cases plus the invariant tests,
# narrowed with -k) writing --results-json; the test asserts that run failed and that exactly
# the expected tests failed, each for its rule. The base server must pass every selected test.

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SMOKE_CASES = REPO / "conformance" / "cases" / "smoke.toml"
VARIANTS = ("whole", "bytewise", "first-byte", "split-crlf")


def runs(case_id: str, invariants: bool = False) -> set[str]:
    """Return the test keys of a smoke case's four variants (and its invariants run)."""
    return {
        f"{case_id}-{variant}" for variant in VARIANTS + (("invariants",) if invariants else ())
    }


@dataclass(frozen=True)
class Breakage:
    """A broken server, the tests that target it (-k), and the ones that must fail."""

    script: str
    selection: str
    failing: frozenset[str]


BREAKAGES = (
    Breakage(
        "path_traversal.py",
        "smoke-traversal or smoke-get-page",
        frozenset(
            runs("smoke-traversal-dotdot", True) | runs("smoke-traversal-sibling-prefix", True)
        ),
    ),
    Breakage(
        "wrong_content_length.py",
        "smoke-get-page or smoke-post-405",
        frozenset(runs("smoke-get-page") | runs("smoke-post-405")),
    ),
    Breakage(
        "post_as_get.py", "smoke-post-405 or smoke-get-page", frozenset(runs("smoke-post-405"))
    ),
    Breakage(
        "no_404_page.py",
        "smoke-missing-404 or smoke-get-page",
        frozenset(
            runs("smoke-missing-404")
            | runs("smoke-missing-404-builtin")
            | runs("smoke-missing-404-error-page")
        ),
    ),
    Breakage(
        "crash_on_bad_request_line.py",
        "smoke-bad-request-line or smoke-get-page",
        frozenset(runs("smoke-bad-request-line-400", True)),
    ),
    Breakage(
        "writes_request_body.py",
        "smoke-post-405 or smoke-get-page",
        frozenset(runs("smoke-post-405", True)),
    ),
    Breakage(
        "whole_file_in_memory.py",
        "test_huge_file or smoke-get-page",
        frozenset({"test_huge_file_is_streamed_with_flat_memory"}),
    ),
)


def result_key(record: dict) -> str:
    """Return a results record's key: "<case id>-<variant>", else the test function's name."""
    if record.get("case_id"):
        return f"{record['case_id']}-{record['variant']}"
    return record["nodeid"].split("::")[-1].split("[")[0]


def run_suite(script: Path, selection: str, results: Path) -> tuple[int, dict[str, str], str]:
    """Run the conformance suite on `script` (thread mode, -k `selection`) in a subprocess.

    Returns: (exit code, test key -> verdict, combined output).
    """
    argv = [sys.executable, "-m", "pytest", "conformance", "--server", str(script)]
    argv += ["--modes", "thread", "--cases", str(SMOKE_CASES), "-k", selection, "-q"]
    argv += ["-p", "no:cacheprovider", "--results-json", str(results)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HTTP_", "PYTEST_"))}
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    verdicts = {}
    if results.exists():
        verdicts = {result_key(r): r["verdict"] for r in json.loads(results.read_text())["tests"]}
    return done.returncode, verdicts, done.stdout[-4000:] + done.stderr[-2000:]


@pytest.mark.parametrize("breakage", BREAKAGES, ids=lambda b: b.script.removesuffix(".py"))
def test_broken_server_is_caught(breakage: Breakage, tmp_path: Path) -> None:
    """The suite fails a server that breaks one rule, on exactly the tests for that rule."""
    code, verdicts, output = run_suite(
        HERE / "broken" / breakage.script, breakage.selection, tmp_path / "results.json"
    )
    failed = {key for key, verdict in verdicts.items() if verdict != "passed"}
    assert code == 1, f"{breakage.script}: the suite should fail (exit 1), got {code}\n{output}"
    assert failed == breakage.failing, (
        f"{breakage.script}: unexpected failures {sorted(failed - breakage.failing)}, "
        f"missed {sorted(breakage.failing - failed)}\n{output}"
    )
    assert set(verdicts) > failed, f"{breakage.script}: no passing control test ran\n{output}"


def test_base_server_passes_the_targeted_tests(tmp_path: Path) -> None:
    """The base every broken server derives from passes all the tests that catch them."""
    selection = " or ".join(f"({b.selection})" for b in BREAKAGES)
    code, verdicts, output = run_suite(HERE / "broken" / "_base.py", selection, tmp_path / "r.json")
    expected = set().union(*(b.failing for b in BREAKAGES))
    failed = sorted(key for key, verdict in verdicts.items() if verdict != "passed")
    assert code == 0 and not failed, f"base server failed {failed}\n{output}"
    assert expected <= set(verdicts), f"not run: {sorted(expected - set(verdicts))}\n{output}"
