"""Every tool explains itself: `--help` works, and a missing package is one line, not a traceback.

Strategy: run each tool's entry point in a child interpreter, once as it is and once with
`import psutil` made to fail (as in a Python without the extras), and read what it prints.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1]
INSTALL = "pip install -c constraints.txt -e "


def run_tool(script: str, *args: str, block: str | None = None) -> subprocess.CompletedProcess:
    """Run tools/`script` with `args` as its command line, `import block` failing if given."""
    path = TOOLS / script
    code = (
        "import runpy, sys; "
        + (f"sys.modules[{block!r}] = None; " if block else "")
        + f"sys.path.insert(0, {str(TOOLS)!r}); sys.argv = [{str(path)!r}, *sys.argv[1:]]; "
        + f"runpy.run_path({str(path)!r}, run_name='__main__')"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("script", ["benchmark.py", "grade.py"])
def test_help_works_with_the_extras(script):
    shown = run_tool(script, "--help")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("usage: ") and "--output" in shown.stdout


def test_benchmark_help_works_without_psutil_and_a_run_says_how_to_install_it():
    shown = run_tool("benchmark.py", "--help", block="psutil")
    assert shown.returncode == 0 and "--quick" in shown.stdout and "[bench]" in shown.stdout
    refused = run_tool("benchmark.py", "--quick", block="psutil")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.splitlines() == [
        f"benchmark.py: psutil is not installed for this Python: {INSTALL}'.[bench]'"
    ]


@pytest.mark.parametrize("args", [["--help"], ["some-folder"]])
def test_grade_without_psutil_says_in_one_line_what_to_install(args):
    refused = run_tool("grade.py", *args, block="psutil")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    (line,) = refused.stderr.splitlines()
    assert line.startswith("grade.py: psutil is not installed") and f"{INSTALL}'.[test]'" in line


def test_grade_names_each_missing_client_up_front(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.syspath_prepend(str(TOOLS))
    import grade

    notes = grade.missing_clients()
    assert [note.split()[0] for note in notes] == ["chromium", "curl", "wrk"]
    assert all("checks skip (Debian: apt-get install " in note for note in notes)
