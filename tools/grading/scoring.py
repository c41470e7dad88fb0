"""Turn the suite's per-test records into a Scorecard by a rubric: each item earned or lost.

Strategy: only required-tier records count. Each record goes to ONE rubric item, so one defect
costs one item: items that name case/category/nodeid patterns or finding ids pick first, then
items selecting by lab key alone, each in rubric order, and an item only takes records of the
modes it judges (a record with no mode belongs to every mode). An item is lost when more than
its `max_failed` distinct checks fail (a check counts once whatever its variants and modes),
when a mode it needs is not offered by the server's -h, when no check of it ran, or when
benchmark.md lacks a number for a mode it names. Recommended-tier records are counted beside
the score, never in it.
"""

from __future__ import annotations

import fnmatch
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from .findings import FAILED, Example, Finding, Timeline, examples, findings, problem, subject
from .findings import timelines as find_timelines
from .rubric import (
    ALL_GRADED,
    ALL_REQUIRED,
    DEFAULT_LAB,
    DEFAULT_MODE,
    Item,
    Rubric,
    load_rubric,
    rubric_path,
)

SCORED_TIER, REPORTED_TIER = "required", "recommended"
NOT_RUN, NOT_GRADED, NOT_CHECKED = "not run", "not graded in this run", "not checked"
EARNED, LOST, NOT_OFFERED = "earned", "lost", "not offered"
GRADED, MAX_POINTS = "graded", 100.0
COUNTED = ("passed", *FAILED)  # skipped, xfailed and xpassed are not counted
LISTED_CHECKS = 3


@dataclass
class ItemResult:
    """One rubric item as graded: points earned, why (one line), and up to three examples."""

    id: str
    title: str
    points: float
    earned: float
    status: str
    reason: str
    extra: bool = False
    quotes: list[str] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)
    checks: int = 0
    failed: list[str] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)


