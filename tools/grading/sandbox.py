"""The grader's side of the sandbox: a loopback-only network and a uid of its own per submission.

Strategy: each submission's whole pytest run goes into a fresh network namespace (`unshare
--net`, then `ip link set lo up`): the suite and the servers it starts share it and talk over
loopback, nothing outside the machine is reachable, and parallel submissions can never meet on
a port. The servers themselves are confined by the harness (harness/sandbox.py: bwrap, limits);
the grader claims each submission a sandbox uid of its own (HTTP_SANDBOX_UID), so that when its
run ends every process of that uid, however it got away from its parent (a double fork, a new
session), is found and killed. Where a piece cannot run here the grader says so in one line
(`isolation_note`) and uses what it has.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness import sandbox
from harness.sandbox import CHOICES, SandboxError

__all__ = ["CHOICES", "Isolation", "SandboxError", "isolated", "isolation_note"]

LOOPBACK_UP = 'ip link set lo up && exec "$@"'


@dataclass
class Isolation:
    """What the grader puts around one submission's run: a command prefix, an environment, the
    uid its servers run as; `notes` gets a line when processes of it had to be killed at the end.
    """

    prefix: tuple[str, ...]
    env: dict[str, str]
    uid: int | None
    notes: list[str] = field(default_factory=list)


def network_prefix() -> tuple[str, ...]:
    """Return the prefix running a command in a fresh loopback-only network namespace (or ())."""
    return () if network_problem() else _NETWORK_PREFIX


_NETWORK_PREFIX = ("unshare", "--net", "--", "sh", "-c", LOOPBACK_UP, "sh")


@functools.cache
def network_problem() -> str:
    """Return why runs cannot get a network namespace of their own here ("" when they can)."""
    if os.geteuid() != 0:
        return "not root, so the suite shares the machine's network"
    missing = [tool for tool in ("unshare", "ip") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not found, so the suite shares the machine's network"
    try:
        done = subprocess.run(
            [*_NETWORK_PREFIX, "true"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"no network namespace ({exc}), so the suite shares the machine's network"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return f"no network namespace ({last}), so the suite shares the machine's network"
    return ""


def isolation_note(choice: str) -> str:
    """Return the one line saying what isolation is missing here ("" when there is all of it).

    Raises: SandboxError for a bad choice, or "on" where bwrap cannot run.
    """
    if choice not in CHOICES:
        raise SandboxError(f"--sandbox must be one of {', '.join(CHOICES)}")
    if choice == "off":
        return "sandbox: off (--sandbox off): servers run unconfined, as this user"
    problems, bwrap = [], sandbox.bwrap_problem()
    if bwrap and choice == "on":
        raise SandboxError(f"--sandbox on, but {bwrap}")
    if bwrap:
        problems.append(f"{bwrap}: servers get limits only, the filesystem is not hidden")
    if os.geteuid() != 0:
        problems.append("not root: servers run as this user, not as a uid of their own")
    problems += [network_problem()] if network_problem() else []
    return f"sandbox: {'; '.join(problems)}" if problems else ""


@contextlib.contextmanager
def isolated(choice: str, submission: Path) -> Iterator[Isolation]:
    """Yield the isolation for one submission's run; afterwards kill whatever of it is left.

    Args: `choice` is auto, on or off (HTTP_SANDBOX); `submission` the folder graded, hidden
    from its own servers (they run from a copy) together with its siblings.
    """
    env = {sandbox.SANDBOX_ENV: choice}
    if choice == "off":
        yield Isolation((), env, None)
        return
    uid = sandbox.claim_uid() if os.geteuid() == 0 else None
    if uid is not None:
        env[sandbox.UID_ENV] = str(uid)
    env[sandbox.HIDE_ENV] = str(submission.resolve().parent)
    isolation = Isolation(network_prefix(), env, uid)
    try:
        yield isolation
    finally:
        if uid is not None:
            killed = sandbox.kill_uid(uid)
            sandbox.release_uid(uid)
            if killed:
                isolation.notes.append(
                    f"sandbox: {killed} processes of the submission were still running after its"
                    " run (escaped from their server's process group): killed"
                )
