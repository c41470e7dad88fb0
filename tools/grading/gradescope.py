"""`grade.py gradescope-bundle OUT.zip`: the autograder archive Gradescope runs for each submission.

Strategy: Gradescope unzips the archive into /autograder/source, runs setup.sh once (as root, on
its Ubuntu image) to build the image, then for every submission copies run_autograder to
/autograder/run_autograder and runs it; the student's files are in /autograder/submission and the
verdict must be /autograder/results/results.json. So the archive holds the suite and the grader
(the files listed in BUNDLED, never the reference server), a requirements.txt made from
pyproject's `test` extra with the pinned constraints.txt, and two scripts: setup.sh installs
Python >= 3.11 (or the one the rubric names), the programs the suite drives and the Python
packages into a venv; run_autograder runs this same grade.py on the submission, with the grading
options given when the archive was made, and copies the scorecard's results.json (render's
Gradescope format) into place. The rubric chosen then (--lab, --rubric FILE, --required-modes)
travels as one self-contained rubric.toml, so an instructor's own rubric file goes along. Both
scripts take their root from $AUTOGRADER_ROOT (default /autograder) and run_autograder its Python
from $AUTOGRADER_PYTHON, so a test runs them in a temporary folder laid out the same way.
"""

from __future__ import annotations

import argparse
import shlex
import stat
import sys
import time
import tomllib
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from .rubric import Rubric, rubric_toml
from .runner import ROOT

ROOT_ENV, PYTHON_ENV = "AUTOGRADER_ROOT", "AUTOGRADER_PYTHON"
BUNDLED = (
    "conftest.py",
    "pyproject.toml",
    "constraints.txt",
    "harness",
    "conformance",
    "concurrency_tests",
    "www",
    "tools/grade.py",
    "tools/grading",
)
SKIPPED_PARTS = ("__pycache__",)
SKIPPED_SUFFIXES = (".pyc",)
EXECUTABLE = (stat.S_IFREG | 0o755) << 16  # zip external attributes: an executable file
REFUSED_OPTIONS = ("--output", "--python")  # run_autograder sets these itself
RUBRIC_CHOICES = ("--lab", "--rubric")  # replaced by the bundled rubric.toml
RUBRIC_FILE = "rubric.toml"

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu 22.04 or later):
# Python >= 3.11 in a venv, the suite's Python packages (pinned), the programs it drives.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends \
    python3 python3-venv curl wrk bubblewrap git ca-certificates
# The interpreter the rubric runs servers with, if it names one (e.g. python3.12), else any >= 3.11.
PYTHON="__RUBRIC_PYTHON__"
if [ -n "$PYTHON" ]; then
    command -v "$PYTHON" >/dev/null \
        || apt-get install -y --no-install-recommends "$PYTHON" "$PYTHON-venv"
else
    PYTHON=python3
    if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        apt-get install -y --no-install-recommends python3.11 python3.11-venv
        PYTHON=python3.11
    fi
fi
"$PYTHON" -m venv "$ROOT/venv"
"$ROOT/venv/bin/python" -m pip install --quiet \
    -r "$ROOT/source/requirements.txt" -c "$ROOT/source/constraints.txt"
# Ubuntu's chromium package is a snap, which does not run in Gradescope's container: install
# Playwright's own Chromium (and the libraries it needs) and put it on PATH under the name the
# suite looks for.
"$ROOT/venv/bin/python" -m playwright install --with-deps chromium
ln -sf "$("$ROOT/venv/bin/python" -c 'from playwright.sync_api import sync_playwright
with sync_playwright() as driver:
    print(driver.chromium.executable_path)')" /usr/local/bin/chromium
"""

RUN_AUTOGRADER = r"""#!/usr/bin/env bash
# Gradescope runs this for each submission: grade the http_server.py found in the submission
# (at its top, else the first one below it) and put the scorecard's results.json in place.
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}"
# A rubric naming an interpreter (python3.12) finds the venv's own.
PATH="$(dirname "$PYTHON"):$PATH"
export PATH
SUBMISSION="$ROOT/submission"
if [ ! -f "$SUBMISSION/http_server.py" ]; then
    found="$(find "$SUBMISSION" -name http_server.py -not -path '*/.*' | sort | head -n 1)"
    SUBMISSION="${found:-$SUBMISSION}"
