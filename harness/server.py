"""Start, watch, stop and reap servers under test, each serving its own fixture tree."""

# Strategy: the server is a black box run as `PYTHON SERVER -p PORT -f FOLDER [-c MODE] [-d]` in
# its own session (a test may signal its process group without hitting pytest), its output going
# to files (a pipe nobody drains would block a verbose server). It runs in the sandbox of
# harness/sandbox.py (bwrap, its own uid, limits, a throw-away copy of its folder as working
# folder) unless HTTP_SANDBOX=off; `pid` is then the server's own pid, not bwrap's. It is ready
# once a socket of its own process tree listens on its port, asked of the kernel (sock_diag, and
# the tree's /proc fds) so no probe connection disturbs a naive server and another program's
# listener on that port never counts; "address in use" means another port. Stopping is a signal,
# then SIGKILL to the whole group after a grace period; then the tree is verified unchanged and
# deleted. ServerFactory (one test) and ServerPool (cached per worker for table cases) are the
# two owners of servers.

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from harness import sandbox
from harness.client import Reply, is_unresponsive, mark_port
from harness.fixtures import FixtureTree, build_tree, working_directory

UNRESPONSIVE_ENV = "HTTP_UNRESPONSIVE_MODES"
RETIRE_UNRESPONSIVE = 1.0  # s a server in a mode answering nothing gets to exit at teardown
LAB_MODES = ("thread", "process")
DEFAULT_MODE = "default"
_CHOICES = re.compile(r"(?:-c|--concurrency)[ =]\{([^}]*)\}")
_HAS_C_OPTION = re.compile(r"(?<![\w-])(?:-c|--concurrency)\b")
_IN_USE = re.compile(r"in use|EADDRINUSE|Errno 98|Errno 48", re.IGNORECASE)
_REFUSED_WRITE = re.compile(r".*(?:Read-only file system|Errno 30\b|EROFS).*")
_NETLINK_SOCK_DIAG, _SOCK_DIAG_BY_FAMILY, _TCPF_LISTEN = 4, 20, 1 << 10
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_DROP_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", "--"]


class ServerError(AssertionError):
    """The server under test could not be started, or died; the message says how."""


@dataclass(frozen=True)
class ServerCommand:
    """How to run the server under test: its script and the interpreter that runs it."""

    script: Path
    python: str = sys.executable

    def __post_init__(self) -> None:
        """Make the script path absolute: servers run in their tree's folder."""
        object.__setattr__(self, "script", Path(self.script).resolve())

    def argv(
        self,
        port: int,
        folder: Path,
        mode: str,
        delay: bool,
        extra: Sequence[str],
        script: Path | None = None,
    ) -> list:
        """Return the command line for one server (`script`: its working copy, if not ours)."""
        argv = [self.python, str(script or self.script), "-p", str(port), "-f", str(folder)]
        argv += [] if mode == DEFAULT_MODE else ["-c", mode]
        return argv + (["-d"] if delay else []) + list(extra)


@functools.cache
def discover_modes(command: ServerCommand) -> tuple[str, ...]:
    """Return the modes the server lists under `-c {...}` in its `-h` output.

    Returns: LAB_MODES when it has a -c option without listed choices, ("default",) when it has
    none or `-h` fails.
    """
    try:
        done = run_help(command.script, command.python)
    except (OSError, subprocess.TimeoutExpired):
        return (DEFAULT_MODE,)
    return parse_modes(done.stdout + done.stderr)


