"""Run the table-driven cases of conformance/cases/*.toml against the server under test."""

# Strategy: cases are loaded and validated once, strictly (a bad case is a collection error
# naming its file and id), and expanded into runs: one per variant, plus, for a required case, a
# recommended-tier "invariants" run that checks the recommended response invariants, so a
# required test never fails on a recommended rule. The plugin adds `mode`. A run sends its
# request to the cached server of its mode and tree and gathers every problem (outcome, headers,
# body, invariants, server death, changed tree) into one message that starts with the case id.

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from harness.client import VARIANTS, Reply, exchange
from harness.evidence import example, response_words
from harness.fixtures import TREES, expected_content, outside_markers
from harness.plugin import TIERS, lab_rules, settings
from harness.server import ServerError, ServerPool, ServerProcess

CLOSE = "close"
ANY = "any"
BODY_KINDS = ("any", "html", "empty", "404-page")
INVARIANTS = "invariants"
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
KEBAB = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
REPEAT = re.compile(r"\{\{(\d+)\*(.*?)\}\}", re.DOTALL)
TIMEOUT, VARIANT_PAUSE, BODY_LIMIT, SHOWN = 5.0, 0.02, 64 * 1024 * 1024, 300
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_IMF_FIXDATE = re.compile(r"(\w{3}), (\d\d) (\w{3}) (\d{4}) (\d\d):(\d\d):(\d\d) GMT")


class CaseError(Exception):
    """A case file or case that does not follow conformance/FORMAT.md."""


@dataclass(frozen=True)
class Case:
    """One validated conformance case (see conformance/FORMAT.md)."""

    id: str
    source: str
    status: tuple
    file: str
    request: bytes = b""
    chunks: tuple[bytes, ...] | None = None
    shown: str = ""
    summary: str = ""
    tier: str = "required"
    lab: str | None = None
    pause_ms: int = 50
    headers_present: tuple[str, ...] = ()
    headers_absent: tuple[str, ...] = ()
    headers_equal: tuple[tuple[str, str], ...] = ()
    headers_match: tuple[tuple[str, str], ...] = ()
    body: str = "any"
    variants: tuple[str, ...] = VARIANTS
    server: str = "default"


@dataclass(frozen=True)
class Run:
    """One test: a case sent in one variant ("invariants": the recommended invariants run)."""

    case: Case
    variant: str
    tier: str = "required"

    @property
    def id(self) -> str:
        """The test id part, e.g. "method-post-405-bytewise"."""
        return f"{self.case.id}-{self.variant}"


# --- loading and validation -----------------------------------------------------------------


def _is_latin1_text(value: object) -> bool:
    """Say whether value is a string of U+0000..U+00FF characters."""
    return isinstance(value, str) and all(ord(char) < 256 for char in value)


def _is_str_list(value: object, item: Callable[[str], object] = bool) -> bool:
    """Say whether value is a list of strings each accepted by `item`."""
    return isinstance(value, list) and all(isinstance(x, str) and item(x) for x in value)


def _is_status(value: object) -> bool:
    """Say whether value is a status code 100..599 or "close"."""
    return value == CLOSE or (type(value) is int and 100 <= value <= 599)


def _is_status_list(value: object) -> bool:
    """Say whether value is ["any"] or a non-empty list of status codes and/or "close"."""
    if value == [ANY]:
        return True
    return isinstance(value, list) and bool(value) and all(_is_status(x) for x in value)


def _is_regex(value: str) -> bool:
    """Say whether value compiles as a Python regex."""
    try:
        re.compile(value)
    except re.error:
        return False
    return True


def _is_header_table(value: object, check: Callable[[str], bool] = bool) -> bool:
    """Say whether value maps header-name tokens to strings accepted by `check`."""
    return isinstance(value, dict) and all(
        TOKEN.fullmatch(k) and isinstance(v, str) and check(v) for k, v in value.items()
    )


def _is_body(value: object) -> bool:
    """Say whether value is a body check: any, html, empty, 404-page or file:NAME."""
    return isinstance(value, str) and (value in BODY_KINDS or value.startswith("file:"))


def _is_variant_list(value: object) -> bool:
    """Say whether value is a non-empty list of distinct variant names."""
    return _is_str_list(value, VARIANTS.__contains__) and 0 < len(value) == len(set(value))


