"""pytest plugin of the grading suite: options, the `mode` parameter, tiers, servers, results."""

# Strategy: options come from the command line or the environment (for tox) and are resolved
# once per config. Any test taking `mode` is parametrized over the selected modes (the server's
# `-h` choices by default). Tiers are a marker (unmarked = required); `--tier required` deselects
# the rest. Servers come from two fixtures that always reap what they start. Each test's
# `user_properties` travel with its reports (also from xdist workers), so the controller alone
# writes the results JSON. A required test names the lab rule it enforces (a `lab` marker whose key
# is in harness/lab_rules.toml); a required suite test without one fails collection. Each record
# carries the fields the grader reads (lab, case, category, evidence, timeline, finding).

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.server import (
    DEFAULT_MODE,
    ServerCommand,
    ServerError,
    ServerFactory,
    ServerPool,
    discover_modes,
)

TIERS = ("required", "recommended")
LAB_RULES = Path(__file__).with_name("lab_rules.toml")
_SETTINGS = pytest.StashKey["Settings"]()
_FIELDS = ("case_id", "mode", "variant", "tier", "source", "sent", "received")
_FIELDS += ("lab", "case", "category", "evidence", "timeline", "finding")
_RESERVED = ("nodeid", "verdict", "duration", "message")
MAX_EVIDENCE = 3
SUITE_DIRS = ("conformance", "concurrency_tests")
LAB5_PORT, LAB6_PORT = 8084, 8085


@functools.cache
def lab_rules() -> dict[str, dict]:
    """Return the lab sentences of harness/lab_rules.toml: key -> {"lab": ..., "quote": ...}."""
    with LAB_RULES.open("rb") as file:
        return tomllib.load(file)["rule"]


@dataclass(frozen=True)
class Settings:
    """The suite's resolved options."""

    command: ServerCommand
    modes_option: str
    tier: str
    results_json: Path | None
    cases: Path
    default_port_option: str = ""

    @property
    def modes(self) -> tuple[str, ...]:
        """The modes to test: --modes, else every mode the server lists in `-h`."""
        if self.modes_option:
            return tuple(mode.strip() for mode in self.modes_option.split(",") if mode.strip())
        if not self.command.script.is_file():
            pytest.fail(
                f"server under test not found: {self.command.script} "
                "(use --server PATH or HTTP_SERVER)",
                pytrace=False,
            )
        return discover_modes(self.command)

    @property
    def default_port(self) -> int:
        """The port the server must listen on without -p: --default-port, else 8085 for a
        lab-6 server (one with -c), 8084 for a lab-5 server."""
        if self.default_port_option:
            if not self.default_port_option.isdigit():
                raise pytest.UsageError(
                    f"--default-port must be a port number, not " f"{self.default_port_option!r}"
                )
            return int(self.default_port_option)
        return LAB5_PORT if discover_modes(self.command) == (DEFAULT_MODE,) else LAB6_PORT


def settings(config: pytest.Config) -> Settings:
    """Return the suite's settings for this pytest run (resolved once)."""
    if _SETTINGS not in config.stash:
        config.stash[_SETTINGS] = _resolve(config)
    return config.stash[_SETTINGS]


def _resolve(config: pytest.Config) -> Settings:
    """Build Settings from options, environment and defaults."""
    option = config.getoption
    script = Path(option("http_server") or config.rootpath / "http_server.py").resolve()
    python = option("http_python") or sys.executable
    results = option("http_results_json")
    cases = Path(option("http_cases") or config.rootpath / "conformance" / "cases")
    tier = option("http_tier") or "recommended"
    if tier not in TIERS:
        raise pytest.UsageError(f"--tier must be one of {TIERS}, not {tier!r}")
    command = ServerCommand(script, python)
    return Settings(
        command,
        option("http_modes") or "",
        tier,
        Path(results) if results else None,
        cases,
        option("http_default_port") or "",
    )