def run_help(script: Path, python: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    """Run `PYTHON SCRIPT -h` (sandboxed like the server) and return its output.

    Raises: ServerError if the sandbox cannot be set up; OSError or TimeoutExpired from the run.
    """
    return sandbox.run(current_sandbox(), script, python, ["-h"], timeout, server_environment())


def current_sandbox() -> sandbox.Sandbox:
    """Return the sandbox servers run in here (see harness/sandbox.py), as a ServerError if bad."""
    try:
        return sandbox.current()
    except sandbox.SandboxError as exc:
        raise ServerError(str(exc)) from None


def parse_modes(help_text: str) -> tuple[str, ...]:
    """Return the -c choices found in an argparse help text (see discover_modes)."""
    match = _CHOICES.search(help_text)
    if match:
        modes = tuple(mode.strip() for mode in match.group(1).split(",") if mode.strip())
        return modes or (DEFAULT_MODE,)
    return LAB_MODES if _HAS_C_OPTION.search(help_text) else (DEFAULT_MODE,)


def server_environment() -> dict[str, str]:
    """Return the environment servers run in: ours, unbuffered, writing no bytecode."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "HTTP_"))}
    return env | {"PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def free_port() -> int:
    """Return a TCP port that was free a moment ago (bind port 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def describe_status(status: int | None) -> str:
    """Return an exit status in words, e.g. "1" or "-11 (killed by SIGSEGV)"."""
    if status is None:
        return "still running"
    if status < 0:
        try:
            return f"{status} (killed by {signal.Signals(-status).name})"
        except ValueError:
            return f"{status} (killed by signal {-status})"
    return str(status)


class ServerProcess:
    """One running server under test (see start_server)."""

    def __init__(
        self,
        popen: subprocess.Popen,
        port: int,
        folder: Path,
        mode: str,
        logs: Path,
        pid: int | None = None,
        work: Path | None = None,
    ) -> None:
        self.popen, self.port, self.folder, self.mode = popen, port, folder, mode
        self.logs, self.work = logs, work
        self.server_pid = pid or popen.pid
        self.host = "127.0.0.1"
        self.tree: FixtureTree | None = None
        self.known: set[psutil.Process] = set()

    @property
    def pid(self) -> int:
        """The server's process id (also its process group and session id), inside bwrap if so."""
        return self.server_pid

    @property
    def wrapped(self) -> bool:
        """Whether the Popen is a wrapper (bwrap) around the server rather than the server."""
        return self.server_pid != self.popen.pid

    def exit_status(self) -> int | None:
        """Return the exit status, or None while the server runs (negative: killed by signal)."""
        return self._unwrap(self.popen.poll())

    def wait_exit(self, timeout: float) -> int | None:
        """Wait up to `timeout` s for the server to exit; return its status or None."""
        try:
            return self._unwrap(self.popen.wait(timeout))
        except subprocess.TimeoutExpired:
            return None

    def _unwrap(self, status: int | None) -> int | None:
        """Turn bwrap's 128+N for a server killed by signal N back into -N, as Popen reports it."""
        if status is None or not self.wrapped or not 128 < status < 128 + signal.NSIG:
            return status
        return 128 - status

    def stderr_text(self) -> str:
        """Return everything the server wrote to stderr so far."""
        return _read_text(self.logs / f"stderr-{self.port}.log")

    def stdout_text(self) -> str:
        """Return everything the server wrote to stdout so far."""
        return _read_text(self.logs / f"stdout-{self.port}.log")

    def stderr_tail(self, n: int = 20) -> str:
        """Return the last `n` lines the server wrote to stderr."""
        return "\n".join(self.stderr_text().splitlines()[-n:])

    def death_report(self) -> str:
        """Return "server ... died: exit status ...; last stderr lines: ..." for messages."""
        who = f"server under test (mode {self.mode}, pid {self.pid}, port {self.port})"
        status = describe_status(self.exit_status())
        tail = self.stderr_tail() or "(stderr is empty)"
        return f"{who} died: exit status {status}; last stderr lines:\n{tail}"

    def assert_alive(self) -> None:
        """Raise ServerError (an AssertionError) with the death report if the server died."""
        if self.exit_status() is not None:
            raise ServerError(self.death_report())

    def processes(self) -> list[psutil.Process]:
        """Return the server process and all its descendants (empty once it is gone)."""
        try:
            root = psutil.Process(self.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        self.known.update(tree)
        return tree

    def rss(self) -> int:
        """Return the resident memory of the server's whole process tree, in bytes."""
        total = 0
        for process in self.processes():
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
        return total

    def send_signal(self, sig: int, group: bool = False) -> None:
        """Send `sig` to the server, or to its whole process group; ignore if it is gone."""
        if group and self.popen.poll() is not None:
            for process in self._orphans():
                with contextlib.suppress(psutil.Error):
                    process.send_signal(sig)
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(self.pid, sig)
            elif self.popen.poll() is None:
                os.kill(self.pid, sig)

    def stop(self, sig: int = signal.SIGINT, group: bool = False, timeout: float = 10.0) -> int:
        """Send `sig`, wait up to `timeout` s, then SIGKILL the whole group; return exit status."""
        if self.popen.poll() is None:
            self.processes()
            self.send_signal(sig, group)
            if self.wait_exit(timeout) is None:
                self.kill_leftovers()
        return self._unwrap(self.popen.wait())

    def kill_leftovers(self) -> None:
        """SIGKILL the process group and every descendant ever seen; reap the server."""
        self.send_signal(signal.SIGKILL, group=True)
        self.popen.wait()
        for process in self.known | self._orphans():
            with contextlib.suppress(psutil.Error):
                process.kill()
        _RUNNING.discard(self)

    def refused_writes(self) -> list[str]:
        """Return the server's stderr lines saying the sandbox refused it a write (read-only)."""
        return _REFUSED_WRITE.findall(self.stderr_text())

    def _orphans(self) -> set[psutil.Process]:
        """Return the processes left in the group of the (reaped) server.

        A group id stays reserved while any member lives, so if a process now has the server's
        pid, the number was reused and no member of ours is left.
        """
        if self.popen.poll() is None or psutil.pid_exists(self.pid):
            return set()
        members = set()
        for process in psutil.process_iter():
            with contextlib.suppress(psutil.Error, OSError):
                if os.getpgid(process.pid) == self.pid:
                    members.add(process)
        return members


_RUNNING: set[ServerProcess] = set()


@atexit.register
def _kill_running() -> None:
    """At exit: stop servers left without teardown (e.g. a second Ctrl-C), then kill whatever
    still runs as our sandbox uid (children that escaped their server's process group)."""
    for server in list(_RUNNING):
        server.kill_leftovers()
        if server.tree is not None:
            server.tree.remove()
    sandbox.sweep_claimed()


def _read_text(path: Path) -> str:
    """Return a log file's text (empty if it does not exist)."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def start_server(
    command: ServerCommand,
    mode: str,
    folder: Path,
    logs: Path,
    *,
    delay: bool = False,
    extra_args: Sequence[str] = (),
    unprivileged: bool = False,
    ready_timeout: float = 20.0,
) -> ServerProcess:
    """Start the server on a free port serving `folder`; return once it listens.

    Args: `logs` is a folder for its stdout/stderr files; `unprivileged` runs it without the
    power to read mode-000 files when we are root (always so in the sandbox).
    Raises: ServerError if it exits or does not listen within `ready_timeout` s, or ignores -p.
    """
    for _ in range(5):
        server = _spawn(command, mode, folder, logs, delay, extra_args, unprivileged)
        outcome, why = _await_listening(server, ready_timeout)
        if outcome == "ready":
            return server
        status = describe_status(server.exit_status())
        in_use = outcome == "in use" or (
            server.exit_status() is not None and _IN_USE.search(server.stderr_text())
        )
        port_taken = in_use and _port_taken(server.port)
        server.stop(signal.SIGKILL)
        if port_taken:
            continue
        if in_use:
            why = (
                f"says the address is in use, but port {server.port} given with -p was free: "
                "it does not listen on the port given (a fixed port of its own, taken by another?)"
            )
        tail = server.stderr_tail() or "(stderr is empty)"
        raise ServerError(
            f"server under test (mode {mode}) {why} at start-up: exit status {status}\n"
            f"command: {' '.join(map(str, server.popen.args))}\nlast stderr lines:\n{tail}"
        )
    raise ServerError(f"server under test (mode {mode}): every port tried was in use")


def _spawn(
    command: ServerCommand,
    mode: str,
    folder: Path,
    logs: Path,
    delay: bool,
    extra_args: Sequence[str],
    unprivileged: bool,
) -> ServerProcess:
    """Launch one server process on a fresh port, output to files in `logs`.

    It runs in the tree's working directory (see fixtures.working_directory); confined, its
    script runs from this process's working copy of its folder (the one place it may write, its
    HOME and TMPDIR), and it sees `folder`'s tree read-only.
    """
    box = current_sandbox()
    port = free_port()
    logs.mkdir(parents=True, exist_ok=True)
    work = sandbox.process_work_copy(command.script, box.uid) if box.confined else None
    out_path, err_path = logs / f"stdout-{port}.log", logs / f"stderr-{port}.log"
    env, cwd = server_environment(), working_directory(folder)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        popen_options = {
            "stdin": subprocess.DEVNULL,
            "stdout": out,
            "stderr": err,
            "env": env,
            "start_new_session": True,
        }
        if work is not None:
            argv = command.argv(port, folder, mode, delay, extra_args, work / command.script.name)
            popen_options["env"] = sandbox.sandbox_environment(env, work, box)
            with _spawn_errors(argv):
                popen, pid = sandbox.spawn(
                    box, argv, work, [folder.parent], command.python, cwd, **popen_options
                )
        else:
            argv = command.argv(port, folder, mode, delay, extra_args)
            prefix, user = _privilege_drop(command) if unprivileged else ([], {})
            with _spawn_errors(argv):
                popen = subprocess.Popen(prefix + argv, cwd=cwd, **popen_options, **user)
            pid = popen.pid
    mark_port(port, mode in unresponsive_modes())
    server = ServerProcess(popen, port, folder, mode, logs, pid, work)
    _RUNNING.add(server)
    return server


@contextlib.contextmanager
def _spawn_errors(argv: list[str]) -> Iterator[None]:
    """Turn a failure to run the command at all (bad interpreter path...) into a ServerError."""
    try:
        yield
    except OSError as exc:
        raise ServerError(f"cannot run the server: {' '.join(argv)}: {exc}") from exc


def _await_listening(server: ServerProcess, timeout: float) -> tuple[str, str]:
    """Poll (with backoff) until a socket of the server's own process tree listens on its port.

    Returns: ("ready", "") once it does, ("in use", why) when another program holds the port and
    the server says so, else ("failed", why): it exited, listens on another port, or timed out.
    """
    started = time.monotonic()
    pause = 0.002
    while time.monotonic() < started + timeout:
        if server.exit_status() is not None:
            return "failed", "exited"
        listening = listening_sockets()
        if listening is None:
            address = _connect_probe(server)
            if address is not None:
                server.host = address
                return "ready", ""
        else:
            owned = _owned(server, listening)
            mine = [address for address, port in owned if port == server.port]
            if mine:
                server.host = _client_address(mine[0])
                return "ready", ""
            if owned and time.monotonic() > started + 1:
                other = min(port for _, port in owned)
                given = f"not on the port given with -p ({server.port})"
                return "failed", f"listens on port {other}, {given}"
            if _IN_USE.search(server.stderr_text()) and _port_taken(server.port, listening):
                return "in use", "another program holds its port"
        time.sleep(pause)
        pause = min(pause * 2, 0.1)
    return "failed", f"did not listen within {timeout:g} s"


def _owned(server: ServerProcess, listening: list[tuple[str, int, int]]) -> list[tuple[str, int]]:
    """Return (address, port) of the listening sockets that the server's process tree holds."""
    inodes: set[int] = set()
    for process in server.processes():
        inodes |= _socket_inodes(process.pid)
    return [(address, port) for address, port, inode in listening if inode in inodes]


def _port_taken(port: int, listening: list[tuple[str, int, int]] | None = None) -> bool:
    """Say whether some socket listens on `port` (True when the kernel cannot be asked)."""
    listening = listening_sockets() if listening is None else listening
    return listening is None or any(entry[1] == port for entry in listening)


def _socket_inodes(pid: int) -> set[int]:
    """Return the inodes of the sockets process `pid` has open (Linux /proc)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
    return inodes


def listening_sockets() -> list[tuple[str, int, int]] | None:
    """Return (address, port, inode) of every listening TCP socket; None if this cannot be asked.

    Uses Linux sock_diag over netlink: the kernel lists only listening sockets, so this stays
    fast on a machine with many thousands of TIME-WAIT sockets (where /proc/net/tcp does not).
    """
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG)
    except (AttributeError, OSError):
        return None
    with sock:
        found: list[tuple[str, int, int]] = []
        for family in (socket.AF_INET, socket.AF_INET6):
            request = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, _TCPF_LISTEN)
            request += bytes(48)
            header = struct.pack("=IHHII", 16 + len(request), _SOCK_DIAG_BY_FAMILY, 0x301, 1, 0)
            sock.send(header + request)
            found += _read_diag_dump(sock, family)
    return found


def _read_diag_dump(sock: socket.socket, family: int) -> list[tuple[str, int, int]]:
    """Read one sock_diag dump; return (source address, source port, inode) of each socket."""
    found, size = [], 4 if family == socket.AF_INET else 16
    while True:
        data, offset = sock.recv(1 << 16), 0
        while offset + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, offset)
            if kind in (_NLMSG_ERROR, _NLMSG_DONE):
                return found
            port = struct.unpack_from(">H", data, offset + 20)[0]
            address = socket.inet_ntop(family, data[offset + 24 : offset + 24 + size])
            inode = struct.unpack_from("=I", data, offset + 16 + 68)[0]
            found.append((address, port, inode))
            offset += (length + 3) & ~3


def _client_address(listen_ip: str) -> str:
    """Return the address a client should connect to for a socket listening on `listen_ip`."""
    if listen_ip in ("", "0.0.0.0", "::", "127.0.0.1", "::ffff:127.0.0.1"):
        return "127.0.0.1"
    return listen_ip.removeprefix("::ffff:")


def _connect_probe(server: ServerProcess) -> str | None:
    """Fallback readiness check when psutil may not look: try to connect."""
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=1):
            return "127.0.0.1"
    except OSError:
        return None


def _privilege_drop(command: ServerCommand) -> tuple[list[str], dict]:
    """Return (argv prefix, Popen kwargs) that run the server unable to read mode-000 files."""
    if os.geteuid() != 0:
        return [], {}
    nobody = pwd.getpwnam("nobody")
    if _can_run_as(command, nobody.pw_uid, nobody.pw_gid):
        return [], {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    if shutil.which("setpriv"):
        return list(_DROP_DAC), {}
    raise ServerError("cannot run the server unprivileged: 'nobody' cannot run it, no setpriv")


@functools.cache
def _can_run_as(command: ServerCommand, uid: int, gid: int) -> bool:
    """Say whether user `uid` can run the interpreter and read the server script."""
    check = "import sys; open(sys.argv[1], 'rb').close()"
    try:
        done = subprocess.run(
            [command.python, "-c", check, str(command.script)],
            capture_output=True,
            timeout=30,
            cwd="/",
            user=uid,
            group=gid,
            extra_groups=[],
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def launch(
    command: ServerCommand,
    mode: str,
    tree: str | Path = "default",
    table_case: bool = False,
    **options: object,
) -> ServerProcess:
    """Build a fresh fixture tree and start a server on it (options as for start_server).

    Args: `table_case` says the server is for conformance table cases, each of which needs a
    response: for a mode listed in HTTP_UNRESPONSIVE_MODES (see unresponsive_modes) it then
    raises at once instead of starting a server that would time out on every case (a test that
    may pass without responses, such as refusing connections after SIGINT, still runs).
    Returns: the running ServerProcess, its `tree` set. Raises: ServerError (tree removed).
    """
    if table_case and mode in unresponsive_modes():
        raise ServerError(
            f"not run: the server (mode {mode}) answered none of the grader's plain requests "
            "before the run (it hangs on every request), so each case of this mode fails at once"
        )
    fixture = build_tree(tree)
    try:
        server = start_server(command, mode, fixture.root, fixture.base / "logs", **options)
    except BaseException:
        fixture.remove()
        raise
    server.tree = fixture
    return server


def unresponsive_modes() -> set[str]:
    """Return the modes the grader found answering no request at all (HTTP_UNRESPONSIVE_MODES,
    comma-separated; see tools/grading/preflight.py): waiting out every test's timeouts on such a
    server would cost an hour and change no verdict."""
    listed = os.environ.get(UNRESPONSIVE_ENV, "")
    return {mode.strip() for mode in listed.split(",") if mode.strip()}


def retire(servers: Iterable[ServerProcess], grace: float = 5.0) -> list[str]:
    """Stop servers (SIGINT to all at once, SIGKILL after `grace` s), verify, delete their trees.

    A server in a mode found answering nothing gets RETIRE_UNRESPONSIVE s at most: its requests
    in flight never finish, so a clean exit is not coming, and no verdict depends on one here.

    Returns: one line per server whose served tree changed (empty when all is well).
    """
    servers = list(servers)
    for server in servers:
        server.processes()
        server.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    problems = []
    for server in servers:
        own = min(grace, RETIRE_UNRESPONSIVE) if is_unresponsive(server.port) else grace
        server.wait_exit(max(0.0, signalled + own - time.monotonic()))
        server.kill_leftovers()
        problems += _verify_and_remove(server)
    return problems


def _verify_and_remove(server: ServerProcess) -> list[str]:
    """Compare the server's tree with its snapshot, delete it; return problem lines: the tree
    changed, or the sandbox refused the server a write outside its working folder."""
    who = f"server (mode {server.mode}, port {server.port})"
    problems = [
        f"{who} tried to write outside its folder (refused): {line.strip()}"
        for line in server.refused_writes()[:1]
    ]
    if server.tree is None:
        return problems
    changes = server.tree.changes()
    server.tree.remove()
    if not changes:
        return problems
    listed = "\n  ".join(changes[:20])
    return [*problems, f"{who} changed its served tree:\n  {listed}"]


class ServerFactory:
    """Starts servers for one test; `close()` stops and verifies every one of them."""

    def __init__(self, command: ServerCommand) -> None:
        self.command = command
        self.started: list[ServerProcess] = []

    def __call__(
        self,
        mode: str,
        tree: str | Path = "default",
        delay: bool = False,
        extra_args: Sequence[str] = (),
        unprivileged: bool = False,
    ) -> ServerProcess:
        """Start a server in `mode` on a fresh copy of `tree`; return it once it listens."""
        options = {"delay": delay, "extra_args": extra_args, "unprivileged": unprivileged}
        server = launch(self.command, mode, tree, **options)
        self.started.append(server)
        return server

    def close(self, grace: float = 5.0) -> list[str]:
        """Stop, reap and verify every server started; return problem lines."""
        servers, self.started = self.started, []
        return retire(servers, grace)


@dataclass
class Aftermath:
    """What ServerPool.after found once a test's exchange was over.

    `problems`: lines that fail the test (the server died, its tree changed); `finding`: "crash"
    when the request killed the server (one defect, reported by the test whose request caused it),
    "tree-changed" when it wrote into the served folder; `exit_status` and `stderr_tail` of a
    server that died.
    """

    problems: list[str]
    finding: str | None = None
    exit_status: int | None = None
    stderr_tail: str = ""


class ServerPool:
    """Long-lived servers for table cases: one per (mode, tree), replaced when they fail.

    Every case is judged on its own: a server that died, gave no response in time, refused or
    changed its tree is replaced before the next case, never given up on. A server that hung once
    gets HUNG_HEAD_TIMEOUT s for each later response head (the body is still read by its
    Content-Length within the full timeout), so a hanging server costs each case seconds, and one
    that answers is never hurt; one that left MAX_UNCLOSED responses in a row unclosed gets a
    short close_wait (leaving it open is one finding of its own, not a failure of every case).
    """

    MAX_START_FAILURES, MAX_UNCLOSED, SHORT_CLOSE_WAIT = 2, 5, 0.1
    HUNG_HEAD_TIMEOUT = 2.0
    DEATH_WAIT = 0.05  # after a reply without a response, time for a crashing server to exit

    def __init__(self, command: ServerCommand) -> None:
        self.command = command
        self.live: dict[tuple[str, str], ServerProcess] = {}
        self.start_failures: dict[tuple[str, str], list[str]] = {}
        self.hung: set[tuple[str, str]] = set()
        self.unclosed: dict[tuple[str, str], int] = {}
        self.problems: list[str] = []
        self.notes: list[str] = []

    def __call__(self, mode: str, tree: str = "default") -> ServerProcess:
        """Return the live server for (mode, tree), starting one if needed.

        A server found dead (it died after the last test's checks) is replaced, its death kept in
        `notes`. Raises: ServerError if it cannot start.
        """
        key = (mode, tree)
        server = self.live.get(key)
        if server is not None and server.exit_status() is not None:
            self.notes.append(f"replaced a server found dead: {server.death_report()}")
            self.discard(key)
            server = None
        return server or self._start(key)

    def take_notes(self) -> list[str]:
        """Return (and forget) the notes on servers found dead and replaced since the last call."""
        notes, self.notes = self.notes, []
        return notes

    def _start(self, key: tuple[str, str]) -> ServerProcess:
        """Start the server for `key`, remembering failures so a broken server fails fast."""
        failures = self.start_failures.setdefault(key, [])
        if len(failures) >= self.MAX_START_FAILURES:
            raise ServerError(f"not restarted after {len(failures)} failed starts:\n{failures[-1]}")
        try:
            self.live[key] = launch(self.command, *key, table_case=True)
        except ServerError as exc:
            failures.append(str(exc))
            raise
        return self.live[key]

    @staticmethod
    def _key(server: ServerProcess) -> tuple[str, str]:
        """Return the (mode, tree) a pooled server serves."""
        return server.mode, server.tree.kind if server.tree else ""

    def close_wait(self, server: ServerProcess) -> float:
        """Return how long a client should wait for this server to close after a response."""
        short = self.unclosed.get(self._key(server), 0) >= self.MAX_UNCLOSED
        return self.SHORT_CLOSE_WAIT if short else 1.0

    def head_timeout(self, server: ServerProcess) -> float | None:
        """Return the wait for a response head: short once this server's (mode, tree) hung."""
        return self.HUNG_HEAD_TIMEOUT if self._key(server) in self.hung else None

    def after(self, server: ServerProcess, reply: Reply) -> Aftermath:
        """Check the server once a test got `reply`; replace it if it died, hung or changed.

        Returns: the Aftermath (a death is a problem of this test, its finding "crash").
        """
        key = self._key(server)
        unclosed = reply.outcome == "response" and not reply.closed_by_server
        self.unclosed[key] = self.unclosed.get(key, 0) + 1 if unclosed else 0
        if reply.outcome != "response":
            server.wait_exit(self.DEATH_WAIT)
        status = server.exit_status()
        if status is not None:
            found = Aftermath([server.death_report()], "crash", status, server.stderr_tail())
            self.discard(key)
            return found
        if reply.outcome == "timeout":
            self.hung.add(key)
        changes = server.tree.quick_changes() if server.tree else []
        if changes or reply.outcome in ("timeout", "refused"):
            self.discard(key, verify=not changes)
        if changes:  # a file written into the folder: the security rule's finding
            return Aftermath(
                [f"the served tree changed: {'; '.join(changes[:10])}"], "tree-changed"
            )
        return Aftermath([])

    def discard(self, key: tuple[str, str], verify: bool = True) -> None:
        """Stop and forget the server for `key`, keeping tree problems for close() if `verify`."""
        server = self.live.pop(key, None)
        if server is not None:
            problems = retire([server], grace=2.0)
            self.problems += problems if verify else []

    def close(self) -> list[str]:
        """Stop every server (in parallel), verify their trees; return all problems seen."""
        servers, self.live = list(self.live.values()), {}
        return self.problems + retire(servers)
