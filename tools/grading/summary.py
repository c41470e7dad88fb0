"""The class at a glance: summary.md, summary.csv for the gradebook, and summary.html with charts.

Strategy: every file is a pure function of the class's Scorecards, so tests feed it tiny hand-made
cards. The rubric items of a card are read through one accessor, rubric_scores, so the columns of
the CSV and the "who lost what" chart follow the scoring model wherever it goes. The page is one
static HTML file, its charts plain HTML/CSS bars: it opens from disk with no server, no script and
no chart library.
"""

from __future__ import annotations

import csv
import html
import io
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .render import _cell, _clock, _table, score_line, write_card
from .scoring import GRADED, Scorecard

SUMMARY_MD, SUMMARY_CSV, SUMMARY_HTML = "summary.md", "summary.csv", "summary.html"
SUMMARY_FILES = (SUMMARY_MD, SUMMARY_CSV, SUMMARY_HTML)
NOTE_CHARS = 300
SCORE_BINS = 10  # the distribution chart: 0-10, 10-20, ..., 90-100


@dataclass(frozen=True)
class ItemScore:
    """One rubric item of one card: its column key, points earned and possible, extra or not."""

    key: str
    points: float
    max_points: float
    extra: bool = False
    title: str = ""

    @property
    def lost(self) -> bool:
        """Whether the submission missed any of this item's points."""
        return self.points < self.max_points - 1e-9


def rubric_scores(card: Scorecard) -> list[ItemScore]:
    """Return a graded card's rubric items, in rubric order (extra credit last)."""
    return [
        ItemScore(item.id, item.earned, item.points, item.extra, item.title) for item in card.items
    ]


def extra_credit(card: Scorecard) -> float:
    """Return the points a card earned on extra-credit items."""
    return sum(item.points for item in rubric_scores(card) if item.extra)


def item_keys(cards: Iterable[Scorecard]) -> list[str]:
    """Return every rubric item key of the class, in first-seen order (one CSV column each)."""
    return list(dict.fromkeys(item.key for card in cards for item in rubric_scores(card)))


# --- summary.md -----------------------------------------------------------------------------------


def summary_markdown(cards: Sequence[Scorecard]) -> str:
    """Return the one-row-per-submission summary of several scorecards."""
    rows = [_summary_row(card) for card in cards]
    header = ("submission", "score", "extra credit", "items lost", "time", "notes")
    intro = (
        f"{len(cards)} submissions, graded by rubric (each scorecard says why an item was lost)."
        f" The gradebook: {SUMMARY_CSV}; the charts: {SUMMARY_HTML}."
    )
    return "# Grading summary\n\n" + intro + "\n\n" + _table(header, rows) + "\n"


def _summary_row(card: Scorecard) -> tuple[str, ...]:
    """Return one submission's summary row."""
    return (
        f"[{card.name}]({card.name}/scorecard.md)",
        f"{card.score - card.extra_score:g}" if card.graded else "–",
        f"{card.extra_score:g}" if card.graded and card.extra_max else "–",
        ", ".join(item.id for item in card.lost) or "–",
        _clock(card.duration),
        _cell(_notes(card))[:NOTE_CHARS] or "–",
    )


def _notes(card: Scorecard) -> str:
    """Return a card's status (when not plainly graded) and notes, as one line."""
    notes = (
        [] if card.status == GRADED else [card.status + (f": {card.error}" if card.error else "")]
    )
    return "; ".join(notes + card.notes)


# --- summary.csv ----------------------------------------------------------------------------------


def summary_csv(cards: Sequence[Scorecard]) -> str:
    """Return the gradebook: one row per submission, name, total, extra credit, each rubric item.

    The total includes the extra credit, also shown on its own. A submission that could not be
    graded has empty points and says why in the status column.
    """
    keys = item_keys(cards)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "total", "extra credit", *keys, "status"])
    for card in cards:
        if not card.graded:
            writer.writerow([card.name, "", "", *([""] * len(keys)), _notes(card)])
            continue
        points = {item.key: f"{item.points:.2f}" for item in rubric_scores(card)}
        row = [card.name, f"{card.score:.2f}", f"{extra_credit(card):.2f}"]
        writer.writerow(row + [points.get(key, "") for key in keys] + [card.status])
    return out.getvalue()


# --- summary.html ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """One bar of a chart: its label, value as a share of the longest bar, and the text on it."""

    label: str
    share: float
    text: str


def regular_share(card: Scorecard) -> float:
    """Return a card's points without extra credit, as a percentage of the rubric's maximum."""
    return 100 * (card.score - card.extra_score) / card.max_score if card.max_score else 0.0


