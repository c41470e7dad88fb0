"""Write a Scorecard as scorecard.md, scorecard.json and Gradescope's results.json."""

# Strategy: every output is a pure function of Scorecards (text or a JSON-ready dict), so tests
# check them without running anything; write_* only put them on disk. Markdown shows counts and
# points first, then failures grouped by requirement with what was sent and what came back,
# truncated; the JSON files carry everything. The scoring rules are told once, from GROUPS.
# The class-wide files (summary.md, .csv, .html) are summary.py's.

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from .scoring import (
    ANY_MODE,
    GRADED,
    GROUPS,
    REPORTED_TIER,
    SCORED_TIER,
    Failure,
    ModeResult,
    Scorecard,
    Tally,
)

SHOWN_FAILURES, DETAIL_LINES, LINE_CHARS = 100, 25, 240
GRADESCOPE_LINES = 40


def scoring_rules() -> str:
    """Return how the score is computed, with the weight table (for --help and scorecards)."""
    weights = "\n".join(f"  {g.weight:>5g}  {g.name} ({', '.join(g.patterns)})" for g in GROUPS)
    return f"""\
Scoring (out of 100):
- Only the required tier (the lab's own rules) is scored; the recommended tier (RFC 9110/9112
  and good practice) is reported beside it, not scored.
- Each graded mode (--modes, default --required-modes) is worth an equal share. A graded mode
  the server's -h does not list under -c {{...}} scores 0 for that mode, with a note.
- In a mode, a conformance case counts once, its variants (whole, bytewise, ...) together; any
  other test counts once, its parametrizations together. It earns the share of its tests that
  passed. Errors and tests a timed-out run never reached count as failed; skipped tests are not
  counted but are listed.
- A requirement group scores the mean of its cases and tests; a mode, the weighted mean of its
  groups. A group with nothing scorable in a mode drops out; the others share its weight.
Weights per mode (a test is in the first group matching its file::function):
{weights}"""


# --- scorecard.md -----------------------------------------------------------------------------


def scorecard_markdown(card: Scorecard) -> str:
    """Return the human scorecard: facts, notes, modes, groups, rules, failures, skips."""
    parts = [_facts(card), _notes(card)]
    if card.graded:
        parts += [_mode_table(card), _group_table(card, SCORED_TIER)]
        parts += [_group_table(card, REPORTED_TIER), _rules()]
        parts += [_failures(card, SCORED_TIER), _failures(card, REPORTED_TIER), _skips(card)]
    return "\n\n".join(part for part in parts if part) + "\n"


def _facts(card: Scorecard) -> str:
    """Return the title and the table of facts about the run."""
    status = card.status if card.graded else f"could not be graded: {card.error}"
    if card.error and card.graded:
        status += f" ({card.error})"
    rows = [
        ("submission", f"`{card.server or card.submission}`"),
        ("status", status),
        ("**score**", f"**{card.score:.2f} / {card.max_score:g}** (required tier)"),
        ("graded modes", ", ".join(card.graded_modes)),
        ("modes offered in `-h`", ", ".join(card.offered_modes) or "none"),
        ("run", f"tier {card.tier}; server run by `{card.python}`; took {_clock(card.duration)}"),
        ("started", card.started),
    ]
    return f"# Scorecard: {card.name}\n\n" + _table(("", ""), rows)


def _notes(card: Scorecard) -> str:
    """Return the notes as a bullet list (empty when there are none)."""
    return "## Notes\n\n" + "\n".join(f"- {note}" for note in card.notes) if card.notes else ""


def _mode_table(card: Scorecard) -> str:
    """Return the per-mode table: status, points, pass counts per tier, skips."""
    rows = [
        (
            mode.mode,
            mode.status,
            f"{mode.points:.2f} / {mode.max_points:.2f}",
            _passed(mode.required),
            _passed(mode.recommended),
            str(mode.required.skipped + mode.recommended.skipped),
        )
        for mode in card.modes
    ]
    header = ("mode", "status", "points", "required passed", "recommended passed", "skipped")
    return "## Modes\n\n" + _table(header, rows)


