"""The PNG chart: req/s and p50/p99 latency per server, ours in blue, peers in grey.

Strategy: matplotlib (Agg backend) imported only when a chart is drawn, so everything else
runs without it; the caller checks for it up front and says how to install it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .model import ServerResult


def draw_chart(results: Sequence[ServerResult], path: Path, title: str) -> None:
    """Draw req/s and p50/p99 latency per server (ours in blue, peers in grey) into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [(r, r.best) for r in results if r.best is not None]
    labels = [r.spec.name for r, _ in measured]
    colors = ["tab:blue" if r.spec.ours else "tab:gray" for r, _ in measured]
    rows = range(len(measured))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 1.5 + 0.45 * len(measured)), sharey=True)
    left.barh(rows, [best.requests_per_sec for _, best in measured], color=colors)
    left.set_yticks(list(rows), labels)
    left.invert_yaxis()
    left.set_xlabel("requests/s (best run)")
    left.set_title("blue: http_server.py modes, grey: peers", fontsize=9)
    left.margins(x=0.15)
    for row, (_, best) in zip(rows, measured, strict=True):
        left.annotate(f"{best.requests_per_sec:,.0f}", (best.requests_per_sec, row), va="center")
    for offset, key, color in ((-0.2, 50.0, "tab:green"), (0.2, 99.0, "tab:red")):
        values = [best.percentiles_ms.get(key, 0.0) for _, best in measured]
        right.barh([r + offset for r in rows], values, height=0.4, color=color, label=f"p{key:g}")
    right.set_xscale("log")
    right.set_xlabel("latency (ms, log scale)")
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