# key -> (check, what it must be)
RULES: dict[str, tuple[Callable[[object], bool], str]] = {
    "id": (lambda v: isinstance(v, str) and bool(KEBAB.fullmatch(v)), "a kebab-case string"),
    "summary": (lambda v: isinstance(v, str), "a string"),
    "tier": (lambda v: v in TIERS, f"one of {TIERS}"),
    "source": (lambda v: isinstance(v, str) and bool(v.strip()), "a non-empty string"),
    "lab": (lambda v: v in lab_rules(), "a key of harness/lab_rules.toml"),
    "request": (_is_latin1_text, "a string of U+0000..U+00FF characters"),
    "chunks": (lambda v: _is_str_list(v, _is_latin1_text) and bool(v), "a list of such strings"),
    "pause_ms": (lambda v: type(v) is int and 0 <= v <= 10_000, "an integer 0..10000"),
    "status": (_is_status_list, '["any"], or a list of status codes 100..599 and/or "close"'),
    "headers_present": (lambda v: _is_str_list(v, TOKEN.fullmatch), "a list of header names"),
    "headers_absent": (lambda v: _is_str_list(v, TOKEN.fullmatch), "a list of header names"),
    "headers_equal": (_is_header_table, "a table of header name -> string"),
    "headers_match": (lambda v: _is_header_table(v, _is_regex), "a table of name -> regex"),
    "body": (_is_body, f"one of {BODY_KINDS} or file:NAME"),
    "variants": (_is_variant_list, f"a non-empty list of distinct variants from {VARIANTS}"),
    "server": (lambda v: v in TREES, f"one of {TREES}"),
}


def load_cases(path: Path) -> list[Case]:
    """Load and validate every case of a case file, or of every *.toml in a folder.

    Raises: CaseError naming the file and case id for any problem (including duplicate ids).
    """
    files = sorted(path.glob("*.toml")) if path.is_dir() else [path]
    if not files:
        raise CaseError(f"{path}: no case files (*.toml)")
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for file in files:
        for case in _load_file(file):
            if case.id in seen:
                raise CaseError(
                    f"{file.name}: case {case.id!r}: duplicate id (also in {seen[case.id]})"
                )
            seen[case.id] = file.name
            cases.append(case)
    return cases


def _load_file(file: Path) -> list[Case]:
    """Load one case file."""
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CaseError(f"{file.name}: cannot read: {exc}") from exc
    unknown = set(document) - {"defaults", "case"}
    tables = document.get("case", [])
    if unknown or not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise CaseError(
            f"{file.name}: only [defaults] and [[case]] tables allowed, got {sorted(document)}"
        )
    defaults = document.get("defaults", {})
    _check_keys(file.name, "[defaults]", defaults, exclude={"id"})
    return [_make_case(file.name, defaults | raw) for raw in document.get("case", [])]


def _check_keys(file: str, where: str, table: dict, exclude: frozenset | set = frozenset()) -> None:
    """Raise CaseError for an unknown key or a bad value in a case or defaults table."""
    for key, value in table.items():
        if key not in RULES or key in exclude:
            raise CaseError(f"{file}: {where}: unknown key {key!r}")
        check, what = RULES[key]
        if not check(value):
            raise CaseError(
                f"{file}: {where}: {key} must be {what}, not {value!r}{_latin1_hint(value)}"
            )


def _latin1_hint(value: object) -> str:
    """Point at the first non-latin-1 character of a string (or list of strings), if any."""
    for text in value if isinstance(value, list) else [value]:
        for index, char in enumerate(text if isinstance(text, str) else ""):
            if ord(char) > 255:
                return f" (U+{ord(char):04X} at position {index} is outside U+0000..U+00FF)"
    return ""


def _make_case(file: str, raw: dict) -> Case:
    """Validate one case table (defaults already merged) and build the Case."""
    where = f"case {raw.get('id', '(no id)')!r}"
    _check_keys(file, where, raw)
    missing = {"id", "source", "status"} - set(raw)
    if missing or ("request" in raw) == ("chunks" in raw):
        need = sorted(missing) or ["exactly one of request/chunks"]
        raise CaseError(f"{file}: {where}: missing {', '.join(need)}")
    try:
        fields = _case_fields(raw)
        _check_consistency(fields)
    except CaseError as exc:
        raise CaseError(f"{file}: {where}: {exc}") from None
    return Case(file=file, **fields)


def _case_fields(raw: dict) -> dict:
    """Turn a validated raw case into Case keyword arguments (expanding {{N*TEXT}})."""
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    for key in ("headers_equal", "headers_match"):
        fields[key] = tuple(raw.get(key, {}).items())
    if "chunks" in raw:
        fields["chunks"] = tuple(expand(chunk).encode("latin-1") for chunk in raw["chunks"])
        fields["variants"] = tuple(raw.get("variants", ["whole"]))
        fields["shown"] = " | ".join(_show_template(chunk) for chunk in raw["chunks"])
    else:
        fields["request"] = expand(raw["request"]).encode("latin-1")
        fields["shown"] = _show_template(raw["request"])
    return fields