def score_distribution(cards: Sequence[Scorecard]) -> list[Bar]:
    """Return one bar per band of 10 % of the points (extra credit aside), counting submissions."""
    width = 100 / SCORE_BINS
    counts = [0] * SCORE_BINS
    for card in cards:
        if card.graded:
            counts[min(int(regular_share(card) // width), SCORE_BINS - 1)] += 1
    tallest = max(counts, default=0) or 1
    return [
        Bar(f"{index * width:g}–{(index + 1) * width:g} %", count / tallest, str(count))
        for index, count in enumerate(counts)
    ]


def lost_items(cards: Sequence[Scorecard]) -> list[Bar]:
    """Return one bar per regular rubric item: the share of the graded class that lost points.

    Items are sorted by that share, most lost first: what the class did not understand on top.
    Extra-credit items are left out (not earning them is no misunderstanding).
    """
    lost: dict[str, list[bool]] = {}
    labels: dict[str, str] = {}
    for card in cards:
        for item in rubric_scores(card) if card.graded else []:
            if not item.extra:
                lost.setdefault(item.key, []).append(item.lost)
                labels[item.key] = f"{item.title} ({item.key})" if item.title else item.key
    bars = [
        Bar(labels[key], sum(flags) / len(flags), f"{sum(flags)} of {len(flags)}")
        for key, flags in lost.items()
    ]
    return sorted(bars, key=lambda bar: -bar.share)


def summary_html(cards: Sequence[Scorecard]) -> str:
    """Return the static page: headline numbers, the two charts, and the table of submissions."""
    scores = [regular_share(card) for card in cards if card.graded]
    facts = f"{len(cards)} submissions, {len(scores)} graded"
    if scores:
        facts += (
            f"; share of the points (extra credit aside): mean {statistics.fmean(scores):.1f} %,"
            f" median {statistics.median(scores):.1f} %, lowest {min(scores):.1f} %,"
            f" highest {max(scores):.1f} %"
        )
    rows = "\n".join(
        "<tr><td><a href='{0}/scorecard.md'>{0}</a></td><td>{1}</td><td>{2}</td></tr>".format(
            html.escape(card.name),
            html.escape(score_line(card)) if card.graded else "–",
            html.escape(_notes(card)[:NOTE_CHARS] or card.status),
        )
        for card in cards
    )
    return PAGE.format(
        facts=html.escape(facts),
        distribution=_columns(score_distribution(cards)),
        lost=_rows(lost_items(cards)) or "<p>No rubric item was graded.</p>",
        rows=rows,
    )


def _columns(bars: Sequence[Bar]) -> str:
    """Return a vertical bar chart (the score distribution)."""
    cells = "".join(
        f"<div class='col'><span>{html.escape(bar.text)}</span>"
        f"<div class='bar' style='height:{bar.share * 100:.1f}%'></div>"
        f"<small>{html.escape(bar.label)}</small></div>"
        for bar in bars
    )
    return f"<div class='columns' role='img' aria-label='score distribution'>{cells}</div>"


def _rows(bars: Sequence[Bar]) -> str:
    """Return a horizontal bar chart (the share of the class that lost each item)."""
    return "\n".join(
        f"<div class='row'><span class='label'>{html.escape(bar.label)}</span>"
        f"<span class='track'><span class='bar' style='width:{bar.share * 100:.1f}%'></span></span>"
        f"<span class='value'>{bar.share:.0%} ({html.escape(bar.text)})</span></div>"
        for bar in bars
    )


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Grading summary</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }}
h2 {{ margin-top: 2em; }}
.columns {{ display: flex; align-items: flex-end; gap: 4px; height: 14em; padding-top: 1.5em; }}
.col {{ flex: 1; display: flex; flex-direction: column; justify-content: flex-end;
        align-items: center; height: 100%; }}
.col .bar {{ width: 100%; background: #3b73b9; min-height: 1px; }}
.col small {{ margin-top: 0.3em; white-space: nowrap; }}
.row {{ display: flex; align-items: center; gap: 0.6em; margin: 0.25em 0; }}
.row .label {{ flex: 0 0 24em; text-align: right; }}
.row .track {{ flex: 1; background: #eee; height: 1.1em; }}
.row .bar {{ display: block; height: 100%; background: #c0504d; }}
.row .value {{ flex: 0 0 8em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }}
</style>
</head>
<body>
<h1>Grading summary</h1>
<p>{facts}</p>
<h2>Score distribution</h2>
{distribution}
<h2>Share of the class that lost points on each rubric item</h2>
{lost}
<h2>Submissions</h2>
<table>
<tr><th>submission</th><th>score</th><th>notes</th></tr>
{rows}
</table>
</body>
</html>
"""


# --- files ----------------------------------------------------------------------------------------


def write_summary(cards: Sequence[Scorecard], output: Path) -> list[Path]:
    """Write summary.md, summary.csv and summary.html into `output`; return their paths."""
    output.mkdir(parents=True, exist_ok=True)
    texts = (summary_markdown(cards), summary_csv(cards), summary_html(cards))
    paths = [output / name for name in SUMMARY_FILES]
    for path, text in zip(paths, texts, strict=True):
        path.write_text(text, encoding="utf-8")
    return paths


def write_outputs(cards: Sequence[Scorecard], output: Path) -> list[Path]:
    """Write every card's folder, and the summary files when there are several; return them."""
    written = [write_card(card, output) for card in cards]
    return written + (write_summary(cards, output) if len(cards) > 1 else [])
