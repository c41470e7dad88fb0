"""Turn the suite's per-test records into a Scorecard: items, requirement groups, modes, score."""

# Strategy: a test record belongs to one *item* (a conformance case in one mode and tier, all its
# variants together; any other test in one mode and tier, all its parametrizations together), and
# an item to one requirement group of the GROUPS table, by its file. An item earns the share of
# its tests that passed; a group the mean of its items; a mode the weighted mean of its groups
# (required tier only); the score is the sum over graded modes, each worth an equal share of 100.

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

MAX_POINTS = 100.0
SCORED_TIER, REPORTED_TIER = "required", "recommended"
NOT_RUN, ANY_MODE = "not run", "(every mode)"
GRADED, NOT_OFFERED = "graded", "not offered"
SUITE_SIGNALS = ("SIGTERM", "SIGINT", "SIGKILL")
CREDIT = {"passed": 1.0, "failed": 0.0, "error": 0.0, NOT_RUN: 0.0}  # other verdicts don't count
_WORKER_LINE = re.compile(r"^\[gw\d+\] .* -- Python .*\n?", re.MULTILINE)
_ASSERTION_LINE = re.compile(r"^E +(?:AssertionError: |Failed: )?(.+)$", re.MULTILINE)
_DIED = re.compile(
    r"server under test \(mode ([\w-]+), pid (\d+), port \d+\) died: exit status ([^;\n]+)"
)
_NO_START = re.compile(
    r"server under test \(mode ([\w-]+)\) (.+?) at start-up: exit status ([^\n]+)"
)


@dataclass(frozen=True)
class Group:
    """A requirement group: the tests whose file matches one of `patterns`."""

    name: str
    weight: float
    patterns: tuple[str, ...]


# Weight of each requirement group in a mode's score (required tier). A test belongs to the first
# group with a pattern matching its "file::function"; a group with no scorable test in a mode
# drops out and the others share its weight, so 300 HTTP cases never drown a few concurrency tests.
GROUPS: tuple[Group, ...] = (
    Group("HTTP conformance cases", 35, ("conformance/test_conformance.py::*",)),
    Group("Large files, unreadable files, hang-ups", 10, ("conformance/*",)),
    Group("Concurrent service under --delay", 20, ("concurrency_tests/test_overlap.py::*",)),
    Group("Real threads, processes, pools", 10, ("concurrency_tests/test_process_model.py::*",)),
    Group("Graceful shutdown on SIGINT/SIGTERM", 10, ("concurrency_tests/test_shutdown.py::*",)),
    Group(
        "Idle connections",
        5,
        ("concurrency_tests/test_idle.py::*", "concurrency_tests/*::*idle*", "*::*chromium_holds*"),
    ),
    Group("Load and slow readers", 5, ("concurrency_tests/test_load.py::*",)),
    Group(
        "Real clients (requests, curl, Chromium, wrk)",
        5,
        ("concurrency_tests/test_real_clients.py::*",),
    ),
    Group("Other checks", 5, ("*",)),
)


@dataclass
class Item:
    """One scored unit: a case or test in one mode and tier, with all its variants' records."""

    group: str
    name: str
    mode: str
    tier: str
    requirement: str
    tests: list[dict] = field(default_factory=list)

    @property
    def credit(self) -> float | None:
        """The share of its scorable tests that passed, or None when none is scorable."""
        scored = [CREDIT[test["verdict"]] for test in self.tests if test["verdict"] in CREDIT]
        return sum(scored) / len(scored) if scored else None


@dataclass
class Tally:
    """Test counts of one mode and tier: failed includes errors and tests not run."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def rate(self) -> float | None:
        """Passed / (passed + failed), or None without scorable tests."""
        scored = self.passed + self.failed
        return self.passed / scored if scored else None


@dataclass
class GroupScore:
    """One requirement group in one mode and tier."""

    group: str
    weight: float
    items: int
    items_passed: int
    fraction: float
    points: float = 0.0
    max_points: float = 0.0


@dataclass
class ModeResult:
    """One graded mode: its status, points, per-tier counts and group scores."""

    mode: str
    status: str
    points: float = 0.0
    max_points: float = 0.0
    required: Tally = field(default_factory=Tally)
    recommended: Tally = field(default_factory=Tally)
    groups: list[GroupScore] = field(default_factory=list)
    recommended_groups: list[GroupScore] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        """Points earned as a share of the mode's maximum."""
        return self.points / self.max_points if self.max_points else 0.0


@dataclass
class Failure:
    """A failed item, ready to show: what, where, which variants, and the first failure's text."""

    tier: str
    requirement: str
    name: str
    mode: str
    group: str
    verdicts: list[str]
    variants: list[str]
    problem: str
    details: str


