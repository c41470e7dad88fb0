"""Grade one submission: check it, ask its -h for modes, run the suite on it, score the records."""

# Strategy: bad input is a one-line SubmissionError, never a traceback. The suite runs as a
# pytest subprocess from the repository root in its own session: first a collect-only pass lists
# every test (so tests a stopped run never reached still count, as not run), then the real run
# writes the results JSON. On timeout pytest gets SIGINT (it then writes what it has), and after
# a grace period everything it started is killed. The run (and the `-h`) are isolated per
# submission (sandbox.py: a network namespace of its own, a uid whose every process is killed
# at the end). Scoring is scoring.score_card's job.

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import tokenize
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import psutil

from harness import sandbox as server_sandbox
from harness.server import UNRESPONSIVE_ENV, parse_modes, server_environment

from .collect import COLLECT_ENV
from .preflight import PROBE_TIMEOUT
from .rubric import DEFAULT_LAB, Rubric, load_rubric, rubric_path
from .sandbox import Isolation, isolated
from .scoring import Scorecard, run_modes, score_card
from .ticks import TICKS_ENV, ticks_done

ROOT = Path(__file__).resolve().parents[2]
SUITES = ("conformance", "concurrency_tests")
SERVER_NAME, BENCHMARK_NAME, BENCHMARK_CHARS = "http_server.py", "benchmark.md", 100_000
HELP_TIMEOUT, COLLECT_TIMEOUT, INTERRUPT_GRACE, PREFLIGHT_TIMEOUT = 30.0, 600.0, 60.0, 120.0
LOG_TAIL_LINES = 40
TICK_SECONDS = 1.0  # how often a waiting run reports its progress

Progress = Callable[[int, int], None]  # told (tests done, tests in the run) while the suite runs
_UNSAFE = re.compile(r"[^\w.-]+")


class SubmissionError(Exception):
    """A submission that cannot be graded; the message is one line saying why."""


@dataclass(frozen=True)
class GradeOptions:
    """How to grade: rubric, modes, tier, interpreter, xdist workers, time limit, pytest args,
    and the sandbox (auto, on, off: see harness/sandbox.py)."""

    rubric: Rubric = field(default_factory=lambda: load_rubric(rubric_path(DEFAULT_LAB)))
    modes: tuple[str, ...] = ()
    tier: str = "required"
    python: str = sys.executable
    workers: int = 4
    timeout: float = 1800.0
    pytest_args: tuple[str, ...] = ()
    sandbox: str = "auto"

    @property
    def graded_modes(self) -> tuple[str, ...]:
        """The modes meant to be graded (before -h says which exist): --modes, else the rubric's."""
        return self.modes or self.rubric.modes_to_grade()


@dataclass
class SuiteRun:
    """What one pytest run left: records, and how it ended."""

    records: list[dict] = field(default_factory=list)
    status: str = "graded"
    error: str = ""
    notes: list[str] = field(default_factory=list)
    log_tail: str = ""


def grade_submission(
    path: str | Path, options: GradeOptions, name: str = "", progress: Progress | None = None
) -> Scorecard:
    """Grade one submission and return its Scorecard (never raises for a bad submission).

    Args: `path` is a folder holding http_server.py, or that file itself; `name` labels the
    scorecard (default: the submission's folder name); `progress`, if given, is told every
    TICK_SECONDS how many of the suite's tests have finished.
    """
    started, clock = dt.datetime.now(dt.UTC), time.monotonic()
    card = Scorecard(
        name=name or submission_name(path),
        submission=str(path),
        tier=options.tier,
        python=options.python,
        started=started.isoformat(timespec="seconds"),
    )
    try:
        script = find_server(Path(path))
    except SubmissionError as exc:
        return replace(card, status="invalid", error=str(exc))
    with isolated(options.sandbox, script.parent) as isolation:
        offered, help_notes = offered_modes(script, options.python, isolation, options.sandbox)
        runnable = tuple(run_modes(options.rubric, offered, options.modes))
        run = run_suite(script, runnable, options, isolation, progress) if runnable else SuiteRun()
    card = replace(
        card,
        server=str(script),
        graded_modes=list(runnable),
        offered_modes=list(offered),
        status=run.status,
        error=run.error,
        notes=help_notes + missing_required(options) + run.notes + isolation.notes,
        log_tail=run.log_tail,
    )
    scored = score_card(card, run.records, options.rubric, read_benchmark(script.parent))
    return replace(scored, duration=round(time.monotonic() - clock, 1))


def submission_name(path: str | Path) -> str:
    """Return the folder name a submission's outputs go to, before de-duplication."""
    path = Path(path)
    if path.suffix == ".py":
        name = path.resolve().parent.name if path.name == SERVER_NAME else path.stem
    else:
        name = path.resolve().name
    return _UNSAFE.sub("_", name).strip("._") or "submission"