def _check_consistency(fields: dict) -> None:
    """Raise CaseError for combinations of keys that cannot work (or a tier without its lab)."""
    required = fields.get("tier", "required") == "required"
    if required and "lab" not in fields:
        raise CaseError("a required case names the lab rule it enforces: add lab = KEY")
    if not required and "lab" in fields:
        raise CaseError("a recommended case enforces no lab rule: remove its lab key")
    if fields.get("chunks") and fields["variants"] != ("whole",):
        raise CaseError('a chunks case runs only in variants = ["whole"]')
    body, tree = fields.get("body", "any"), fields.get("server", "default")
    name = body.removeprefix("file:") if body.startswith("file:") else "404.html"
    if body.startswith("file:") or body == "404-page":
        try:
            expected_content(name, tree)
        except KeyError:
            raise CaseError(f"body {body!r}: tree {tree!r} has no regular file {name!r}") from None


def expand(text: str) -> str:
    """Expand every {{N*TEXT}} in `text` into TEXT repeated N times.

    Raises: CaseError for a "{{" that does not start a well-formed repetition.
    """
    expanded = REPEAT.sub(lambda m: m.group(2) * int(m.group(1)), text)
    if "{{" in REPEAT.sub("", text):
        raise CaseError(f"malformed {{{{N*TEXT}}}} in {text[:80]!r}")
    return expanded


def _show_template(text: str) -> str:
    """Return the escaped, truncated form of a request template for messages."""
    shown = repr(text.encode("latin-1"))[1:]
    return shown if len(shown) <= SHOWN else f"{shown[:SHOWN]}... ({len(shown)} chars)"


def expand_runs(cases: list[Case]) -> list[Run]:
    """Return every run of every case: its variants, plus "invariants" for required cases."""
    runs = []
    for case in cases:
        runs += [Run(case, variant, case.tier) for variant in case.variants]
        if case.tier == "required":
            runs.append(Run(case, INVARIANTS, "recommended"))
    return runs


@functools.cache
def _runs_from(path: Path) -> list[Run]:
    """Load and expand the cases at `path` once per process."""
    return expand_runs(load_cases(path))


def _marks(run: Run) -> list[pytest.MarkDecorator]:
    """Return a run's markers: its tier, and for a required run the lab rule of its case."""
    marks = [pytest.mark.tier(run.tier)]
    return marks + ([pytest.mark.lab(run.case.lab)] if run.tier == "required" else [])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize `run` over every (case, variant), tier-marked, ids like "case-id-variant"."""
    if "run" not in metafunc.fixturenames:
        return
    try:
        runs = _runs_from(settings(metafunc.config).cases.resolve())
    except CaseError as exc:
        pytest.fail(f"invalid conformance case: {exc}", pytrace=False)
    params = [pytest.param(run, id=run.id, marks=_marks(run)) for run in runs]
    metafunc.parametrize("run", params)


# --- checks ---------------------------------------------------------------------------------


def _allowed(case: Case) -> str:
    """Return the case's acceptable outcomes as text."""
    return "[" + ", ".join(str(status) for status in case.status) + "]"


def check_outcome(case: Case, reply: Reply) -> list[str]:
    """Return a problem if the outcome is not one the case accepts."""
    if reply.outcome == "response":
        ok = reply.status in case.status
        return [] if ok else [f"status {reply.status} is not one of {_allowed(case)}"]
    if reply.outcome in ("closed-without-response", "reset") and CLOSE in case.status:
        return []
    detail = f" ({reply.error})" if reply.error else ""
    return [f"outcome {reply.outcome}{detail} is not one of {_allowed(case)}"]


def _combined(reply: Reply, name: str) -> str | None:
    """Return all values of a header joined by ", " (RFC 9110 5.3), or None if absent."""
    values = reply.header_values(name)
    return ", ".join(values) if values else None


def check_headers(case: Case, reply: Reply) -> list[str]:
    """Return problems with the headers the case requires, forbids or constrains."""
    problems = [
        f"header {name} is missing" for name in case.headers_present if not reply.header(name)
    ]
    problems += [
        f"header {name} must be absent" for name in case.headers_absent if reply.header(name)
    ]
    for name, wanted in case.headers_equal:
        value = _combined(reply, name)
        if value != wanted:
            problems.append(f"header {name} is {value!r}, expected {wanted!r}")
    for name, pattern in case.headers_match:
        value = _combined(reply, name)
        if value is None or not re.search(pattern, value):
            problems.append(f"header {name} is {value!r}, expected to match {pattern!r}")
    return problems


