"""Tests for `grade.py gradescope-bundle`: the archive, and run_autograder in a Gradescope layout.

Strategy: the archive is built, then unzipped into a temporary folder laid out as Gradescope lays
out /autograder (source/, submission/ holding a correct server, results/, and run_autograder
copied to the top); run_autograder runs with $AUTOGRADER_ROOT pointing there and
$AUTOGRADER_PYTHON at this interpreter, whose packages are already installed (setup.sh, which
installs them on Gradescope's image, is not run here). The suite is narrowed to one smoke case
in one mode, baked into the archive like any grading option.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1]
ROOT = TOOLS.parent
sys.path.insert(0, str(TOOLS))

import grade  # noqa: E402
from grading.gradescope import without_rubric_choice  # noqa: E402
from grading.rubric import load_rubric, rubric_path, rubric_toml  # noqa: E402
from narrow import NARROW, SMOKE_RUBRIC  # noqa: E402


def build(tmp_path: Path, *options: str) -> Path:
    """Build the archive with `options` through the command line; return its path."""
    out = tmp_path / "autograder.zip"
    assert grade.main(["gradescope-bundle", str(out), *options]) == 0
    return out


def test_the_archive_holds_the_scripts_and_suite_but_not_the_reference_server(
    tmp_path: Path,
) -> None:
    with zipfile.ZipFile(build(tmp_path)) as archive:
        names = set(archive.namelist())
        modes = {name: archive.getinfo(name).external_attr >> 16 for name in names}
        requirements = archive.read("requirements.txt").decode()
    assert {"setup.sh", "run_autograder", "requirements.txt", "constraints.txt"} <= names
    assert {"tools/grade.py", "conftest.py", "pyproject.toml", "harness/plugin.py"} <= names
    assert any(name.startswith("conformance/") for name in names)
    assert not any(name.startswith(("httpd/", "http_server.py")) for name in names)
    assert not any("__pycache__" in name for name in names)
    assert modes["run_autograder"] & stat.S_IXUSR and modes["setup.sh"] & stat.S_IXUSR
    assert "pytest" in requirements and "rich" in requirements


def test_the_scripts_pass_shellcheck(tmp_path: Path) -> None:
    with zipfile.ZipFile(build(tmp_path, *NARROW)) as archive:
        archive.extractall(tmp_path / "source", members=["setup.sh", "run_autograder"])
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    shellcheck = shutil.which("shellcheck", path=search)
    assert shellcheck, "shellcheck is missing: pip install -e '.[test]'"
    scripts = [str(tmp_path / "source" / name) for name in ("setup.sh", "run_autograder")]
    done = subprocess.run([shellcheck, *scripts], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_chosen_rubric_travels_in_the_archive(tmp_path: Path) -> None:
    own = tmp_path / "my-rubric.toml"
    own.write_text(rubric_toml(load_rubric(rubric_path("later"))).replace("Lab 6", "Our lab 6"))
    out = build(tmp_path, "--rubric", str(own), "--modes", "thread")
    with zipfile.ZipFile(out) as archive:
        bundled = archive.read("rubric.toml").decode()
        script = archive.read("run_autograder").decode()
        setup = archive.read("setup.sh").decode()
    assert "Our lab 6" in bundled and str(own) not in script
    assert '--rubric "$ROOT/source/rubric.toml" --modes thread --output' in script
    assert 'PYTHON="python3.12"' in setup  # the later rubric runs servers with Python 3.12


def test_lab_and_rubric_choices_are_left_to_the_bundled_file() -> None:
    options = ["--lab", "later", "--tier", "required", "--rubric=x.toml", "--modes", "thread"]
    assert without_rubric_choice(options) == ["--tier", "required", "--modes", "thread"]


def test_bad_grading_options_fail_when_the_archive_is_made(tmp_path: Path) -> None:
    for options in (["--tier", "all"], ["--output", "x"]):
        with pytest.raises(SystemExit) as exit_info:
            grade.main(["gradescope-bundle", str(tmp_path / "a.zip"), *options])
        assert exit_info.value.code == 2
    assert not (tmp_path / "a.zip").exists()


def gradescope_layout(tmp_path: Path, *options: str) -> Path:
    """Unzip a freshly built archive as Gradescope does; return the /autograder stand-in."""
    autograder = tmp_path / "autograder"
    with zipfile.ZipFile(build(tmp_path, *options)) as archive:
        archive.extractall(autograder / "source")
    shutil.copy(autograder / "source" / "run_autograder", autograder / "run_autograder")
    (autograder / "submission").mkdir()
    (autograder / "results").mkdir()
    return autograder


def run_autograder(autograder: Path) -> tuple[subprocess.CompletedProcess, dict]:
    """Run run_autograder there with this interpreter; return the run and results.json."""
    env = os.environ | {"AUTOGRADER_ROOT": str(autograder), "AUTOGRADER_PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(autograder / "run_autograder")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done, json.loads((autograder / "results" / "results.json").read_text())


def test_a_submission_without_a_server_gets_results_saying_so(tmp_path: Path) -> None:
    autograder = gradescope_layout(tmp_path, *NARROW)
    (autograder / "submission" / "README.md").write_text("forgot the server\n")
    done, results = run_autograder(autograder)
    assert results["score"] == 0.0 and "no http_server.py" in results["output"]
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.heavy
def test_run_autograder_grades_the_submission_into_results_json(tmp_path: Path) -> None:
    autograder = gradescope_layout(tmp_path, *NARROW, "--rubric", str(SMOKE_RUBRIC))
    nested = autograder / "submission" / "lab6"
    shutil.copytree(ROOT / "httpd", nested / "httpd", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "http_server.py", nested)
    done, results = run_autograder(autograder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert results["score"] == 100.0, results["output"]
    scored = [test for test in results["tests"] if "max_score" in test]
    assert scored and sum(test["score"] for test in scored) == pytest.approx(100.0)
