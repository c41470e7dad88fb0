"""Run untrusted server code (the server under test, its `-h`) inside a bubblewrap sandbox."""

# Strategy: bubblewrap (bwrap) gives the server a read-only view of the whole filesystem, with the
# homes, the temporary folders and the instructor's folders (the suite, the grader's working
# folder, the submissions) hidden behind empty read-only tmpfs mounts; only the interpreter is
# shown again, read-only. The server's script runs from a throw-away copy of its own folder, the
# only place it may write (its HOME and TMPDIR; one copy per suite process, shared by its
# servers); its served tree is shown read-only, and so is the suite's reference package httpd/
# (the selftest servers built on it import it). bwrap runs as root with just CAP_SETUID and
# CAP_SETGID kept, so that `prlimit` (processes, memory, open files, CPU time) and then `setpriv`
# (drop to the sandbox uid, no capabilities, no new privileges) can follow; the server is then
# the process bwrap starts, in its own session, its pid told on --info-fd. The network namespace
# is the caller's: the grader runs each submission's whole suite in its own loopback-only
# namespace (see tools/grading/sandbox.py), which the suite and its servers share.
#
# Each suite process (or grader slot) holds one sandbox uid, claimed with a lock file so that two
# suites on one machine never share one: the process limit counts per uid, and the grader kills
# every process of a submission's uid when it is done. HTTP_SANDBOX=auto|on|off chooses: auto
# (the default) sandboxes when bwrap works here and otherwise falls back to limits (and a uid when
# root); on refuses to run without bwrap; off runs servers as today, unconfined.

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import json
import os
import select
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import psutil

SANDBOX_ENV, UID_ENV, HIDE_ENV = "HTTP_SANDBOX", "HTTP_SANDBOX_UID", "HTTP_SANDBOX_HIDE"
CHOICES = ("auto", "on", "off")
UID_RANGE = range(420_000, 421_000)
SUITE_ROOT = Path(__file__).resolve().parents[1]
SYSTEM = ("/usr", "/etc", "/bin", "/lib", "/sbin", "/dev", "/proc")
HIDDEN = ("/root", "/home", "/tmp", "/var/tmp", "/run", "/mnt", "/media", "/srv", "/opt")
NOT_COPIED = (".git", ".tox", ".venv", "venv", "__pycache__", "*.pyc", "node_modules")
INFO_TIMEOUT = 10.0
_LOCKS: dict[int, object] = {}


class SandboxError(Exception):
    """The sandbox cannot be set up as asked; the message is one line saying why."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of every sandboxed process (prlimit): a fork or memory bomb stops here.

    Processes count per uid (threads too), so the limit covers every server of one suite run;
    both it and the open files leave room for the suite's floods (1,500 connections at once, a
    child process each in process mode).
    """

    processes: int = 4096
    memory_bytes: int = 4 << 30
    open_files: int = 8192
    cpu_seconds: int = 600

    def prlimit(self) -> list[str]:
        """Return the prlimit command prefix that sets these limits."""
        return [
            "prlimit",
            f"--nproc={self.processes}",
            f"--as={self.memory_bytes}",
            f"--nofile={self.open_files}",
            f"--cpu={self.cpu_seconds}",
            "--",
        ]


