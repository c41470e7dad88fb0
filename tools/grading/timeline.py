"""Draw each mode's delayed clients as a timeline: text bars for the scorecard, a small PNG.

Strategy: an overlap check sends a few requests to a server run with -d and records when each
client's response started and ended (seconds after the first send). Drawn on one time axis per
mode, clients served at the same time stack up as parallel bars and clients served one after the
other as a staircase, so overlap (or its absence) shows at a glance. The text form is one line per
client; the PNG (Pillow) puts every mode in one picture. A client never answered runs to the
end of the axis, drawn as "?" (an outline in the PNG).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from .findings import Timeline

BAR_CHARS = 40
LABEL_WIDTH, PLOT_WIDTH, ROW, GAP, MARGIN = 110, 400, 14, 10, 8
PASSED_COLOUR, FAILED_COLOUR, AXIS_COLOUR = (46, 139, 87), (200, 60, 50), (120, 120, 120)


def span(timelines: Sequence[Timeline]) -> float:
    """Return the seconds the shared time axis covers (at least one delay, at least 1 s)."""
    instants = [at for timeline in timelines for client in timeline.clients for at in client]
    delays = [timeline.delay for timeline in timelines]
    return max([1.0, *(at for at in instants if at is not None), *delays])


def overlap_words(timeline: Timeline) -> str:
    """Return how the clients were served: answered together (concurrently) or one at a time.

    The clients send at once, so what tells is when the answers came: all within half a delay of
    each other means the delays ran side by side; spread wider, they ran one after another.
    """
    ends = sorted(end for _, end in timeline.clients if end is not None)
    unanswered = len(timeline.clients) - len(ends)
    if len(ends) < 2:
        words = "answered: " + (f"{len(ends)} of {len(timeline.clients)}")
    elif ends[-1] - ends[0] < max(timeline.delay, 1.0) / 2:
        words = f"answered together (within {ends[-1] - ends[0]:.1f} s)"
    else:
        words = f"answered one at a time ({ends[0]:.1f} s to {ends[-1]:.1f} s)"
    return f"{words}; {unanswered} never answered" if unanswered and len(ends) > 1 else words


def timeline_text(timelines: Sequence[Timeline]) -> str:
    """Return every mode's clients as text bars on one time axis, e.g. `|=====     | 0.0-5.0 s`."""
    if not timelines:
        return ""
    seconds = span(timelines)
    width = max(len(timeline.mode) for timeline in timelines)
    lines = []
    for timeline in timelines:
        head = f"{timeline.mode:<{width}}  delay {timeline.delay:g} s, {len(timeline.clients)}"
        lines.append(f"{head} clients: {overlap_words(timeline)}")
        for number, (start, end) in enumerate(timeline.clients, start=1):
            first = round(start / seconds * BAR_CHARS)
            last = BAR_CHARS if end is None else max(first + 1, round(end / seconds * BAR_CHARS))
            mark, until = ("?", "no reply") if end is None else ("=", f"{end:.1f} s")
            bar = " " * first + mark * (last - first) + " " * (BAR_CHARS - last)
            lines.append(f"{'':<{width}}  client {number} |{bar}| {start:.1f}-{until}")
    return "\n".join(lines)


def timeline_png(timelines: Sequence[Timeline]) -> bytes:
    """Return a PNG with one block of bars per mode (green: check passed, red: failed)."""
    seconds = span(timelines)
    rows = sum(len(timeline.clients) for timeline in timelines)
    height = 2 * MARGIN + rows * ROW + len(timelines) * GAP + ROW
    image = Image.new("RGB", (LABEL_WIDTH + PLOT_WIDTH + 2 * MARGIN, height), "white")
    draw, font = ImageDraw.Draw(image), ImageFont.load_default()
    left, y = MARGIN + LABEL_WIDTH, MARGIN
    for timeline in timelines:
        draw.text((MARGIN, y), timeline.mode, fill="black", font=font)
        colour = PASSED_COLOUR if timeline.passed else FAILED_COLOUR
        for start, end in timeline.clients:
            x0 = left + start / seconds * PLOT_WIDTH
            x1 = left + (seconds if end is None else end) / seconds * PLOT_WIDTH
            box = (x0, y + 2, max(x0 + 2, x1), y + ROW - 3)
            if end is None:  # never answered: an open outline to the end of the axis
                draw.rectangle(box, outline=FAILED_COLOUR)
            else:
                draw.rectangle(box, fill=colour)
            y += ROW
        y += GAP
    draw.line((left, y, left + PLOT_WIDTH, y), fill=AXIS_COLOUR)
    for second in range(int(seconds) + 1):
        x = left + second / seconds * PLOT_WIDTH
        draw.line((x, y, x, y + 3), fill=AXIS_COLOUR)
        draw.text((x - 3, y + 3), str(second), fill=AXIS_COLOUR, font=font)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