OPTIONS = (
    ("--server", "HTTP_SERVER", "server under test (default: <rootdir>/http_server.py)"),
    ("--modes", "HTTP_MODES", "comma-separated -c modes (default: all in the server's -h)"),
    ("--tier", "HTTP_TIER", "required: only the lab's rules; recommended (default): both tiers"),
    ("--results-json", "HTTP_RESULTS_JSON", "write one JSON record per test here"),
    ("--python", "HTTP_PYTHON", "interpreter that runs the server (default: this one)"),
    ("--cases", "HTTP_CASES", "case file or folder (default: conformance/cases)"),
    (
        "--default-port",
        "HTTP_DEFAULT_PORT",
        "port expected without -p (default: 8085, 8084 w/o -c)",
    ),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the suite's options; each defaults to an environment variable (for tox)."""
    group = parser.getgroup("http", "HTTP server grading suite")
    for flag, variable, text in OPTIONS:
        group.addoption(
            flag,
            dest="http_" + flag.removeprefix("--").replace("-", "_"),
            default=os.environ.get(variable),
            help=f"{text}; env {variable}",
        )


def pytest_configure(config: pytest.Config) -> None:
    """Register the tier marker and, on the controller, the results writer; let Ctrl-C reach
    the servers under test.

    A shell that starts the suite in the background (`./run-tests &`, nohup, some CI runners)
    leaves SIGINT ignored, and an ignored signal stays ignored across exec: every server would
    then ignore the shutdown tests' SIGINT, a correct one failing them. A handled signal is reset
    to its default at exec, so the suite handles it as Python does by default.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    config.addinivalue_line("markers", "tier(name): grading tier, 'required' or 'recommended'")
    config.addinivalue_line("markers", "lab(key): the lab rule a required test enforces")
    path = settings(config).results_json
    if path is not None and not hasattr(config, "workerinput"):
        config.pluginmanager.register(ResultsJson(path), "http-results-json")


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize every test that takes `mode` over the selected modes (mode first in the id)."""
    if "mode" not in metafunc.fixturenames:
        return
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0] if marker.args else marker.kwargs.get("argnames", ())
        names = names.split(",") if isinstance(names, str) else names
        if "mode" in (name.strip() for name in names):
            return
    modes = settings(metafunc.config).modes
    metafunc.parametrize("mode", modes, ids=list(modes))


def item_tier(item: pytest.Item) -> str:
    """Return the tier of a test: its tier marker's argument, else "required"."""
    marker = item.get_closest_marker("tier")
    tier = marker.args[0] if marker and marker.args else "required"
    if tier not in TIERS:
        raise pytest.UsageError(f"{item.nodeid}: tier must be one of {TIERS}, not {tier!r}")
    return tier


def item_lab(item: pytest.Item) -> str | None:
    """Return the lab rule key of a test (its `lab` marker), or None.

    Raises: pytest.UsageError for a key that harness/lab_rules.toml does not list.
    """
    marker = item.get_closest_marker("lab")
    if marker is None:
        return None
    key = marker.args[0] if marker.args else None
    if key not in lab_rules():
        raise pytest.UsageError(f"{item.nodeid}: lab({key!r}) is not a key of {LAB_RULES.name}")
    return key