@dataclass
class Skip:
    """Tests skipped for one reason."""

    reason: str
    count: int
    example: str


@dataclass
class Scorecard:
    """Everything known about one graded submission (see score_card)."""

    name: str
    submission: str
    server: str = ""
    status: str = GRADED
    error: str = ""
    score: float = 0.0
    max_score: float = MAX_POINTS
    graded_modes: list[str] = field(default_factory=list)
    offered_modes: list[str] = field(default_factory=list)
    tier: str = REPORTED_TIER
    python: str = ""
    started: str = ""
    duration: float = 0.0
    notes: list[str] = field(default_factory=list)
    modes: list[ModeResult] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    log_tail: str = ""

    @property
    def graded(self) -> bool:
        """Whether the suite could judge this submission at all (timed-out runs count)."""
        return self.status not in ("invalid", "error")


def score_card(card: Scorecard, records: Iterable[dict]) -> Scorecard:
    """Return `card` completed from the suite's records: modes, score, failures, skips, notes.

    Args: `card` names the graded and offered modes; `records` are results-JSON test records
    (a missing or None verdict counts as not run).
    """
    records = [normalized(record) for record in records]
    items = build_items(records)
    share = MAX_POINTS / len(card.graded_modes) if card.graded_modes else 0.0
    modes = [mode_result(mode, items, card.offered_modes, share) for mode in card.graded_modes]
    notes = card.notes + offer_notes(modes, card.offered_modes) + crash_notes(records)
    return replace(
        card,
        modes=modes,
        score=round(sum(mode.points for mode in modes), 2),
        failures=sorted(filter(None, map(failure_of, items)), key=_failure_order),
        skipped=skip_summary(records),
        notes=notes,
    )


def normalized(record: dict) -> dict:
    """Return a record with verdict, mode and tier always set."""
    return record | {
        "verdict": record.get("verdict") or NOT_RUN,
        "mode": record.get("mode") or ANY_MODE,
        "tier": record.get("tier") or SCORED_TIER,
    }


def group_of(nodeid: str) -> Group:
    """Return the requirement group of a test, by its "file::function" (parameters dropped)."""
    name = nodeid.split("[", 1)[0]
    return next(g for g in GROUPS if any(fnmatch.fnmatchcase(name, p) for p in g.patterns))


def item_name(record: dict) -> str:
    """Return the item a record belongs to: its case id, else file::test without parameters."""
    return record.get("case_id") or record["nodeid"].split("[", 1)[0].rsplit("/", 1)[-1]


def variant_of(record: dict) -> str:
    """Return what tells a record apart within its item: its variant, else its parameters."""
    return record.get("variant") or record["nodeid"].partition("[")[2].rstrip("]") or "-"


def build_items(records: Iterable[dict]) -> list[Item]:
    """Group normalized records into items, in first-seen order."""
    items: dict[tuple[str, str, str, str], Item] = {}
    for record in records:
        group = group_of(record["nodeid"])
        key = (group.name, item_name(record), record["mode"], record["tier"])
        if key not in items:
            requirement = record.get("requirement") or record.get("source") or group.name
            items[key] = Item(*key, requirement=requirement)
        items[key].tests.append(record)
    return list(items.values())


def group_scores(items: Sequence[Item], mode: str, tier: str, share: float) -> list[GroupScore]:
    """Score each group with scorable items of `mode` (or of every mode) and `tier`.

    Args: `share` is the points the mode is worth, split across present groups by weight.
    """
    scores = []
    for group in GROUPS:
        credits = [
            credit
            for item in items
            if item.group == group.name and item.tier == tier and item.mode in (mode, ANY_MODE)
            if (credit := item.credit) is not None
        ]
        if credits:
            full = sum(credit == 1.0 for credit in credits)
            scores.append(GroupScore(group.name, group.weight, len(credits), full, _mean(credits)))
    total = sum(score.weight for score in scores)
    for score in scores:
        score.max_points = share * score.weight / total
        score.points = score.max_points * score.fraction
    return scores


def tally(items: Iterable[Item], mode: str, tier: str) -> Tally:
    """Count the tests of `mode` (and of every mode) in `tier` by outcome."""
    counts = Tally()
    for item in items:
        if item.tier != tier or item.mode not in (mode, ANY_MODE):
            continue
        for test in item.tests:
            credit = CREDIT.get(test["verdict"])
            counts.skipped += credit is None
            counts.passed += credit == 1.0
            counts.failed += credit == 0.0
    return counts