def find_server(path: Path) -> Path:
    """Return the absolute path of the submission's server script.

    Raises: SubmissionError if the path is missing, a folder without http_server.py, or not a
    Python source file.
    """
    if not path.exists():
        raise SubmissionError(f"{path}: no such file or folder")
    script = path / SERVER_NAME if path.is_dir() else path
    if path.is_dir() and not script.is_file():
        raise SubmissionError(f"{path}: no {SERVER_NAME} in this folder")
    if script.suffix != ".py":
        raise SubmissionError(f"{script}: not a Python file (expected {SERVER_NAME})")
    check_python_source(script)
    return script.resolve()


def check_python_source(script: Path) -> None:
    """Raise SubmissionError unless `script` reads as Python source text (syntax is not checked)."""
    try:
        data = script.read_bytes()
    except OSError as exc:
        raise SubmissionError(f"{script}: cannot read: {exc.strerror or exc}") from None
    try:
        encoding, _ = tokenize.detect_encoding(iter(data.splitlines(keepends=True)).__next__)
        data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        raise SubmissionError(f"{script}: not a Python file (not text)") from None
    if b"\0" in data:
        raise SubmissionError(f"{script}: not a Python file (binary content)")


def offered_modes(
    script: Path, python: str, isolation: Isolation, choice: str = "off"
) -> tuple[tuple[str, ...], list[str]]:
    """Return the -c modes the server's `-h` lists, and notes on anything odd about `-h`.

    Args: `-h` runs in the sandbox `choice` as the submission's uid (from `isolation`).
    """
    box = replace(server_sandbox.choose(choice), uid=isolation.uid)
    try:
        done = server_sandbox.run(
            box, script, python, ["-h"], HELP_TIMEOUT, server_environment() | isolation.env
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return (), [f"`{script.name} -h` could not run: {exc}"]
    output = done.stdout + done.stderr
    notes = [] if done.returncode == 0 else [f"`{script.name} -h` {_exit(done.returncode, output)}"]
    modes = parse_modes(output)
    if modes == ("default",):
        return (), [*notes, "`-h` shows no -c/--concurrency option, so no mode is offered"]
    return modes, notes


def read_benchmark(folder: Path) -> str | None:
    """Return the text of the submission's benchmark.md (its start), or None if it has none."""
    try:
        with (folder / BENCHMARK_NAME).open(encoding="utf-8", errors="replace") as handle:
            return handle.read(BENCHMARK_CHARS)
    except OSError:
        return None


def missing_required(options: GradeOptions) -> list[str]:
    """Return a note when --modes leaves out required modes (the score then covers fewer)."""
    required = options.rubric.required_modes
    left_out = [mode for mode in required if options.modes and mode not in options.modes]
    if not left_out:
        return []
    return [f"partial grading: required modes not graded in this run: {', '.join(left_out)}"]


def suite_paths() -> list[str]:
    """Return the suite folders that exist (relative to the repository root)."""
    return [suite for suite in SUITES if (ROOT / suite).is_dir()]


def pytest_command(script: Path, modes: tuple[str, ...], options: GradeOptions) -> list[str]:
    """Return the pytest command line shared by the collect and the real run."""
    return [
        sys.executable,
        *("-m", "pytest", *suite_paths()),
        *("--server", str(script), "--modes", ",".join(modes), "--tier", options.tier),
        *("--python", options.python, "-p", "no:cacheprovider", "-q"),
        *options.pytest_args,
    ]


def run_suite(
    script: Path,
    modes: tuple[str, ...],
    options: GradeOptions,
    isolation: Isolation,
    progress: Progress | None = None,
) -> SuiteRun:
    """Collect, then run, the suite against `script` in `modes`; return records and outcome.

    The real run goes inside `isolation` (its command prefix, its environment); it counts its
    finished tests for `progress` through the grading.ticks plugin.
    """
    base = pytest_command(script, modes, options)
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        folder = Path(tmp)
        collected, problem = collect(base, folder)
        if problem:
            return SuiteRun(status="error", error=problem)
        ticks = folder / "ticks"
        env = _with_tools(os.environ | isolation.env) | {TICKS_ENV: str(ticks)}
        hung, hung_notes = preflight(script, modes, options.python, isolation, folder)
        env[UNRESPONSIVE_ENV] = ",".join(hung)
        results = folder / "results.json"
        command = [*isolation.prefix, *base, "--results-json", str(results), "-p", "grading.ticks"]
        command += ["-n", str(options.workers)]
        told = (lambda: progress(ticks_done(ticks), len(collected))) if progress else None
        code, timed_out, tail = run_with_timeout(
            command, folder / "pytest.log", options.timeout, env, told
        )
        records = _read_records(results)
    if timed_out:
        why = f"not run: the run was stopped after {options.timeout:g} s"
        note = f"timed out after {options.timeout:g} s: tests that did not finish count as failed"
        return SuiteRun(merge(collected, records, why), "timed out", "", [note], tail)
    if records is None:
        return SuiteRun(status="error", error=f"the suite {_exit(code, tail)}", log_tail=tail)
    notes = hung_notes + ([] if code in (0, 1) else [f"pytest {_exit(code, tail)}"])
    missing = "not run: pytest never reported it"
    return SuiteRun(merge(collected, records, missing), notes=notes, log_tail=tail)


def preflight(
    script: Path, modes: tuple[str, ...], python: str, isolation: Isolation, folder: Path
) -> tuple[list[str], list[str]]:
    """Find the modes whose server answers no request at all (see preflight.py), isolated.

    Returns: those modes, and a note for each (or one saying the pre-flight itself failed).
    """
    command = [*isolation.prefix, sys.executable, str(Path(__file__).with_name("preflight.py"))]
    command += [str(script), python, *modes]
    env = os.environ | isolation.env
    code, _, tail = run_with_timeout(command, folder / "preflight.log", PREFLIGHT_TIMEOUT, env)
    try:
        hung = json.loads(tail.splitlines()[-1]) if code == 0 else None
    except (IndexError, ValueError):
        hung = None
    if not isinstance(hung, list):
        return [], [f"pre-flight (does any mode answer at all?) {_exit(code, tail)}"]
    return hung, [
        f"mode {mode}: the server answered none of the pre-flight's plain requests within "
        f"{PROBE_TIMEOUT:g} s, so its conformance cases failed at once instead of each waiting "
        "out its timeout"
        for mode in hung
    ]


def collect(base: list[str], folder: Path) -> tuple[list[dict], str]:
    """List the tests the run will have (nodeid, mode, tier, case); return them or a problem."""
    target = folder / "collected.json"
    env = _with_tools(os.environ | {COLLECT_ENV: str(target)})
    command = [*base, "--collect-only", "-p", "grading.collect"]
    code, timed_out, tail = run_with_timeout(command, folder / "collect.log", COLLECT_TIMEOUT, env)
    collected = _read_records(target) if not timed_out and code == 0 else None
    if collected is None:
        return [], f"collecting the suite {_exit(code, tail)}"
    if not collected:
        return [], f"no tests selected (pytest arguments: {shlex.join(base[3:])})"
    return collected, ""


def _with_tools(env: dict[str, str]) -> dict[str, str]:
    """Return `env` with tools/ first on PYTHONPATH, so pytest finds the grading plugins."""
    paths = [str(ROOT / "tools"), env.get("PYTHONPATH", "")]
    return env | {"PYTHONPATH": os.pathsep.join(filter(None, paths))}


def run_with_timeout(
    command: list[str],
    log: Path,
    timeout: float,
    env: dict[str, str] | None = None,
    waiting: Callable[[], None] | None = None,
) -> tuple[int | None, bool, str]:
    """Run `command` from the repository root, output to `log`, for at most `timeout` s.

    Args: `waiting`, if given, is called every TICK_SECONDS while the command runs.
    Returns: (exit status or None, whether it timed out, the last lines of its output).
    """
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline, timed_out = time.monotonic() + timeout, False
        try:
            while process.poll() is None and not timed_out:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(min(TICK_SECONDS, max(deadline - time.monotonic(), 0.0)))
                timed_out = process.poll() is None and time.monotonic() >= deadline
                if waiting and not timed_out:
                    waiting()
        finally:
            if process.poll() is None:
                stop_tree(process)
    lines = log.read_text(errors="replace").splitlines()
    return process.returncode, timed_out, "\n".join(lines[-LOG_TAIL_LINES:])


def stop_tree(process: subprocess.Popen, grace: float = INTERRUPT_GRACE) -> None:
    """Interrupt pytest (it then writes the results it has), then kill all it started."""
    tree = _descendants(process.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace)
    for child in tree + _descendants(process.pid):
        with contextlib.suppress(psutil.Error):
            child.kill()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _descendants(pid: int) -> list[psutil.Process]:
    """Return every living descendant of `pid` (servers under test included)."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def merge(collected: list[dict], records: list[dict] | None, missing: str) -> list[dict]:
    """Overlay result records on the collected tests; tests without a record are not run."""
    by_id = {record["nodeid"]: record for record in records or []}
    merged = []
    for test in collected:
        record = {k: v for k, v in by_id.pop(test["nodeid"], {}).items() if v is not None}
        if "verdict" not in record:
            record["message"] = record.get("message") or missing
        merged.append(test | record)
    return merged + list(by_id.values())


def _read_records(path: Path) -> list[dict] | None:
    """Return the test records of a results or collect JSON file, or None if unreadable."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return document["tests"] if isinstance(document, dict) else document


def _exit(code: int | None, output: str) -> str:
    """Describe a failed command: its exit status and last output line."""
    last = next((line for line in reversed(output.splitlines()) if line.strip()), "no output")
    return f"failed (exit status {code}): {last.strip()[:300]}"
