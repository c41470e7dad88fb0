"""Where submissions come from: folders, files, git repositories (GitHub Classroom), lists of them.

Strategy: the command line names submissions; a `.txt` file among them is a list, one submission
per line (blank lines and `#` comments skipped, relative paths taken from the list's folder). A
git URL, or a local folder at the top of a git repository, is a repository: its commit tagged
`final` (the GitHub Classroom convention) is cloned, shallow, into a throw-away folder and graded
there, and the scorecard is named after the repository. Every problem (no such tag, a repository
that cannot be fetched, git missing) is one line in that submission's scorecard and the summary,
never a traceback; the other submissions are graded all the same.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from .runner import GradeOptions, Progress, SubmissionError, grade_submission, submission_name
from .scoring import Scorecard
from .summary import SUMMARY_FILES

DEFAULT_TAG = "final"
LIST_SUFFIX = ".txt"
GIT_TIMEOUT = 300.0
_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:)", re.IGNORECASE)
_UNSAFE = re.compile(r"[^\w.-]+")

Grader = Callable[[str | Path, GradeOptions, str, Progress | None], Scorecard]


def expand(arguments: Sequence[str]) -> list[str]:
    """Return the submissions named by the arguments, each `.txt` list file replaced by its lines.

    Raises: SubmissionError if a list file cannot be read or lists nothing.
    """
    submissions: list[str] = []
    for argument in arguments:
        path = Path(argument)
        if path.suffix.lower() != LIST_SUFFIX or not path.is_file():
            submissions.append(argument)
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise SubmissionError(f"{argument}: cannot read this list: {exc}") from None
        listed = [
            line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")
        ]
        if not listed:
            raise SubmissionError(f"{argument}: the list names no submission")
        submissions += [
            entry if _URL.match(entry) else str(path.parent / entry) for entry in listed
        ]
    return submissions


def is_url(spec: str) -> bool:
    """Whether a submission is given as a git URL (https://, ssh://, file://, git@host:...)."""
    return bool(_URL.match(spec))


def is_local_repository(spec: str) -> bool:
    """Whether a submission is a local folder at the top of a git repository (bare or not)."""
    path = Path(spec)
    bare = all((path / part).exists() for part in ("HEAD", "objects", "refs"))
    return path.is_dir() and ((path / ".git").exists() or bare)


def source_name(spec: str) -> str:
    """Return the name a submission's outputs go to: a repository's name, else its folder's."""
    if is_url(spec):
        last = re.split(r"[/:]", spec.rstrip("/"))[-1]
    elif is_local_repository(spec):
        last = Path(spec).resolve().name
    else:
        return submission_name(spec)
    return _UNSAFE.sub("_", last.removesuffix(".git")).strip("._") or "submission"


def unique_names(specs: Sequence[str | Path]) -> list[str]:
    """Return one distinct output folder name per submission: alice, alice-2, ..."""
    taken, names = {name.lower() for name in SUMMARY_FILES}, []
    for spec in specs:
        base = name = source_name(str(spec))
        count = 1
        while name.lower() in taken:
            count += 1
            name = f"{base}-{count}"
        taken.add(name.lower())
        names.append(name)
    return names


def grade_source(
    spec: str,
    options: GradeOptions,
    name: str,
    tag: str = DEFAULT_TAG,
    working_tree: bool = False,
    progress: Progress | None = None,
    grade: Grader = grade_submission,
) -> Scorecard:
    """Grade one submission, a repository at `tag` or a folder as it is; never raises.

    Args: `working_tree` grades local clones as they are on disk (URLs are still cloned at
    `tag`); `progress` is told how many tests are done (see grade_submission); `grade` grades
    a folder (the real grader by default; tests pass a stub).
    """
    if not is_url(spec) and (working_tree or not is_local_repository(spec)):
        return grade(spec, options, name, progress)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    try:
        with checkout(spec, tag) as (folder, commit):
            card = grade(folder, options, name, progress)
            label = f"{spec} at tag {tag} (commit {commit[:12]})"
            return _relabel(card, str(folder), label)
    except SubmissionError as exc:
        return Scorecard(
            name=name,
            submission=spec,
            status="invalid",
            error=str(exc),
            graded_modes=list(options.graded_modes),
            tier=options.tier,
            python=options.python,
            started=started,
        )


@contextlib.contextmanager
def checkout(spec: str, tag: str) -> Iterator[tuple[Path, str]]:
    """Clone the commit tagged `tag` of a repository, shallow, into a temporary folder.

    Yields: (the clone's folder, the commit's hash); the folder is removed afterwards.
    Raises: SubmissionError (one line) if git is missing, the repository cannot be read, or it
    has no such tag.
    """
    url = spec if is_url(spec) else Path(spec).resolve().as_uri()
    if not git("ls-remote", "--tags", url, f"refs/tags/{tag}", spec=spec):
        raise SubmissionError(
            f"{spec}: no tag {tag!r} (the student marks the commit to grade with"
            f" `git tag {tag} && git push origin {tag}`)"
        )
    with tempfile.TemporaryDirectory(prefix="grade-repo-") as tmp:
        folder = Path(tmp) / "repo"
        git("clone", "--quiet", "--depth", "1", "--branch", tag, url, str(folder), spec=spec)
        yield folder, git("-C", str(folder), "rev-parse", "HEAD", spec=spec)


def git(*arguments: str, spec: str) -> str:
    """Run git without prompts, for at most GIT_TIMEOUT s; return its output, stripped.

    Raises: SubmissionError naming `spec` and git's last error line when git fails.
    """
    env = os.environ | {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
    env["GIT_SSH_COMMAND"] = os.environ.get("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    try:
        done = subprocess.run(
            ["git", *arguments],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=GIT_TIMEOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    except FileNotFoundError:
        raise SubmissionError(
            f"{spec}: git is not installed, so repositories cannot be graded"
        ) from None
    except subprocess.TimeoutExpired:
        raise SubmissionError(f"{spec}: git {arguments[0]} took over {GIT_TIMEOUT:g} s") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        why = lines[-1] if lines else f"exit status {done.returncode}"
        raise SubmissionError(f"{spec}: git {arguments[0]} failed: {why}")
    return done.stdout.strip()


def _relabel(card: Scorecard, folder: str, label: str) -> Scorecard:
    """Return a card graded in a temporary clone, telling the repository instead of the clone."""
    resolved = str(Path(folder).resolve())

    def told(text: str) -> str:
        """Return text with the clone's path replaced by the repository's label."""
        return text.replace(resolved, label).replace(folder, label)

    return replace(
        card,
        submission=label,
        server=told(card.server),
        error=told(card.error),
        notes=[told(note) for note in card.notes],
    )