@dataclass(frozen=True)
class Sandbox:
    """How servers run here: `kind` is "bwrap", "limits" or "off"; `note` says what is missing."""

    kind: str
    uid: int | None = None
    note: str = ""
    limits: Limits = field(default_factory=Limits)
    hidden: tuple[Path, ...] = ()

    @property
    def confined(self) -> bool:
        """Whether servers run confined at all (bwrap or limits), hence always unprivileged."""
        return self.kind != "off"

    def prefix(
        self,
        work: Path,
        visible: Sequence[Path],
        python: str,
        info_fd: int,
        cwd: Path | None = None,
    ) -> list[str]:
        """Return the command prefix that runs a server in this sandbox.

        Args: `work` is its writable working copy, `visible` the folders it may read (its served
        tree), `python` its interpreter (shown again if it lives in a hidden folder), `info_fd` the
        descriptor bwrap reports the server's pid on (-1: none), `cwd` its working directory
        (default `work`). Returns: [] when not confined.
        """
        if self.kind == "off":
            return []
        drop = self._drop_user()
        if self.kind == "limits":
            return self.limits.prlimit() + drop
        options = _bwrap_options(self, work, visible, python, info_fd, cwd or work)
        return options + self.limits.prlimit() + drop

    def _drop_user(self) -> list[str]:
        """Return the setpriv prefix dropping to the sandbox uid ([] when we are not root)."""
        if self.uid is None:
            return []
        ids = [f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups"]
        return ["setpriv", *ids, "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]


def _bwrap_options(
    sandbox: Sandbox, work: Path, visible: Sequence[Path], python: str, info_fd: int, cwd: Path
) -> list[str]:
    """Return the bwrap command line up to the command (see the module's strategy)."""
    options = ["bwrap", "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-uts"]
    options += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    hidden = sandbox.hidden
    for path in hidden:
        options += ["--tmpfs", str(path)]
    reference = [SUITE_ROOT / "httpd"] if (SUITE_ROOT / "httpd").is_dir() else []
    shown = [(path, "--ro-bind") for path in [*interpreter_folders(python), *reference, *visible]]
    for path, how in [*shown, (work, "--bind")]:
        options += [*_make_parents(path, hidden), how, str(path), str(path)]
    for path in hidden:
        options += ["--remount-ro", str(path)]
    if os.geteuid() == 0:
        options += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    info = ["--info-fd", str(info_fd)] if info_fd >= 0 else []
    return [*options, "--chdir", str(cwd), *info, "--"]


def _make_parents(path: Path, hidden: Sequence[Path]) -> list[str]:
    """Return bwrap options creating `path`'s parents inside a hidden tmpfs, readable (0755)."""
    top = next((folder for folder in hidden if path.is_relative_to(folder)), None)
    if top is None:
        return []
    parents = [parent for parent in path.parents if parent.is_relative_to(top) and parent != top]
    made = [("--perms", "0755", "--dir", str(parent)) for parent in reversed(parents)]
    return [arg for options in made for arg in options]


@functools.cache
def interpreter_folders(python: str) -> tuple[Path, ...]:
    """Return the folders the interpreter `python` needs to run: its prefixes and its binary's."""
    ask = "import sys; print(sys.prefix); print(sys.base_prefix); print(sys.executable)"
    try:
        done = subprocess.run(
            [python, "-c", ask], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return (Path(python).resolve().parent,)
    lines = [Path(line) for line in done.stdout.splitlines() if line.strip()]
    binaries = [Path(python).resolve().parent, *(line.resolve().parent for line in lines[2:])]
    return tuple(dict.fromkeys([*lines[:2], *binaries]))


def current() -> Sandbox:
    """Return the sandbox of this process, from HTTP_SANDBOX (see the strategy), with its uid.

    Raises: SandboxError for a bad HTTP_SANDBOX, or "on" where bwrap cannot run.
    """
    box = choose(os.environ.get(SANDBOX_ENV, "auto").strip().lower() or "auto")
    return _with_uid(box) if box.confined and os.geteuid() == 0 else box


@functools.cache
def _with_uid(box: Sandbox) -> Sandbox:
    """Return `box` running as this process's sandbox uid (claimed once)."""
    return replace(box, uid=sandbox_uid())


@functools.cache
def choose(choice: str) -> Sandbox:
    """Return the Sandbox for `choice` (auto, on, off), its uid not yet set; bwrap probed once.

    Raises: SandboxError for a bad choice, or "on" where bwrap cannot run.
    """
    if choice not in CHOICES:
        raise SandboxError(f"{SANDBOX_ENV} must be one of {', '.join(CHOICES)}, not {choice!r}")
    if choice == "off":
        return Sandbox("off")
    problem = bwrap_problem()
    if not problem:
        return Sandbox("bwrap", hidden=hidden_folders([*HIDDEN, *instructor_folders()]))
    if choice == "on":
        raise SandboxError(f"{SANDBOX_ENV}=on but {problem}")
    return Sandbox("limits", note=f"sandbox: {problem}: servers get limits only")


def instructor_folders() -> list[str]:
    """Return folders the server must not see: the suite's repository, our working folder and
    those listed in HTTP_SANDBOX_HIDE (the grader lists the submissions' folders there)."""
    listed = os.environ.get(HIDE_ENV, "").split(os.pathsep)
    return [str(SUITE_ROOT), os.getcwd(), *filter(None, listed)]


def hidden_folders(paths: Sequence[str]) -> tuple[Path, ...]:
    """Return the folders to hide: absolute, existing, no system folder or its ancestor, none
    inside another one hidden (its tmpfs hides it already)."""
    folders = {Path(path).resolve() for path in paths}
    system = [Path(path) for path in SYSTEM]
    folders = {
        folder
        for folder in folders
        if folder.is_dir() and not any(sys_dir.is_relative_to(folder) for sys_dir in system)
    }
    return tuple(
        sorted(f for f in folders if not any(f != o and f.is_relative_to(o) for o in folders))
    )


@functools.cache
def bwrap_problem() -> str:
    """Return why bwrap cannot sandbox here ("" when a trial run works)."""
    if shutil.which("bwrap") is None:
        return "bwrap (Debian package bubblewrap) is not installed"
    trial = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    trial += ["--cap-add", "CAP_SETUID"] if os.geteuid() == 0 else []
    try:
        done = subprocess.run([*trial, "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"bwrap cannot run: {exc}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return f"bwrap cannot run here (no user namespaces?): {last}"
    return ""


def sandbox_uid() -> int:
    """Return this process's sandbox uid: HTTP_SANDBOX_UID if set, else one claimed for us."""
    given = os.environ.get(UID_ENV, "").strip()
    if given:
        if not given.isdigit() or int(given) == 0:
            raise SandboxError(f"{UID_ENV} must be a uid other than 0, not {given!r}")
        return int(given)
    return claim_uid()


def claim_uid() -> int:
    """Claim a free sandbox uid for the life of this process (a lock file per uid).

    A uid whose lock is free but that runs processes is skipped: they belong to a suite whose
    locks live in another /tmp (a chroot, a container), which would otherwise share its uid.

    Raises: SandboxError when every uid of the range is held.
    """
    folder = Path(tempfile.gettempdir()) / "http-sandbox-uids"
    folder.mkdir(mode=0o700, exist_ok=True)
    for uid in UID_RANGE:
        handle = open(folder / f"{uid}.lock", "w")  # noqa: SIM115 (held until we exit)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        if processes_of(uid):
            handle.close()
            continue
        _LOCKS[uid] = handle
        return uid
    raise SandboxError(f"every sandbox uid {UID_RANGE.start}-{UID_RANGE.stop - 1} is in use")


def release_uid(uid: int) -> None:
    """Give back a uid claimed with claim_uid (nothing if it was not)."""
    handle = _LOCKS.pop(uid, None)
    if handle is not None:
        handle.close()


def sweep_claimed() -> int:
    """Kill every process of the uids this process claimed (at exit); return how many."""
    return sum(kill_uid(uid) for uid in list(_LOCKS))


def spawn(
    sandbox: Sandbox,
    argv: list[str],
    work: Path,
    visible: Sequence[Path],
    python: str,
    cwd: Path,
    **popen: object,
) -> tuple[subprocess.Popen, int]:
    """Start `argv` in the sandbox in `cwd` (Popen keyword arguments as given).

    Returns: the Popen (bwrap itself when sandboxed) and the pid of the server proper (the
    Popen's own pid unless bwrap reported its child's; a failed bwrap reports none and exits).
    """
    if sandbox.kind != "bwrap":
        prefix = sandbox.prefix(work, visible, python, -1, cwd)
        started = subprocess.Popen(prefix + argv, cwd=cwd, **popen)
        return started, started.pid
    read_end, write_end = os.pipe()
    try:
        prefix = sandbox.prefix(work, visible, python, write_end, cwd)
        started = subprocess.Popen(prefix + argv, cwd=cwd, pass_fds=(write_end,), **popen)
    finally:
        os.close(write_end)
    try:
        child = read_child_pid(read_end)
    finally:
        os.close(read_end)
    return started, child or started.pid


def run(
    sandbox: Sandbox, script: Path, python: str, args: Sequence[str], timeout: float, env: dict
) -> subprocess.CompletedProcess:
    """Run `python script args` once in the sandbox on a fresh working copy; return its output.

    Raises: OSError or subprocess.TimeoutExpired as subprocess.run does.
    """
    work = work_copy(script) if sandbox.confined else script.parent
    try:
        if sandbox.confined:
            give_to(work, sandbox.uid)
        argv = [python, str(work / script.name), *args]
        prefix = sandbox.prefix(work, [], python, -1)
        return subprocess.run(
            prefix + argv,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd=work,
            env=sandbox_environment(env, work, sandbox) if sandbox.confined else env,
            start_new_session=True,
        )
    finally:
        if sandbox.confined:
            shutil.rmtree(work, ignore_errors=True)


def read_child_pid(read_end: int, timeout: float = INFO_TIMEOUT) -> int | None:
    """Return the sandboxed command's pid from bwrap's --info-fd JSON (None if bwrap failed)."""
    data = b""
    while True:
        ready, _, _ = select.select([read_end], [], [], timeout)
        chunk = os.read(read_end, 4096) if ready else b""
        if not chunk:
            return None
        data += chunk
        with contextlib.suppress(ValueError, KeyError, TypeError):
            return int(json.loads(data)["child-pid"])


def work_copy(script: Path) -> Path:
    """Copy the script's folder to a fresh temp folder the sandbox uid owns; return the copy.

    The copy leaves out version-control and cache folders; symlinks are copied as links.
    """
    work = Path(tempfile.mkdtemp(prefix="http-server-work-"))
    shutil.copytree(
        script.parent,
        work,
        symlinks=True,
        ignore=shutil.ignore_patterns(*NOT_COPIED),
        dirs_exist_ok=True,
    )
    work.chmod(0o755)
    return work


_COPIES: dict[tuple[Path, int | None], Path] = {}


def process_work_copy(script: Path, uid: int | None) -> Path:
    """Return this process's working copy of the script's folder, made (and given to `uid`) once.

    Copying a folder costs up to seconds on a loaded machine, so every server of one suite
    process (one xdist worker) shares the copy; it is deleted when the process exits.
    """
    key = (script.parent, uid)
    if key not in _COPIES:
        work = work_copy(script)
        give_to(work, uid)
        if not _COPIES:
            atexit.register(_remove_copies)
        _COPIES[key] = work
    return _COPIES[key]


def _remove_copies() -> None:
    """Delete the working copies made by process_work_copy (at exit)."""
    for work in _COPIES.values():
        shutil.rmtree(work, ignore_errors=True)


def give_to(work: Path, uid: int | None) -> None:
    """Make `uid` own the working copy (so the server may write there); nothing if None."""
    if uid is None:
        return
    for dirpath, dirnames, filenames in os.walk(work):
        for name in [*dirnames, *filenames]:
            with contextlib.suppress(OSError):
                os.chown(Path(dirpath, name), uid, uid, follow_symlinks=False)
    os.chown(work, uid, uid)


def sandbox_environment(env: dict[str, str], work: Path, sandbox: Sandbox) -> dict[str, str]:
    """Return `env` with HOME and TMPDIR pointing into the working copy, and HTTPD_REPO naming
    where the suite's reference httpd/ package is (the selftest servers built on our server
    import it): the repository itself under bwrap, which shows it read-only; with limits only,
    a readable copy, since the sandbox uid may not enter the repository's folders (a checkout
    in root's home, mode 0700, as on a fresh machine set up as root)."""
    repo = SUITE_ROOT if sandbox.kind == "bwrap" else reference_copy()
    return env | {"HOME": str(work), "TMPDIR": str(work), "HTTPD_REPO": str(repo)}


@functools.cache
def reference_copy() -> Path:
    """Return a folder every user may read holding a copy of the suite's httpd/ (made once per
    process, deleted at exit); the folder alone when the suite has no httpd/."""
    folder = Path(tempfile.mkdtemp(prefix="http-server-reference-"))
    folder.chmod(0o755)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    if (SUITE_ROOT / "httpd").is_dir():
        shutil.copytree(
            SUITE_ROOT / "httpd", folder / "httpd", ignore=shutil.ignore_patterns(*NOT_COPIED)
        )
        for path in [folder / "httpd", *(folder / "httpd").rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def processes_of(uid: int) -> list[psutil.Process]:
    """Return every living process whose real uid is `uid`."""
    found = []
    for process in psutil.process_iter(["uids"]):
        uids = process.info.get("uids")
        if uids is not None and uids.real == uid:
            found.append(process)
    return found


def kill_uid(uid: int) -> int:
    """SIGKILL every process of `uid` (again while new ones appear); return how many were found."""
    seen: set[int] = set()
    for _ in range(10):
        left = [process for process in processes_of(uid) if not _is_zombie(process)]
        if not left:
            break
        for process in left:
            seen.add(process.pid)
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(left, timeout=2)
    return len(seen)


def _is_zombie(process: psutil.Process) -> bool:
    """Say whether a process is a zombie or already gone (nothing to kill)."""
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True
