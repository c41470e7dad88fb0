"""The lab's command line: its options, its defaults, and its errors.

Strategy: these tests start the server themselves, with the command lines the harness never
uses (no -p, no -f, no -c, a bad option, a missing folder), each in its own session with its
output in files, and stop and reap it at teardown. Readiness is the kernel's list of listening
sockets held by the server's process tree, never a probe connection. The default-port test
needs port 8085 (8084 for a lab-5 server, one without -c; --default-port overrides): when
something else holds it, the test is skipped and says so.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import psutil
import pytest

from concurrency_tests.support import (
    CLIENT_TIMEOUT,
    DELAY,
    ClientGroup,
    fixture_paths,
    samples_until_done,
    settled_sample,
)
from harness.client import exchange, mark_port
from harness.evidence import example, response_words
from harness.fixtures import build_tree, expected_content
from harness.plugin import settings
from harness.server import (
    DEFAULT_MODE,
    ServerCommand,
    ServerFactory,
    ServerProcess,
    discover_modes,
    free_port,
    listening_sockets,
    server_environment,
    unresponsive_modes,
)

HELP_TIMEOUT, EXIT_TIMEOUT, READY_TIMEOUT = 30.0, 10.0, 20.0
LAB_OPTIONS = ("-p", "-v", "-d", "-f")
IN_USE = re.compile(r"in use|EADDRINUSE|Errno 98", re.IGNORECASE)
DEFAULT_MODE_CLIENTS = 3
LAB_DEFAULT_MODE = "thread"  # what a lab-6 server runs without -c
PAGE = b"GET /page.html HTTP/1.0\r\n\r\n"

Launcher = Callable[..., ServerProcess]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Give the default-port test the lab rule of its server: lab 6 (8085) with -c, else lab 5."""
    if "default_port" not in metafunc.fixturenames:
        return
    config = settings(metafunc.config)
    port = config.default_port
    lab6 = discover_modes(config.command) != (DEFAULT_MODE,)
    key = "lab6.default-port" if lab6 else "lab5.default-port"
    metafunc.parametrize(
        "default_port", [pytest.param(port, id=f"port-{port}", marks=pytest.mark.lab(key))]
    )