def _group_table(card: Scorecard, tier: str) -> str:
    """Return one row per requirement group, one column per mode, for `tier`."""
    graded = [mode for mode in card.modes if mode.status == GRADED]
    if not graded:
        return ""
    rows = [
        (group.name, f"{group.weight:g}", *(_group_cell(mode, group.name, tier) for mode in graded))
        for group in GROUPS
    ]
    rows = [row for row in rows if any(cell != "–" for cell in row[2:])]
    title = "scored" if tier == SCORED_TIER else "reported, not scored"
    header = ("group", "weight", *(mode.mode for mode in graded))
    return f"## Requirement groups, {tier} tier ({title})\n\n" + _table(header, rows)


def _group_cell(mode: ModeResult, name: str, tier: str) -> str:
    """Return one group's cell: share of credit, fully passed items, and points if scored."""
    groups = mode.groups if tier == SCORED_TIER else mode.recommended_groups
    group = next((g for g in groups if g.group == name), None)
    if group is None:
        return "–"
    cell = f"{group.fraction:.1%} ({group.items_passed}/{group.items} fully passed)"
    return cell + (f", {group.points:.2f} pts" if tier == SCORED_TIER else "")


def _rules() -> str:
    """Return the scoring rules as a Markdown section."""
    return "## How the score is computed\n\n```text\n" + scoring_rules() + "\n```"


def _failures(card: Scorecard, tier: str) -> str:
    """Return the failures of `tier`, grouped by requirement, the first SHOWN_FAILURES in full."""
    failures = [failure for failure in card.failures if failure.tier == tier]
    if not failures:
        return ""
    lines = [f"## Failures, {tier} tier ({len(failures)})"]
    requirement = None
    for failure in failures[:SHOWN_FAILURES]:
        if failure.requirement != requirement:
            requirement = failure.requirement
            lines.append(f"### {requirement}")
        lines.append(_failure_entry(failure))
    if len(failures) > SHOWN_FAILURES:
        lines.append(f"…and {len(failures) - SHOWN_FAILURES} more, all in scorecard.json.")
    return "\n\n".join(lines)


def _failure_entry(failure: Failure) -> str:
    """Return one failure: name, mode, failing variants, problem, and the exchange, truncated."""
    variants = ", ".join(failure.variants)
    head = f"- **{failure.name}** (mode {failure.mode}; failed: {variants}): {failure.problem}"
    details = failure.details.partition("\n")[2].strip("\n")
    return head + ("\n\n" + _indent(_fenced(_truncate(details)), "  ") if details else "")


def _skips(card: Scorecard) -> str:
    """Return the skipped tests grouped by reason (empty when none)."""
    if not card.skipped:
        return ""
    rows = [(str(skip.count), _cell(skip.reason), f"`{skip.example}`") for skip in card.skipped]
    return "## Skipped, not counted\n\n" + _table(("tests", "reason", "for example"), rows)


# --- JSON ---------------------------------------------------------------------------------------


def scorecard_json(card: Scorecard) -> dict:
    """Return the machine scorecard: every field of the Scorecard, plus the weights used."""
    weights = [{"group": g.name, "weight": g.weight, "patterns": list(g.patterns)} for g in GROUPS]
    return dataclasses.asdict(card) | {"weights": weights}