fi
OUTPUT="$(mktemp -d)"
trap 'rm -rf "$OUTPUT"' EXIT
"$PYTHON" "$ROOT/source/tools/grade.py" "$SUBMISSION" --working-tree \
    --rubric "$ROOT/source/rubric.toml" __GRADE_OPTIONS__ --output "$OUTPUT"
mkdir -p "$ROOT/results"
cp "$OUTPUT"/*/results.json "$ROOT/results/results.json"
"""


def bundle_files(root: Path = ROOT) -> Iterator[tuple[Path, str]]:
    """Yield (file, name in the archive) for every file of BUNDLED, caches left out."""
    for entry in BUNDLED:
        path = root / entry
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            parts = file.relative_to(root).parts
            cached = set(parts) & set(SKIPPED_PARTS) or file.suffix in SKIPPED_SUFFIXES
            if file.is_file() and not cached:
                yield file, "/".join(parts)


def requirements(root: Path = ROOT) -> str:
    """Return requirements.txt for the archive: the `test` extra of pyproject.toml."""
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return "\n".join(project["optional-dependencies"]["test"]) + "\n"


def without_rubric_choice(options: Sequence[str]) -> list[str]:
    """Return grading options less --lab/--rubric and their values (rubric.toml replaces them)."""
    kept: list[str] = []
    skip_value = False
    for option in options:
        if skip_value:
            skip_value = False
        elif option in RUBRIC_CHOICES:
            skip_value = True
        elif not option.startswith(tuple(f"{choice}=" for choice in RUBRIC_CHOICES)):
            kept.append(option)
    return kept


def write_bundle(
    out: Path, grade_options: Sequence[str], rubric: Rubric, root: Path = ROOT
) -> list[str]:
    """Write the autograder archive to `out`, grading by `rubric`; return the names it holds.

    Args: `grade_options` are grade.py's options for every submission, without --lab/--rubric.
    """
    scripts = {
        "setup.sh": SETUP_SH.replace("__RUBRIC_PYTHON__", rubric.python),
        "run_autograder": RUN_AUTOGRADER.replace("__GRADE_OPTIONS__", shlex.join(grade_options)),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in scripts.items():
            info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
            info.external_attr, info.compress_type = EXECUTABLE, zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
        archive.writestr(RUBRIC_FILE, rubric_toml(rubric))
        archive.writestr("requirements.txt", requirements(root))
        for file, name in bundle_files(root):
            archive.write(file, name)
        return archive.namelist()


def main(argv: Sequence[str], parse_grade_args: Callable[[list[str]], argparse.Namespace]) -> int:
    """`gradescope-bundle OUT.zip [GRADING OPTIONS]`: write the archive; return the exit status.

    Args: `parse_grade_args` is grade.py's parser: the grading options are checked with it now,
    so a bad one fails here rather than on Gradescope.
    """
    parser = argparse.ArgumentParser(
        prog="grade.py gradescope-bundle",
        description="Write the Gradescope autograder archive (upload it as the assignment's"
        " autograder, Ubuntu base image). Options after OUT.zip are grade.py's grading options,"
        " used for every submission, e.g. --modes thread,process --tier required.",
    )
    parser.add_argument("out", type=Path, metavar="OUT.zip")
    parser.add_argument("grade_options", nargs=argparse.REMAINDER, metavar="GRADING OPTIONS")
    args = parser.parse_args(argv)
    refused = [option for option in args.grade_options if option.split("=")[0] in REFUSED_OPTIONS]
    if refused:
        parser.error(f"{', '.join(refused)}: run_autograder sets this itself")
    # This interpreter stands in for Gradescope's, so a rubric's python need not exist here.
    chosen = parse_grade_args(["submission", *args.grade_options, "--python", sys.executable])
    names = write_bundle(args.out, without_rubric_choice(args.grade_options), chosen.rubric)
    print(f"{args.out}: Gradescope autograder archive, {len(names)} files", flush=True)
    return 0