def check_body(case: Case, reply: Reply) -> list[str]:
    """Return problems with the body, per the case's body check."""
    if case.body == "empty":
        return (
            []
            if reply.body_received == 0
            else [f"body must be empty, got {reply.body_received} bytes"]
        )
    if case.body == "html":
        looks = reply.body and b"<" in reply.body and b">" in reply.body
        return [] if looks else [f"body must be an HTML page, got {reply.body[:60]!r}"]
    if case.body == "any":
        return []
    name = "404.html" if case.body == "404-page" else case.body.removeprefix("file:")
    return _compare_body(reply.body, expected_content(name, case.server), name)


def _compare_body(got: bytes, wanted: bytes, name: str) -> list[str]:
    """Return a problem naming the first differing byte if `got` is not `wanted`."""
    if got == wanted:
        return []
    first = next((i for i, (a, b) in enumerate(zip(got, wanted, strict=False)) if a != b), None)
    where = (
        f"first difference at byte {first}" if first is not None else "one is a prefix of the other"
    )
    return [f"body is not fixture file {name}: {len(got)} bytes, expected {len(wanted)}; {where}"]


def check_required_invariants(reply: Reply, tolerate_reset: bool = False) -> list[str]:
    """Return problems with the invariants every response must meet (required tier).

    Args: `tolerate_reset` (a required case whose request carries bytes after its head) lets a
    body cut short by a reset pass: a server that answers after the head and closes with those
    bytes unread sends a reset, which makes the kernel drop what it had not sent yet; avoiding
    that is the lingering close of RFC 9112 9.6, which the lab never asks for (the recommended
    `method-post-body-1mb` checks it).
    """
    problems = list(reply.problems)
    if reply.bare_lf:
        problems.append("response head uses bare LF line ends (CRLF required)")
    if reply.content_length is None and not any("Content-Length" in p for p in problems):
        problems.append("no Content-Length header")
    elif reply.error and not (tolerate_reset and reply.reset):
        problems.append(f"Content-Length {reply.content_length} not met: {reply.error}")
    elif reply.extra_bytes and reply.head_only:
        problems.append(f"the response to HEAD carried {reply.extra_bytes} bytes after its head")
    elif reply.extra_bytes:
        problems.append(
            f"{reply.extra_bytes} bytes arrived beyond Content-Length {reply.content_length}"
        )
    return problems


def check_outside_bytes(reply: Reply) -> list[str]:
    """Return a problem if the reply contains bytes of a file outside the served folder."""
    data = reply.head + reply.body
    leaked = [marker for marker in outside_markers() if marker in data]
    return [f"response contains a file from OUTSIDE the served folder: {m!r}" for m in leaked]


def check_recommended_invariants(reply: Reply) -> list[str]:
    """Return problems with what every good response also has (recommended tier)."""
    problems = (
        [] if reply.closed_by_server else ["server did not close the connection after the response"]
    )
    problems += [
        f"header {name} is missing" for name in ("Server", "Content-Type") if not reply.header(name)
    ]
    connection = (reply.header("Connection") or "").strip().lower()
    if connection != "close":
        problems.append(f"header Connection is {reply.header('Connection')!r}, expected 'close'")
    date = reply.header("Date")
    if date is None or not is_imf_fixdate(date):
        problems.append(f"header Date is {date!r}, expected an IMF-fixdate")
    return problems


def is_imf_fixdate(value: str) -> bool:
    """Say whether value is a valid IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT"."""
    match = _IMF_FIXDATE.fullmatch(value.strip())
    if not match or match.group(3) not in _MONTHS:
        return False
    day, year, hour, minute, second = (int(match.group(i)) for i in (2, 4, 5, 6, 7))
    try:
        date = datetime(year, _MONTHS.index(match.group(3)) + 1, day, hour, minute, second)
    except ValueError:
        return False
    return _DAYS[date.weekday()] == match.group(1)


def check(run: Run, reply: Reply) -> list[str]:
    """Return every problem of one run's reply (empty list: the run passed)."""
    case = run.case
    problems = check_outside_bytes(reply)
    if run.variant == INVARIANTS:
        return problems + (
            check_recommended_invariants(reply) if reply.outcome == "response" else []
        )
    if ANY in case.status:
        return problems
    problems += check_outcome(case, reply)
    if reply.outcome != "response":
        return problems
    if reply.status in case.status:
        problems += check_headers(case, reply) + check_body(case, reply)
    tolerate_reset = case.tier == "required" and _sends_body(case)
    problems += check_required_invariants(reply, tolerate_reset)
    return problems + (check_recommended_invariants(reply) if case.tier == "recommended" else [])