def gradescope_results(card: Scorecard) -> dict:
    """Return Gradescope's results.json: the score, one scored test per mode and group."""
    tests = [test for mode in card.modes for test in _gradescope_tests(card, mode)]
    return {
        "score": card.score,
        "execution_time": round(card.duration),
        "output": _gradescope_output(card),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def _gradescope_output(card: Scorecard) -> str:
    """Return the submission-wide text: status, score, notes."""
    if not card.graded:
        return f"Could not grade this submission: {card.error}"
    lines = [f"Score {card.score:.2f} / {card.max_score:g} ({card.status}; required tier)."]
    return "\n".join(lines + [f"- {note}" for note in card.notes])


def _gradescope_tests(card: Scorecard, mode: ModeResult) -> list[dict]:
    """Return a mode's Gradescope tests: scored groups (or one zero), then the recommended tier."""
    if not mode.groups:
        why = "not offered by -h" if mode.status != GRADED else "no scorable required test ran"
        return [_gs_test(f"{mode.mode}: mode", 0.0, mode.max_points, f"Mode {mode.mode}: {why}.")]
    tests = [
        _gs_test(
            f"{mode.mode}: {group.group}",
            group.points,
            group.max_points,
            _failure_list(card, mode.mode, group.group, SCORED_TIER),
        )
        for group in mode.groups
    ]
    text = f"{_passed(mode.recommended)} tests passed.\n" + _failure_list(
        card, mode.mode, None, REPORTED_TIER
    )
    status = "passed" if mode.recommended.failed == 0 else "failed"
    name = f"{mode.mode}: recommended tier (not scored)"
    return [*tests, {"name": name, "status": status, "output": text, "visibility": "visible"}]


def _gs_test(name: str, score: float, max_score: float, output: str) -> dict:
    """Return one scored Gradescope test."""
    status = "passed" if score >= max_score - 1e-9 else "failed"
    return {
        "name": name,
        "score": round(score, 2),
        "max_score": round(max_score, 2),
        "status": status,
        "output": output,
        "visibility": "visible",
    }


def _failure_list(card: Scorecard, mode: str, group: str | None, tier: str) -> str:
    """Return one line per failure of a mode (and group) and tier, at most GRADESCOPE_LINES."""
    failures = [
        f
        for f in card.failures
        if f.tier == tier and f.mode in (mode, ANY_MODE) and group in (None, f.group)
    ]
    lines = [f"- {f.name} [{', '.join(f.variants)}]: {f.problem}" for f in failures]
    if len(lines) > GRADESCOPE_LINES:
        lines[GRADESCOPE_LINES:] = [f"...and {len(lines) - GRADESCOPE_LINES} more failures"]
    return "\n".join(lines) or "All passed."


# --- files --------------------------------------------------------------------------------------


def write_card(card: Scorecard, output: Path) -> Path:
    """Write scorecard.md, scorecard.json and results.json into output/<card.name>/; return it."""
    folder = output / card.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scorecard.md").write_text(scorecard_markdown(card), encoding="utf-8")
    _write_json(folder / "scorecard.json", scorecard_json(card))
    _write_json(folder / "results.json", gradescope_results(card))
    return folder


def _write_json(path: Path, document: dict) -> None:
    """Write a JSON document, indented, UTF-8."""
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


# --- text helpers ---------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Return a Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows])


def _cell(text: str) -> str:
    """Return text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _passed(counts: Tally) -> str:
    """Return "passed / scored (rate)", or a dash without scorable tests."""
    scored = counts.passed + counts.failed
    return f"{counts.passed} / {scored} ({counts.rate:.1%})" if scored else "–"


def _clock(seconds: float) -> str:
    """Return a duration like "45 s" or "2 min 08 s"."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def _truncate(text: str) -> str:
    """Return text cut to DETAIL_LINES lines of at most LINE_CHARS characters."""
    lines = [
        line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + "…" for line in text.split("\n")
    ]
    if len(lines) > DETAIL_LINES:
        lines[DETAIL_LINES:] = [f"… ({len(lines) - DETAIL_LINES} more lines)"]
    return "\n".join(lines)


def _fenced(text: str) -> str:
    """Return text in a code fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _indent(text: str, prefix: str) -> str:
    """Return text with every line indented by prefix."""
    return "\n".join(prefix + line for line in text.split("\n"))
