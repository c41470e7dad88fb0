"""The grader behind tools/grade.py: grade submissions, score them, write their scorecards."""

# Strategy: runner grades one submission (check it, run the suite, collect records), scoring
# turns records into a Scorecard by a rubric (rubric.py, rubrics/*.toml), render writes the
# Markdown, JSON, timeline and Gradescope files; sources finds submissions (folders, git
# repositories at a tag, lists), summary writes the class-wide files, progress shows the run;
# gradescope and classroom package the grader for those. The suite's harness lives at the
# repository root; it is made importable however we were found.

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

from .rubric import Rubric, RubricError, load_rubric, rubric_path  # noqa: E402
from .runner import GradeOptions, SubmissionError, grade_submission  # noqa: E402
from .scoring import Scorecard, score_card  # noqa: E402
from .sources import unique_names  # noqa: E402
from .summary import write_outputs  # noqa: E402

__all__ = [
    "GradeOptions",
    "Rubric",
    "RubricError",
    "Scorecard",
    "SubmissionError",
    "grade_submission",
    "load_rubric",
    "rubric_path",
    "score_card",
    "unique_names",
    "write_outputs",
]