@pytest.fixture
def launch(server_command: ServerCommand, tmp_path: Path) -> Iterator[Launcher]:
    """Start the server with exactly the given arguments: `launch(args, cwd) -> ServerProcess`.

    Every server started is stopped (SIGINT, then SIGKILL to its group) and reaped at teardown.
    """
    started: list[ServerProcess] = []

    def start(args: Sequence[str], cwd: Path, port: int = 0, folder: Path | None = None):
        logs = tmp_path / f"logs-{len(started)}"
        logs.mkdir()
        argv = [server_command.python, str(server_command.script), *args]
        out_path, err_path = logs / f"stdout-{port}.log", logs / f"stderr-{port}.log"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=cwd,
                env=server_environment(),
                start_new_session=True,
            )
        mark_port(port, LAB_DEFAULT_MODE in unresponsive_modes())
        server = ServerProcess(popen, port, folder or cwd, DEFAULT_MODE, logs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop(signal.SIGINT, timeout=5.0)


def listens_on(server: ServerProcess, port: int) -> bool:
    """Say whether the server's process tree holds a socket listening on `port`."""
    listening = {inode for _, listened, inode in listening_sockets() or [] if listened == port}
    for process in server.processes():
        try:
            fds = Path(f"/proc/{process.pid}/fd").iterdir()
            targets = {str(fd.readlink()) for fd in fds}
        except (OSError, psutil.Error):
            continue
        if any(f"socket:[{inode}]" in targets for inode in listening):
            return True
    return False


def await_port(server: ServerProcess, port: int, timeout: float = READY_TIMEOUT) -> bool:
    """Wait until the server listens on `port`; False if it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    pause = 0.01
    while time.monotonic() < deadline and server.exit_status() is None:
        if listens_on(server, port):
            return True
        time.sleep(pause)
        pause = min(pause * 2, 0.2)
    return False


def run_once(command: ServerCommand, args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run the server with `args` to completion (e.g. -h); exit status and output."""
    return subprocess.run(
        [command.python, str(command.script), *args],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=HELP_TIMEOUT,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env=server_environment(),
    )


def fail_with(request: pytest.FixtureRequest, evidence: dict, message: str) -> None:
    """Attach one evidence example to the test's record and fail with `message`."""
    request.node.user_properties.append(("evidence", [evidence]))
    pytest.fail(message, pytrace=False)


@pytest.mark.lab("lab5.cli")
def test_help_lists_the_lab_options(
    server_command: ServerCommand, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """`-h` exits 0 and lists -p, -v, -d and -f."""
    done = run_once(server_command, ["-h"], tmp_path)
    text = done.stdout + done.stderr
    missing = [flag for flag in LAB_OPTIONS if not re.search(rf"(?<![\w-]){flag}\b", text)]
    if done.returncode == 0 and not missing:
        return
    got = f"exit status {done.returncode}; {text.strip()[:200]}"
    fail_with(
        request,
        example("http_server.py -h", got, "exit status 0 and a usage listing -p -v -d -f"),
        f"lab 5: the CLI has options -p -v -d -f; -h exited {done.returncode}"
        + (f" and does not list {' '.join(missing)}" if missing else ""),
    )


@pytest.mark.lab("lab6.c-flag")
def test_help_offers_the_concurrency_option(
    server_command: ServerCommand, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """`-h` lists -c/--concurrency (lab 6)."""
    done = run_once(server_command, ["-h"], tmp_path)
    text = done.stdout + done.stderr
    if re.search(r"(?<![\w-])-c\b", text) and "--concurrency" in text:
        return
    fail_with(
        request,
        example("http_server.py -h", text.strip()[:200], "-c/--concurrency in the usage"),
        "lab 6: add the -c/--concurrency option; -h does not list it",
    )


@pytest.mark.lab("lab5.cli")
def test_verbose_option_is_accepted(
    mode: str, server_factory: ServerFactory, request: pytest.FixtureRequest
) -> None:
    """With -v the server starts and serves a file."""
    server = server_factory(mode, extra_args=["-v"])
    reply = exchange(server.port, PAGE, host=server.host)
    if reply.status == 200 and reply.body == expected_content("page.html"):
        return
    fail_with(
        request,
        example(PAGE, response_words(reply), "200 with page.html"),
        f"lab 5: -v turns on debugging output and the server still serves; got {reply.outcome}",
    )


@pytest.mark.lab("lab5.class-norms")
@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--no-such-option"], id="unknown-option"),
        pytest.param(["-p", "not-a-port"], id="bad-port"),
    ],
)
def test_bad_argument_exits_nonzero_with_a_message(
    args: list[str],
    server_command: ServerCommand,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    """A bad argument ends the server at once with a non-zero status and a line on stderr."""
    try:
        done = run_once(server_command, args, tmp_path)
    except subprocess.TimeoutExpired:
        fail_with(
            request,
            example(" ".join(args), "still running", "a non-zero exit and a message on stderr"),
            f"lab 5 class norms: `{' '.join(args)}` must be refused, but the server ran on",
        )
    good = done.returncode != 0 and done.stderr.strip() and "Traceback" not in done.stderr
    if good:
        return
    got = f"exit status {done.returncode}; stderr: {done.stderr.strip()[-200:]!r}"
    fail_with(
        request,
        example(" ".join(args), got, "a non-zero exit and a one-line message on stderr"),
        f"lab 5 class norms (correct exit codes, errors on stderr): `{' '.join(args)}`: {got}",
    )


@pytest.mark.lab("lab5.class-norms")
def test_missing_folder_exits_nonzero_with_a_message(
    launch: Launcher, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """`-f` naming a folder that does not exist: a non-zero exit and a message on stderr."""
    port = free_port()
    args = ["-p", str(port), "-f", str(tmp_path / "no-such-folder")]
    server = launch(args, tmp_path, port)
    listening = await_port(server, port, EXIT_TIMEOUT)
    status = server.exit_status() if listening else server.wait_exit(EXIT_TIMEOUT)
    stderr = server.stderr_text()
    if status not in (None, 0) and stderr.strip() and "Traceback" not in stderr:
        return
    got = "it started serving" if listening or status is None else f"exit status {status}"
    fail_with(
        request,
        example(" ".join(args), f"{got}; stderr: {stderr.strip()[-200:]!r}", "exit non-zero"),
        f"lab 5 class norms: a missing folder must end the server with a non-zero status and "
        f"a message on stderr (no traceback); {got}",
    )


@pytest.mark.timeout(120)
def test_default_port(
    default_port: int, launch: Launcher, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Without -p the server listens on the lab's default port (8085; 8084 in lab 5)."""
    if any(port == default_port for _, port, _ in listening_sockets() or []):
        pytest.skip(f"port {default_port} is busy on this machine: cannot check the default")
    tree = build_tree()
    server = launch(["-f", str(tree.root)], tree.workdir, default_port, tree.root)
    try:
        if await_port(server, default_port):
            return
        stderr = server.stderr_text()
        if server.exit_status() is not None and IN_USE.search(stderr):
            pytest.skip(f"port {default_port} was taken meanwhile: cannot check the default")
        other = sorted(
            {port for _, port, _ in listening_sockets() or [] if listens_on(server, port)}
        )
    finally:
        server.stop()
        tree.remove()
    got = f"listens on {other}" if other else f"not listening; stderr: {stderr.strip()[-200:]!r}"
    fail_with(
        request,
        example(f"http_server.py -f {tree.root.name}", got, f"listening on {default_port}"),
        f"the default port must be {default_port}; without -p the server {got}",
    )


@pytest.mark.lab("lab5.default-folder")
def test_default_folder_is_the_working_directory(
    launch: Launcher, request: pytest.FixtureRequest
) -> None:
    """Without -f the server serves the folder it runs in."""
    tree, port = build_tree(), free_port()
    try:
        server = launch(["-p", str(port)], tree.root, port)
        reply = exchange(port, PAGE, host="127.0.0.1") if await_port(server, port) else None
    finally:
        tree.remove()
    if reply is not None and reply.status == 200 and reply.body == expected_content("page.html"):
        return
    got = response_words(reply) if reply else f"did not listen: {server.stderr_tail(3)!r}"
    fail_with(
        request,
        example(PAGE, got, "200 with page.html from the working directory"),
        f"lab 5: the default folder is '.'; run in a folder holding page.html, without -f, "
        f"the server answered: {got}",
    )


@pytest.mark.lab("lab6.c-flag")
def test_default_mode_is_thread(
    server_command: ServerCommand, launch: Launcher, request: pytest.FixtureRequest
) -> None:
    """Without -c, delayed clients are each served by a thread of their own (no child)."""
    if discover_modes(server_command) == (DEFAULT_MODE,):
        pytest.skip("the server has no -c option (a lab-5 server): no default mode to check")
    tree, port = build_tree(), free_port()
    try:
        server = launch(["-p", str(port), "-f", str(tree.root), "-d"], tree.workdir, port)
        assert await_port(server, port), f"the server did not listen: {server.stderr_tail(5)}"
        before = settled_sample(server, lambda sample: (sample.root_threads, sample.children))
        group = ClientGroup(port, fixture_paths(DEFAULT_MODE_CLIENTS)).start()
        group.wait_sent()
        during = samples_until_done(server, group, DEFAULT_MODE_CLIENTS * DELAY + CLIENT_TIMEOUT)
    finally:
        tree.remove()
    peak = max((sample.root_threads for sample in during), default=0)
    forked = [sample.describe() for sample in during if sample.children]
    if (
        peak - before.root_threads >= DEFAULT_MODE_CLIENTS - 1
        and not forked
        and not group.problems()
    ):
        return
    got = f"threads {before.root_threads} before, at most {peak} during; children: {forked[:1]}"
    fail_with(
        request,
        example(PAGE, got, f"a thread per delayed client ({DEFAULT_MODE_CLIENTS} at once)"),
        f"lab 6: without -c the server runs the default mode, thread; {got}",
    )
