"""Write a Scorecard as scorecard.md, scorecard.json, timeline.png and Gradescope's results.json.

Strategy: every output is a pure function of Scorecards (text, bytes or a JSON-ready dict), so
tests check them without running anything; write_* only put them on disk. The Markdown is for a
student: the rubric table (item, points, earned, one-line reason), then each lost item with the
lab's sentence and at most three examples (what was sent, what came back, what was expected),
the server-wide findings, the delayed clients' timelines, and one paragraph on what is not
scored. Everything else (every failing check, skips, the run's log tail) is in scorecard.json.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from .findings import Example, Finding
from .scoring import EARNED, REPORTED_TIER, SCORED_TIER, ItemResult, Scorecard
from .timeline import timeline_png, timeline_text

TIMELINE_PNG, LISTED_FAILING = "timeline.png", 8
SCORING_RULES = """\
How an item is decided: only required-tier checks (the lab's own rules) count; each check
belongs to one item. An item is lost when more of its checks fail than it forgives (a check
counts once, whatever its variants and modes), when -h does not offer a mode it needs, when no
check of it ran, or (benchmark, extra credit) when benchmark.md has no line naming the mode with
a number. Recommended-tier checks (RFC 9110/9112, good practice) are reported, never scored."""


def score_line(card: Scorecard) -> str:
    """Return the score in words: "87 / 100 + 5 extra credit (of 15)"."""
    regular = card.score - card.extra_score
    text = f"{_points(regular)} / {_points(card.max_score)}"
    return text + (
        f" + {_points(card.extra_score)} extra credit (of {_points(card.extra_max)})"
        if card.extra_max
        else ""
    )


# --- scorecard.md -----------------------------------------------------------------------------


def scorecard_markdown(card: Scorecard) -> str:
    """Return the student's scorecard: score, notes, rubric table, lost items, findings, rest."""
    parts = [_heading(card), _notes(card)]
    if card.graded:
        parts += [_item_table(card), _lost_items(card), _findings(card), _timelines(card)]
        parts.append(_not_scored(card))
    return "\n\n".join(part for part in parts if part) + "\n"


def _heading(card: Scorecard) -> str:
    """Return the title and one line of facts."""
    if not card.graded:
        return f"# Scorecard: {card.name}\n\nCould not be graded: {card.error}"
    status = "" if card.status == "graded" else f" · **{card.status}**"
    facts = (
        f"**{score_line(card)}**{status} · rubric `{card.lab}` ({card.rubric}) · modes graded: "
        f"{', '.join(card.graded_modes) or 'none'} · {_clock(card.duration)}"
    )
    return f"# Scorecard: {card.name}\n\n{facts}"


def _notes(card: Scorecard) -> str:
    """Return the notes as a bullet list (empty when there are none)."""
    return "\n".join(f"- {note}" for note in card.notes)


def _item_table(card: Scorecard) -> str:
    """Return the rubric table: one row per item, extra credit last, then the total."""
    rows = [
        (
            f"{item.id}{' (extra)' if item.extra else ''}",
            _points(item.points),
            _points(item.earned) if item.status == EARNED else f"**{_points(item.earned)}**",
            item.reason,
        )
        for item in card.items
    ]
    rows.append(("**total**", _points(card.max_score), f"**{score_line(card)}**", ""))
    return _table(("item", "points", "earned", "why"), rows)


def _lost_items(card: Scorecard) -> str:
    """Return, for each lost item, the lab sentence and at most three examples."""
    lost = card.lost
    if not lost:
        return ""
    sections = ["## What lost points"]
    for item in lost:
        lines = [f"### {item.id}: {item.title} (−{_points(item.points)})", ""]
        lines += [f"> {quote}" for quote in item.quotes[:1]]
        lines += ["", item.reason]
        lines += [_example_block(example) for example in item.examples]
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


def _example_block(example: Example) -> str:
    """Return one example as a fenced block: the check, what was sent, got and expected."""
    mode = "" if example.mode == "every mode" else f" (mode {example.mode})"
    rows = [("check", example.check + mode)]
    rows += [("sent", example.request), ("got", example.response)]
    rows += [("expected", example.expected), ("server", example.exit_status)]
    rows += [("stderr", example.stderr_tail)]
    text = "\n".join(_labelled(label, value) for label, value in rows if value)
    return "\n" + _fenced(text)


def _findings(card: Scorecard) -> str:
    """Return the server-wide findings, each once, with its example."""
    if not card.findings:
        return ""
    lines = ["## Found once for the whole server"]
    lines += [_finding_entry(finding) for finding in card.findings]
    return "\n\n".join(lines)


def _finding_entry(finding: Finding) -> str:
    """Return one finding: its id, modes, summary and example."""
    head = f"- **{finding.id}** ({', '.join(finding.modes)}): {finding.summary}"
    return head + (_indent(_example_block(finding.example), "  ") if finding.example else "")


def _timelines(card: Scorecard) -> str:
    """Return the delayed clients' timelines: the PNG and the same as text."""
    if not card.timelines:
        return ""
    text = timeline_text(card.timelines)
    return f"## Delayed clients, per mode\n\n![timelines]({TIMELINE_PNG})\n\n" + _fenced(text)


def _not_scored(card: Scorecard) -> str:
    """Return one paragraph on what was checked but not scored, and where the details are."""
    recommended = card.recommended
    lines = ["## Not scored"]
    counted = recommended.passed + recommended.failed
    if counted:
        failing = recommended.failing[:LISTED_FAILING]
        more = len(recommended.failing) - len(failing)
        listed = ", ".join(failing) + (f" and {more} more" if more else "")
        lines.append(
            f"Recommended tier (RFC 9110/9112, good practice): {recommended.passed} of {counted} "
            "checks passed" + (f"; failing: {listed}." if failing else ".")
        )
    elif card.tier == SCORED_TIER:
        lines.append(
            "Recommended tier (RFC 9110/9112, good practice): not run; grade with "
            "`--tier recommended` to add it (it never changes the score)."
        )
    skipped = sum(skip.count for skip in card.skipped)
    if skipped:
        lines.append(f"Skipped, not counted: {skipped} ({_cell(card.skipped[0].reason)[:120]}).")
    lines.append(SCORING_RULES.replace("\n", " "))
    lines.append("Every check and every detail: `scorecard.json`.")
    return "\n\n".join(lines)


# --- JSON -----------------------------------------------------------------------------------------


def scorecard_json(card: Scorecard) -> dict:
    """Return the machine scorecard: every field of the Scorecard."""
    return dataclasses.asdict(card)


def gradescope_results(card: Scorecard) -> dict:
    """Return Gradescope's results.json: the score, one test per rubric item, and one unscored
    test for the recommended tier when it ran."""
    tests = [_gradescope_item(item) for item in card.items] if card.graded else []
    if card.graded and card.tier == REPORTED_TIER:
        tests.append(_gradescope_recommended(card))
    return {
        "score": card.score if card.graded else 0.0,
        "execution_time": round(card.duration),
        "output": _gradescope_output(card),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def _gradescope_output(card: Scorecard) -> str:
    """Return the submission-wide text: score, notes and findings."""
    if not card.graded:
        return f"Could not grade this submission: {card.error}"
    lines = [f"Score {score_line(card)} (rubric {card.lab}; {card.status})."]
    lines += [f"- {note}" for note in card.notes]
    lines += [f"- found once: {f.id} ({', '.join(f.modes)}): {f.summary}" for f in card.findings]
    return "\n".join(lines)


def _gradescope_item(item: ItemResult) -> dict:
    """Return one rubric item as a scored Gradescope test, with the request that lost it."""
    lines = [item.reason]
    if item.status != EARNED:
        lines += [f"Lab: {quote}" for quote in item.quotes[:1]]
        lines += ["", *(_example_block(example).strip("\n") for example in item.examples)]
    return {
        "name": f"{item.id}{' (extra credit)' if item.extra else ''}: {item.title}",
        "score": item.earned,
        "max_score": item.points,
        "status": "passed" if item.status == EARNED else "failed",
        "output": "\n".join(lines).strip(),
        "visibility": "visible",
    }


def _gradescope_recommended(card: Scorecard) -> dict:
    """Return the unscored test summing up the recommended tier."""
    recommended = card.recommended
    counted = recommended.passed + recommended.failed
    failing = "\n".join(f"- {name}" for name in recommended.failing[:40])
    return {
        "name": "recommended tier (not scored)",
        "status": "passed" if not recommended.failed else "failed",
        "output": f"{recommended.passed} of {counted} checks passed.\n{failing}".strip(),
        "visibility": "visible",
    }


# --- files --------------------------------------------------------------------------------------


def write_card(card: Scorecard, output: Path) -> Path:
    """Write scorecard.md, scorecard.json, results.json (and timeline.png) into output/<name>/."""
    folder = output / card.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scorecard.md").write_text(scorecard_markdown(card), encoding="utf-8")
    _write_json(folder / "scorecard.json", scorecard_json(card))
    _write_json(folder / "results.json", gradescope_results(card))
    if card.timelines:
        (folder / TIMELINE_PNG).write_bytes(timeline_png(card.timelines))
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


def _points(value: float) -> str:
    """Return points without a needless decimal: 8, 2.5."""
    return f"{value:g}"


def _clock(seconds: float) -> str:
    """Return a duration like "45 s" or "2 min 08 s"."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def _labelled(label: str, value: str) -> str:
    """Return "label:    value", continuation lines indented under the value."""
    prefix = f"{label + ':':<10}"
    return prefix + value.replace("\n", "\n" + " " * len(prefix))


def _fenced(text: str) -> str:
    """Return text in a code fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _indent(text: str, prefix: str) -> str:
    """Return text with every line indented by prefix."""
    return "\n".join(prefix + line if line else line for line in text.split("\n"))
