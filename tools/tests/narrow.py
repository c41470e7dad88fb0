"""The grading options the grader's end-to-end tests share: one mode, one smoke case, no xdist.

Strategy: a real grading run is minutes long; these options narrow it to one required smoke
case in thread mode, and SMOKE_RUBRIC holds the one item such a run can earn in full.
"""

from pathlib import Path

SMOKE_RUBRIC = Path(__file__).with_name("smoke_rubric.toml")
NARROW = [
    "--modes",
    "thread",
    "--tier",
    "required",
    "--workers",
    "0",
    "--pytest-args=-k smoke-get-page",
]
