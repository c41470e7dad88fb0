"""What a student sees of a failed check: examples, server-wide findings, service timelines.

Strategy: the suite attaches to each failed record an `evidence` list (the request sent, what
came back, what was expected, the server's exit status and stderr tail), a `finding` id for a
defect it reports once for the whole server (a crash, a connection left open), and a `timeline`
of the delayed clients for overlap tests. These helpers only read those fields (never parse a
traceback): they pick examples deterministically, shorten them, and gather findings and
timelines per mode. A record without evidence falls back to its first message line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

TEXT_CHARS, TAIL_LINES = 200, 8
FAILED = ("failed", "error", "not run")
_WORKER_LINE = re.compile(r"^\[gw\d+\] .* -- Python .*\n?", re.MULTILINE)
_ASSERTION_LINE = re.compile(r"^E +(?:AssertionError: |Failed: )?(.+)$", re.MULTILINE)


@dataclass
class Example:
    """One failed exchange, shortened: the check, its mode, and what was sent, got, expected."""

    check: str
    mode: str
    request: str = ""
    response: str = ""
    expected: str = ""
    exit_status: str = ""
    stderr_tail: str = ""


@dataclass
class Finding:
    """A server-wide defect the suite reports once: its id, modes, and one example."""

    id: str
    summary: str
    modes: list[str] = field(default_factory=list)
    example: Example | None = None


@dataclass
class Timeline:
    """One mode's delayed clients: [start, end] seconds after the first send, per client."""

    mode: str
    check: str
    delay: float
    clients: list[list[float | None]]  # an end of None: the client never got its reply
    passed: bool


def subject(record: dict) -> str:
    """Return what a record checks, the same in every mode and variant: its case id, else the
    test's name and parameters without the mode."""
    case = record.get("case") or record.get("case_id")
    if case:
        return str(case)
    name, _, params = record["nodeid"].partition("[")
    params = params.rstrip("]")
    mode = record.get("mode") or ""
    if params == mode:
        params = ""
    elif mode and params.startswith(mode + "-"):
        params = params[len(mode) + 1 :]
    test = name.rsplit("::", 1)[-1]
    return f"{test}[{params}]" if params else test


def examples(records: Sequence[dict], modes: Sequence[str] = (), limit: int = 3) -> list[Example]:
    """Return at most `limit` examples from failed records, one per subject, in a stable order
    (by subject, then mode in `modes` order)."""
    chosen: dict[str, Example] = {}
    for record in sorted(records, key=lambda record: _record_order(record, modes)):
        name = subject(record)
        if record["verdict"] in FAILED and name not in chosen and len(chosen) < limit:
            chosen[name] = example_of(record)
    return list(chosen.values())


def example_of(record: dict) -> Example:
    """Return a record's first evidence entry as an Example (or its message, without one)."""
    evidence = record.get("evidence") or []
    mode = record.get("mode") or "every mode"
    if evidence and isinstance(evidence[0], dict):
        first = evidence[0]
        return Example(
            check=subject(record),
            mode=mode,
            request=shorten(first.get("request", "")),
            response=shorten(first.get("response", ""), lines=6),
            expected=shorten(first.get("expected", "")),
            exit_status=shorten(first.get("exit_status", "")),
            stderr_tail=tail(first.get("stderr_tail", "")),
        )
    return Example(
        check=subject(record),
        mode=mode,
        request=shorten(record.get("sent") or ""),
        response=shorten(problem(record)),
    )


def problem(record: dict) -> str:
    """Return what a record's message says first (its assertion, if pytest wrote a traceback)."""
    message = _WORKER_LINE.sub("", record.get("message") or "").strip("\n")
    explained = _ASSERTION_LINE.search(message)
    line = explained.group(1) if explained else message.partition("\n")[0]
    return line.strip() or record["verdict"]


def findings(records: Iterable[dict]) -> list[Finding]:
    """Return one Finding per finding id among failed records, with every mode it was seen in."""
    found: dict[str, Finding] = {}
    for record in sorted(records, key=_record_order):
        name = record.get("finding")
        if not name or record["verdict"] not in FAILED:
            continue
        if name not in found:
            found[name] = Finding(name, shorten(problem(record)), example=example_of(record))
        mode = record.get("mode") or "every mode"
        if mode not in found[name].modes:
            found[name].modes.append(mode)
    return list(found.values())


def timelines(records: Iterable[dict], modes: Sequence[str]) -> list[Timeline]:
    """Return each graded mode's first overlap timeline (required tier preferred), in mode order."""
    by_mode: dict[str, Timeline] = {}
    ordered = sorted(records, key=lambda r: (r.get("tier") != "required", r["nodeid"]))
    for record in ordered:
        timeline, mode = record.get("timeline"), record.get("mode")
        if mode in by_mode or not isinstance(timeline, dict):
            continue
        try:
            clients = [
                [_seconds(start) or 0.0, _seconds(end)] for start, end in timeline["clients"]
            ]
            delay = float(timeline.get("delay") or 0.0)
        except (KeyError, TypeError, ValueError):
            continue  # not the contract's shape: nothing to draw
        if clients:
            passed = record["verdict"] == "passed"
            by_mode[mode] = Timeline(mode, subject(record), delay, clients, passed)
    return [by_mode[mode] for mode in modes if mode in by_mode]


def _seconds(value: float | str | None) -> float | None:
    """Return a timeline instant as a float, None staying None (a client never answered)."""
    return None if value is None else float(value)


def shorten(text: str, chars: int = TEXT_CHARS, lines: int = 1) -> str:
    """Return text cut to `lines` lines and `chars` characters, marking any cut with "…"."""
    kept = str(text).splitlines()[:lines] or [""]
    short = "\n".join(kept)
    cut = len(short) > chars or len(str(text).splitlines()) > lines
    return (short[:chars].rstrip() + " …") if cut else short


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """Return the last `lines` lines of a stderr tail, each at most TEXT_CHARS characters."""
    return "\n".join(line[:TEXT_CHARS] for line in str(text).splitlines()[-lines:])


def _record_order(record: dict, modes: Sequence[str] = ()) -> tuple:
    """Order records by what they check, then mode (in `modes` order) and nodeid, so picks
    never depend on the order records arrive in."""
    mode = record.get("mode") or ""
    rank = modes.index(mode) if mode in modes else len(modes)
    return (subject(record), rank, mode, record["nodeid"])