def _check_lab(item: pytest.Item, tier: str, lab: str | None) -> None:
    """Fail collection for a required test of the grading suite that names no lab rule."""
    suite = any(item.path.is_relative_to(item.config.rootpath / name) for name in SUITE_DIRS)
    if tier == "required" and lab is None and suite:
        raise pytest.UsageError(
            f"{item.nodeid}: a required check names the lab rule it enforces "
            f'(@pytest.mark.lab("KEY") with a key of {LAB_RULES.name}), or is recommended'
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Record each test's tier, lab rule, category and mode; --tier required drops the rest."""
    keep, drop = [], []
    for item in items:
        tier, lab = item_tier(item), item_lab(item)
        lab = lab if tier == "required" else None
        _check_lab(item, tier, lab)
        category = item.module.__name__.rpartition(".")[2] if item.module else None
        item.user_properties += [("tier", tier), ("lab", lab), ("category", category)]
        params = getattr(item, "callspec", None)
        if params is not None and "mode" in params.params:
            item.user_properties.append(("mode", params.params["mode"]))
        (drop if settings(config).tier == "required" and tier != "required" else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator:
    """Report a ServerError (start failure, death) as its message alone, without a traceback.

    A failed test that attached no evidence gets one example made of its requirement (the first
    docstring line) and the first line of its failure message, so every failure can be shown.
    """
    report = yield
    if call.excinfo is not None and call.excinfo.errisinstance(ServerError):
        report.longrepr = str(call.excinfo.value)
    if report.failed and not any(name == "evidence" for name, _ in report.user_properties):
        report.user_properties.append(("evidence", [_fallback_evidence(item, report)]))
    return report


def _fallback_evidence(item: pytest.Item, report: pytest.TestReport) -> dict[str, str]:
    """Return an evidence example for a failed test that attached none."""
    function = getattr(item, "function", None)
    doc = ((function.__doc__ if function else None) or "").strip().splitlines()
    message = report.longreprtext.strip().splitlines()
    first = next((line for line in message if line.startswith("E ")), message[0] if message else "")
    got = first.removeprefix("E").strip().removeprefix("AssertionError:").strip()
    return {"request": "", "response": got[:300], "expected": doc[0] if doc else item.name}


@pytest.fixture(scope="session")
def server_command(pytestconfig: pytest.Config) -> ServerCommand:
    """How to run the server under test (--server, --python)."""
    return settings(pytestconfig).command


@pytest.fixture
def server_factory(server_command: ServerCommand) -> Iterator[ServerFactory]:
    """Start servers for this test: `server_factory(mode, tree=..., delay=..., ...)`.

    Every server started is stopped, reaped and its tree verified unchanged at teardown.
    """
    factory = ServerFactory(server_command)
    yield factory
    problems = factory.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def conformance_server(server_command: ServerCommand) -> Iterator[ServerPool]:
    """Cached servers for table cases: `conformance_server(mode, tree)`, one per worker."""
    pool = ServerPool(server_command)
    yield pool
    problems = pool.close()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


class ResultsJson:
    """Collects one record per test from reports (xdist-safe) and writes them at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[str, dict] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Merge one phase's report into the test's record."""
        record = self.records.setdefault(report.nodeid, _new_record(report.nodeid))
        record.update((k, v) for k, v in report.user_properties if k not in _RESERVED)
        record["duration"] = round(record["duration"] + report.duration, 4)
        verdict = _verdict(report)
        if verdict and record["verdict"] in ("passed", None):
            record["verdict"] = verdict
            record["message"] = report.longreprtext[:4000] if report.failed else ""
        if report.skipped and not record["message"]:
            record["message"] = _skip_reason(report)
        failed = record["verdict"] in ("failed", "error")
        record["evidence"] = (record["evidence"] or [])[:MAX_EVIDENCE] if failed else None
        record["finding"] = record["finding"] if failed else None

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the records as JSON."""
        records = list(self.records.values())
        summary: dict[str, int] = {}
        for record in records:
            verdict = record["verdict"] or "unknown"
            summary[verdict] = summary.get(verdict, 0) + 1
        config = settings(session.config)
        document = {
            "server": str(config.command.script),
            "python": config.command.python,
            "tier": config.tier,
            "summary": summary,
            "tests": records,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")


def _new_record(nodeid: str) -> dict:
    """Return an empty results record."""
    record: dict = dict.fromkeys(_FIELDS, None)
    return record | {"nodeid": nodeid, "verdict": None, "duration": 0.0, "message": ""}


def _verdict(report: pytest.TestReport) -> str | None:
    """Return the verdict one phase's report implies (None for a passing setup/teardown)."""
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.failed:
        return "failed" if report.when == "call" else "error"
    if report.skipped:
        return "skipped"
    return "passed" if report.when == "call" else None


def _skip_reason(report: pytest.TestReport) -> str:
    """Return the reason text of a skip report."""
    longrepr = report.longrepr
    return str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)