def mode_result(mode: str, items: Sequence[Item], offered: Sequence[str], share: float):
    """Return the ModeResult of one graded mode worth `share` points (0 if not offered)."""
    if mode not in offered:
        return ModeResult(mode, NOT_OFFERED, max_points=share)
    groups = group_scores(items, mode, SCORED_TIER, share)
    return ModeResult(
        mode,
        GRADED,
        points=sum(group.points for group in groups),
        max_points=share,
        required=tally(items, mode, SCORED_TIER),
        recommended=tally(items, mode, REPORTED_TIER),
        groups=groups,
        recommended_groups=group_scores(items, mode, REPORTED_TIER, share),
    )


def failure_of(item: Item) -> Failure | None:
    """Return the Failure of an item with any failed test, else None."""
    failed = [test for test in item.tests if CREDIT.get(test["verdict"]) == 0.0]
    if not failed:
        return None
    failed.sort(key=lambda test: test["verdict"] == NOT_RUN)  # a real failure explains best
    first = failed[0]
    message = clean_message(first.get("message") or "")
    problem = first_line(message).removeprefix(f"{item.name} ({item.requirement}): ")
    return Failure(
        tier=item.tier,
        requirement=item.requirement,
        name=item.name,
        mode=item.mode,
        group=item.group,
        verdicts=sorted({test["verdict"] for test in failed}),
        variants=[variant_of(test) for test in failed],
        problem=problem or first["verdict"],
        details=_with_exchange(message, first),
    )


def first_line(message: str) -> str:
    """Return what a failure message says first: its first "E " line if pytest wrote a traceback."""
    explained = _ASSERTION_LINE.search(message)
    return explained.group(1) if explained else message.partition("\n")[0]


def clean_message(message: str) -> str:
    """Drop xdist's "[gw0] linux -- Python ..." line and surrounding blank lines."""
    return _WORKER_LINE.sub("", message).strip("\n")


def _with_exchange(message: str, record: dict) -> str:
    """Return the message, plus the record's sent/received text where the message lacks it."""
    parts, shown = [message], _squash(message)
    if record.get("sent") and _squash(record["sent"]) not in shown:
        parts.append(f"sent: {record['sent']}")
    if record.get("received") and _squash(record["received"]) not in shown:
        parts.append("got:\n" + record["received"])
    return "\n".join(part for part in parts if part)


def _squash(text: str) -> str:
    """Return text with every line stripped, to compare texts indented differently."""
    return "\n".join(line.strip() for line in text.splitlines())


def _failure_order(failure: Failure) -> tuple:
    """Required tier first, then by requirement, name and mode."""
    return (failure.tier != SCORED_TIER, failure.requirement, failure.name, failure.mode)


def skip_summary(records: Iterable[dict]) -> list[Skip]:
    """Return the not-scored records grouped by reason, most frequent first."""
    reasons: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for record in records:
        if record["verdict"] in CREDIT:
            continue
        reason = f"{record['verdict']}: {clean_message(record.get('message') or '')}".strip(": ")
        reasons[reason] += 1
        examples.setdefault(reason, record["nodeid"])
    return [Skip(reason, count, examples[reason]) for reason, count in reasons.most_common()]


def offer_notes(modes: Iterable[ModeResult], offered: Sequence[str]) -> list[str]:
    """Return a note for each graded mode the server's `-h` does not offer."""
    listed = ", ".join(offered) or "none"
    return [
        f"mode {mode.mode} is not offered by the server's -h (offered: {listed}): it scores 0"
        for mode in modes
        if mode.status == NOT_OFFERED
    ]


def crash_notes(records: Iterable[dict]) -> list[str]:
    """Return notes on server deaths and failed starts found in failure messages, per mode.

    Deaths by a signal the suite itself sends (shutdown tests, clean-up) are not crashes.
    """
    deaths: dict[str, dict[str, str]] = {}
    no_starts: dict[str, Counter[str]] = {}
    for record in records:
        message = record.get("message") or ""
        for mode, pid, status in _DIED.findall(message):
            if not any(name in status for name in SUITE_SIGNALS):
                deaths.setdefault(mode, {})[pid] = status.strip()
        for mode, why, status in _NO_START.findall(message):
            no_starts.setdefault(mode, Counter())[f"{why}, exit status {status.strip()}"] += 1
    notes = [
        f"server crashed in {mode} mode {len(pids)} time(s) (exit status "
        f"{', '.join(sorted(set(pids.values())))})"
        for mode, pids in deaths.items()
    ]
    return notes + [
        f"server failed to start in {mode} mode {sum(whys.values())} time(s) "
        f"({whys.most_common(1)[0][0]})"
        for mode, whys in no_starts.items()
    ]


def _mean(values: Sequence[float]) -> float:
    """Return the arithmetic mean of a non-empty sequence."""
    return sum(values) / len(values)