# --- the test -------------------------------------------------------------------------------


def send(
    server: ServerProcess, run: Run, close_wait: float = 1.0, head_timeout: float | None = None
) -> Reply:
    """Send the run's request to the server per its variant and return the reply."""
    case = run.case
    variant = case.variants[0] if run.variant == INVARIANTS else run.variant
    pause = case.pause_ms / 1000 if case.chunks else VARIANT_PAUSE
    return exchange(
        server.port,
        case.request,
        variant,
        case.chunks,
        pause,
        TIMEOUT,
        host=server.host,
        close_wait=close_wait,
        body_limit=BODY_LIMIT,
        head_timeout=head_timeout,
    )


def expectation(run: Run) -> str:
    """Return what the run expects, in words (for the evidence a student reads)."""
    if run.variant == INVARIANTS:
        return "a response with Date, Server, Content-Type, Connection: close, then the close"
    case = run.case
    if ANY in case.status:
        return "any answer without a byte from outside the served folder"
    codes = [str(status) for status in case.status if status != CLOSE]
    words = "status " + " or ".join(codes) if codes else "no response"
    words += " (or closing without a response)" if CLOSE in case.status and codes else ""
    bodies = {"html": "an HTML error page", "empty": "an empty body", "404-page": "the 404.html"}
    body = bodies.get(case.body, f"the exact bytes of {case.body.removeprefix('file:')}")
    words += "" if case.body == "any" else f" with {body}"
    return words + ", and a Content-Length equal to the body"


def _request_bytes(case: Case) -> bytes:
    """Return every byte the case sends."""
    return case.request if case.chunks is None else b"".join(case.chunks)


def _sends_body(case: Case) -> bool:
    """Say whether the case sends bytes after the end of its request head."""
    request = _request_bytes(case)
    end = request.find(b"\r\n\r\n")
    return end >= 0 and len(request) > end + 4


def failure_message(run: Run, mode: str, problems: list[str], reply: Reply | None) -> str:
    """Return the failure text: case id and source, problems, what was sent, what came back."""
    case = run.case
    size = len(case.request) if case.chunks is None else sum(map(len, case.chunks))
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    lines = [f"{case.id} ({case.source}): {problems[0].splitlines()[0]}{more}"]
    lines.append(f"  [{run.tier} tier, mode {mode}, variant {run.variant}, tree {case.server}]")
    if len(problems) > 1 or "\n" in problems[0]:
        lines += ["  - " + problem.replace("\n", "\n    ") for problem in problems]
    lines.append(f"sent ({size} bytes): {case.shown}")
    if reply is not None:
        lines += ["got:"] + ["  " + line for line in reply.describe().splitlines()]
    return "\n".join(lines)


def test_case(
    mode: str, run: Run, conformance_server: ServerPool, request: pytest.FixtureRequest
) -> None:
    """The server answers the case's request as the case (and FORMAT.md's invariants) require.

    A failure records one evidence example; a request that killed the server is the finding
    "crash", one that got no response in time "hang" (the next case gets a fresh server).
    """
    node, case = request.node, run.case
    node.user_properties += [
        ("case_id", case.id),
        ("case", case.id),
        ("category", case.file.removesuffix(".toml")),
        ("variant", run.variant),
        ("source", case.source),
        ("tree", case.server),
        ("sent", case.shown),
    ]
    try:
        server = conformance_server(mode, case.server)
    except ServerError as exc:
        pytest.fail(failure_message(run, mode, [str(exc)], None), pytrace=False)
    head_timeout = conformance_server.head_timeout(server)
    reply = send(server, run, conformance_server.close_wait(server), head_timeout)
    aftermath = conformance_server.after(server, reply)
    problems = check(run, reply) + aftermath.problems
    finding = aftermath.finding or ("hang" if reply.outcome == "timeout" else None)
    got = response_words(reply, head_timeout or TIMEOUT)
    shown = example(
        _request_bytes(case),
        got,
        expectation(run),
        exit_status=aftermath.exit_status,
        stderr_tail=aftermath.stderr_tail,
    )
    node.user_properties += [
        ("outcome", reply.outcome),
        ("status", reply.status),
        ("received", reply.describe()[:2000]),
        ("evidence", [shown]),
        ("finding", finding),
    ]
    node.user_properties += [("server_note", note) for note in conformance_server.take_notes()]
    if problems:
        pytest.fail(failure_message(run, mode, problems, reply), pytrace=False)
    if run.variant == INVARIANTS and reply.outcome != "response":
        pytest.skip(f"no response to check the recommended invariants on ({reply.outcome})")