@dataclass
class Tally:
    """Counts of one tier's records: passed, failed (errors and not run included), skipped."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failing: list[str] = field(default_factory=list)


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
    lab: str = ""
    rubric: str = ""
    score: float = 0.0
    max_score: float = MAX_POINTS
    extra_score: float = 0.0
    extra_max: float = 0.0
    graded_modes: list[str] = field(default_factory=list)
    required_modes: list[str] = field(default_factory=list)
    offered_modes: list[str] = field(default_factory=list)
    tier: str = REPORTED_TIER
    python: str = ""
    started: str = ""
    duration: float = 0.0
    notes: list[str] = field(default_factory=list)
    items: list[ItemResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    timelines: list[Timeline] = field(default_factory=list)
    required: Tally = field(default_factory=Tally)
    recommended: Tally = field(default_factory=Tally)
    skipped: list[Skip] = field(default_factory=list)
    benchmark: dict[str, str] = field(default_factory=dict)
    log_tail: str = ""

    @property
    def graded(self) -> bool:
        """Whether the suite could judge this submission at all (timed-out runs count)."""
        return self.status not in ("invalid", "error")

    @property
    def lost(self) -> list[ItemResult]:
        """The regular items not earned, in rubric order."""
        return [item for item in self.items if not item.extra and item.status != EARNED]


def score_card(
    card: Scorecard,
    records: Iterable[dict],
    rubric: Rubric | None = None,
    benchmark: str | None = None,
) -> Scorecard:
    """Return `card` completed from the suite's records by `rubric`.

    Args: `card` names the graded and offered modes; `records` are results-JSON records (a
    missing verdict counts as not run); `rubric` defaults to the seed year's; `benchmark` is
    the text of the submission's benchmark.md, or None when it has none.
    Returns: the card with items, score, findings, timelines, tallies, skips and notes.
    """
    rubric = rubric or load_rubric(rubric_path(DEFAULT_LAB))
    records = [normalized(record) for record in records]
    scored = [record for record in records if record["tier"] == SCORED_TIER]
    modes = {item.id: item_modes(item, rubric, card.graded_modes) for item in rubric.items}
    claimed = assign(scored, rubric.items, modes)
    results_by_mention = benchmark_results(benchmark, _benchmarked_modes(rubric))
    results = [
        judge(item, modes[item.id], claimed[item.id], card, rubric, benchmark, results_by_mention)
        for item in rubric.items
    ]
    regular = sum(result.earned for result in results if not result.extra)
    extra = sum(result.earned for result in results if result.extra)
    return replace(
        card,
        lab=rubric.name,
        rubric=rubric.title,
        required_modes=list(rubric.required_modes),
        items=results,
        score=round(regular + extra, 2),
        max_score=rubric.max_points,
        extra_score=round(extra, 2),
        extra_max=rubric.extra_points,
        findings=findings(scored),
        timelines=find_timelines(records, card.graded_modes),
        required=tally(scored),
        recommended=tally(r for r in records if r["tier"] == REPORTED_TIER),
        skipped=skip_summary(records),
        benchmark=results_by_mention,
        notes=card.notes + offer_note(rubric, card, results) + unchecked_note(results),
    )


def normalized(record: dict) -> dict:
    """Return a record with verdict and tier always set, and mode None for every-mode tests."""
    return record | {
        "verdict": record.get("verdict") or NOT_RUN,
        "mode": record.get("mode") or None,
        "tier": record.get("tier") or SCORED_TIER,
    }


def item_modes(item: Item, rubric: Rubric, graded: Sequence[str]) -> tuple[str, ...]:
    """Return the modes an item is judged in: its own list, or the graded (required) modes.

    A "required" item of a server offering no required mode is judged in the default mode
    (the server run without -c), so a lab-5 server still gets its HTTP verdicts.
    """
    if not isinstance(item.modes, str):
        return item.modes
    if item.modes == ALL_GRADED:
        return tuple(graded)
    required = tuple(mode for mode in rubric.required_modes if mode in graded)
    return required or ((DEFAULT_MODE,) if DEFAULT_MODE in graded else ())


def selects(item: Item, record: dict) -> bool:
    """Whether an item's selectors match a record (mode aside).

    A record is selected by its finding id alone, or by lab key AND (when any are given) one of
    the case / category / nodeid glob patterns.
    """
    if item.finding and record.get("finding") in item.finding:
        return True
    if not (item.lab or item.case or item.category or item.nodeid):
        return False
    if item.lab and record.get("lab") not in item.lab:
        return False
    patterns = (
        (item.case, record.get("case") or record.get("case_id") or ""),
        (item.category, record.get("category") or ""),
        (item.nodeid, record["nodeid"]),
    )
    if not any(globs for globs, _ in patterns):
        return True
    return any(fnmatch.fnmatchcase(value, glob) for globs, value in patterns for glob in globs)


def assign(
    records: Iterable[dict], items: Sequence[Item], modes: dict[str, tuple[str, ...]]
) -> dict[str, list[dict]]:
    """Give each record to the first item that selects it in its mode, specific items first."""
    order = [item for item in items if item.specific] + [i for i in items if not i.specific]
    claimed: dict[str, list[dict]] = {item.id: [] for item in items}
    for record in records:
        for item in order:
            in_mode = record["mode"] is None or record["mode"] in modes[item.id]
            if in_mode and selects(item, record):
                claimed[item.id].append(record)
                break
    return claimed


def judge(
    item: Item,
    modes: tuple[str, ...],
    records: list[dict],
    card: Scorecard,
    rubric: Rubric,
    benchmark: str | None,
    mentions: dict[str, str],
) -> ItemResult:
    """Decide one item from its records, the modes it needs and benchmark.md."""
    result = ItemResult(
        id=item.id,
        title=item.title,
        points=item.points,
        earned=0.0,
        status=LOST,
        reason="",
        extra=item.extra,
        quotes=list(item.quotes),
        modes=list(modes),
    )
    explicit = rubric.modes_of(item)
    missing = [mode for mode in explicit if mode not in offered_modes(card)]
    if missing:
        result.status = NOT_OFFERED
        what = "not implemented: " if item.extra else ""
        result.reason = f"{what}the server's -h does not offer {', '.join(missing)}"
        return result
    not_graded = [mode for mode in explicit if mode not in card.graded_modes]
    if not_graded or (item.judged_by_records and not modes):
        result.reason = f"{NOT_GRADED} ({', '.join(not_graded) or 'no mode'})"
        return result
    counted = [record for record in records if record["verdict"] in COUNTED]
    failing = sorted({subject(r) for r in counted if r["verdict"] in FAILED})
    result.checks, result.failed = len({subject(r) for r in counted}), failing
    unmentioned = [mode for mode in _benchmark_modes(item, rubric) if mode not in mentions]
    if item.by_finding_only and not counted:
        result.status, result.earned = EARNED, item.points
        result.reason = f"no check reported {' or '.join(item.finding)}"
    elif item.judged_by_records and not counted:
        result.reason = f"{NOT_CHECKED}: no test of this rule ran" + _skip_reason(records)
    elif len(failing) > item.max_failed:
        failed = [record for record in counted if record["verdict"] in FAILED]
        result.reason = _failure_reason(failing, result.checks, item.max_failed, failed, card)
        result.examples = examples(failed, card.graded_modes)
    elif unmentioned:
        result.reason = (
            "the submission has no benchmark.md"
            if benchmark is None
            else f"benchmark.md has no line naming {', '.join(unmentioned)} with a number"
        )
    else:
        result.status, result.earned = EARNED, item.points
        result.reason = _pass_reason(item, result, modes, card)
    return result


def _failure_reason(
    failing: list[str], checks: int, forgiven: int, failed: list[dict], card: Scorecard
) -> str:
    """Return the one-line reason of a lost item: what failed, and in which modes."""
    where = _where({record["mode"] for record in failed}, card)
    if len(failing) == 1:
        first = min(failed, key=lambda r: _mode_rank(r["mode"], card))
        return f"{failing[0]} failed{where}: {problem(first)}"[:240]
    shown = ", ".join(failing[:LISTED_CHECKS]) + (" …" if len(failing) > LISTED_CHECKS else "")
    allowance = f" (more than the {forgiven} forgiven)" if forgiven else ""
    return f"{len(failing)} of {checks} checks failed{allowance}{where}: {shown}"


def _pass_reason(item: Item, result: ItemResult, modes: Sequence[str], card: Scorecard) -> str:
    """Return the one-line reason of an earned item."""
    if not item.judged_by_records:
        return "benchmark.md reports every mode it needs"
    where = _where(set(modes), card)
    if result.failed:
        passed = result.checks - len(result.failed)
        return (
            f"{passed} of {result.checks} checks passed{where}; {', '.join(result.failed)} "
            f"failed, within the {item.max_failed} forgiven"
        )
    return (f"all {result.checks} checks passed" if result.checks > 1 else "passed") + where


def _where(modes: set[str | None], card: Scorecard) -> str:
    """Return " in thread, process" (graded order), "" for every graded mode or no mode."""
    named = sorted((mode for mode in modes if mode), key=lambda mode: _mode_rank(mode, card))
    if not named or (len(named) > 1 and set(named) == set(card.graded_modes)):
        return ""
    return f" in {', '.join(named)}"


def _mode_rank(mode: str | None, card: Scorecard) -> tuple[int, str]:
    """Order modes as graded (thread before process), others after, by name."""
    graded = card.graded_modes
    return (graded.index(mode) if mode in graded else len(graded), mode or "")


def _skip_reason(records: list[dict]) -> str:
    """Return " (N skipped: why)" for an item whose records were all skipped, else ""."""
    skipped = [record for record in records if record["verdict"] not in COUNTED]
    return f" ({len(skipped)} skipped: {problem(skipped[0])})" if skipped else ""


def _benchmark_modes(item: Item, rubric: Rubric) -> tuple[str, ...]:
    """Return the modes an item needs benchmark.md to report."""
    if item.benchmark == ALL_REQUIRED:
        return rubric.required_modes
    return () if isinstance(item.benchmark, str) else item.benchmark


def _benchmarked_modes(rubric: Rubric) -> tuple[str, ...]:
    """Return every mode some item needs benchmark.md to report."""
    modes = [mode for item in rubric.items for mode in _benchmark_modes(item, rubric)]
    return tuple(dict.fromkeys(modes))


def benchmark_results(text: str | None, modes: Sequence[str]) -> dict[str, str]:
    """Return, per mode, the first benchmark.md line naming it (as a word) beside a number.

    "thread" does not match inside "thread-pool"; "async" matches "asyncio". A number is any
    digit on the same line (a table row, or "thread: 1234 requests/s").
    """
    found: dict[str, str] = {}
    for line in (text or "").splitlines():
        if not re.search(r"\d", line):
            continue
        for mode in modes:
            word = re.escape(mode).replace(r"\-", r"[-_ ]")
            pattern = rf"(?<![\w-]){word}(?:io)?(?![\w-])"
            if mode not in found and re.search(pattern, line, re.IGNORECASE):
                found[mode] = line.strip()[:200]
    return found


def tally(records: Iterable[dict]) -> Tally:
    """Count records by outcome, and list the distinct failing checks (sorted)."""
    counts, failing = Tally(), set()
    for record in records:
        if record["verdict"] == "passed":
            counts.passed += 1
        elif record["verdict"] in FAILED:
            counts.failed += 1
            failing.add(subject(record))
        else:
            counts.skipped += 1
    counts.failing = sorted(failing)
    return counts


def skip_summary(records: Iterable[dict]) -> list[Skip]:
    """Return the not-counted records grouped by reason, most frequent first (ties by reason)."""
    reasons: Counter[str] = Counter()
    examples_of: dict[str, str] = {}
    for record in sorted(records, key=lambda r: r["nodeid"]):
        if record["verdict"] in COUNTED:
            continue
        reason = f"{record['verdict']}: {problem(record)}"
        reasons[reason] += 1
        examples_of.setdefault(reason, record["nodeid"])
    ordered = sorted(reasons.items(), key=lambda pair: (-pair[1], pair[0]))
    return [Skip(reason, count, examples_of[reason]) for reason, count in ordered]


def offered_modes(card: Scorecard) -> set[str]:
    """Return the modes a server can run: those its -h offers, and always the default (no -c)."""
    return {*card.offered_modes, DEFAULT_MODE}


def run_modes(rubric: Rubric, offered: Sequence[str], override: Sequence[str] = ()) -> list[str]:
    """Return the modes to run the suite in: --modes, else the rubric's, that the server offers.

    A server offering none of the required modes (a lab-5 server under a lab-6 rubric) runs
    without -c, so its HTTP items are still judged.
    """
    wanted = list(override) or list(rubric.modes_to_grade())
    runnable = [mode for mode in wanted if mode in offered or mode == DEFAULT_MODE]
    if not override and not any(mode in runnable for mode in rubric.required_modes):
        runnable.insert(0, DEFAULT_MODE)
    return runnable


def unchecked_note(results: Sequence[ItemResult]) -> list[str]:
    """Return ONE line naming the items no check could judge here (all skipped): regrade them."""
    unchecked = [
        r.id for r in results if r.reason.startswith(NOT_CHECKED) and "skipped" in r.reason
    ]
    if not unchecked:
        return []
    return [
        f"not checked on this machine (their checks were skipped, see each item): "
        f"{', '.join(unchecked)}; they count as lost until a regrade where they can run"
    ]


def offer_note(rubric: Rubric, card: Scorecard, results: Sequence[ItemResult]) -> list[str]:
    """Return ONE line naming the required modes -h does not offer and the items they lose."""
    missing = [mode for mode in rubric.required_modes if mode not in offered_modes(card)]
    if not missing:
        return []
    lost = [r.id for r in results if r.status == NOT_OFFERED and not r.extra]
    offered = ", ".join(mode for mode in card.offered_modes if mode != DEFAULT_MODE) or "no -c"
    return [
        f"required mode(s) {', '.join(missing)} not offered by -h (it offers: {offered}): "
        f"lost {', '.join(lost) or 'no item'}"
    ]
