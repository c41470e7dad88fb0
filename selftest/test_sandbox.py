"""The sandbox holds servers that misbehave towards the machine; the harness knows its own server.

Strategy: the servers in selftest/sandbox/ each do one thing a real submission did (write
outside its folder, fork children that escape and keep listening, hang); the harness starts them
as the suite would and these tests look at what they could do and what was left. The readiness
tests hold a port themselves, playing "another program", and start servers that collide with it.
The tests that need bwrap (and root, for the uid) are skipped where it cannot run, saying why.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from harness import sandbox
from harness import server as harness_server
from harness.client import exchange
from harness.server import ServerCommand, ServerError, ServerFactory

HERE = Path(__file__).resolve().parent
SERVERS = HERE / "sandbox"
BWRAP = sandbox.choose("auto").kind == "bwrap" and os.geteuid() == 0
needs_bwrap = pytest.mark.skipif(
    not BWRAP, reason=f"needs root and bwrap: {sandbox.bwrap_problem() or 'not root'}"
)
ESCAPEES = 3  # forks_listening_children.py: per request
IGNORES_P = """\
import socket, sys, time
listener = socket.create_server(("127.0.0.1", {port}))
while True:
    time.sleep(60)
"""


@pytest.fixture
def factory(request: pytest.FixtureRequest) -> Iterator[ServerFactory]:
    """A ServerFactory for the sandbox selftest server named by the test's parameter."""
    made = ServerFactory(ServerCommand(SERVERS / request.param))
    yield made
    made.close(grace=2.0)


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    """Poll `condition` until it holds or `timeout` s pass; return whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@needs_bwrap
@pytest.mark.parametrize("factory", ["writes_outside_folder.py"], indirect=True)
def test_writes_outside_the_folder_fail_and_are_reported(factory: ServerFactory) -> None:
    server = factory("thread")
    assert wait_for(lambda: server.stderr_text().count("could not save") == 2), server.stderr_text()
    assert "Read-only file system" in server.stderr_text()
    assert not (server.tree.base / "escaped.txt").exists()
    assert not (server.tree.base.parent / "escaped.txt").exists()
    problems = factory.close(grace=2.0)
    assert any("tried to write outside its folder (refused)" in line for line in problems), problems


@needs_bwrap
@pytest.mark.parametrize("factory", ["forks_listening_children.py"], indirect=True)
def test_server_runs_as_its_uid_from_a_copy_with_limits_escapees_swept(
    factory: ServerFactory,
) -> None:
    server = factory("thread")
    process = psutil.Process(server.pid)
    assert process.uids().real == sandbox.current().uid != 0
    assert Path(process.cwd()) == server.tree.workdir
    assert process.cmdline()[1] == str(server.work / "forks_listening_children.py")
    limits = Path(f"/proc/{server.pid}/limits").read_text()
    assert f"Max processes             {sandbox.Limits().processes}" in limits, limits
    assert f"Max open files            {sandbox.Limits().open_files}" in limits, limits
    assert "--unshare-ipc" in server.popen.args and server.pid != server.popen.pid
    assert exchange(server.port, b"GET / HTTP/1.0\r\n\r\n", host=server.host).status == 200
    factory.close(grace=2.0)
    assert sandbox.kill_uid(sandbox.current().uid) >= ESCAPEES
    assert sandbox.kill_uid(sandbox.current().uid) == 0


@pytest.mark.parametrize("factory", ["hangs_on_every_request.py"], indirect=True)
def test_another_programs_listener_on_the_port_is_not_the_server(
    factory: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        real = harness_server.free_port
        monkeypatch.setattr(harness_server, "free_port", lambda: next(ports, None) or real())
        server = factory("thread")
        assert server.port != taken and server.exit_status() is None
        assert "in use" in _first_log(server.logs, taken)


def _first_log(logs: Path, port: int) -> str:
    """Return the stderr the first (port-colliding) attempt left."""
    return (logs / f"stderr-{port}.log").read_text(errors="replace")


@pytest.mark.parametrize("held", [False, True], ids=["port-free", "port-held-by-another"])
def test_a_server_ignoring_p_is_reported_once_as_such(tmp_path: Path, held: bool) -> None:
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        fixed = squatter.getsockname()[1]
        if not held:
            squatter.close()
        script = tmp_path / "http_server.py"
        script.write_text(IGNORES_P.format(port=fixed))
        factory = ServerFactory(ServerCommand(script, sys.executable))
        with pytest.raises(ServerError) as failure:
            factory("default")
        factory.close(grace=1.0)
    message = str(failure.value)
    assert "every port tried" not in message
    expected = "says the address is in use" if held else f"listens on port {fixed}, not on the"
    assert expected in message and message.count("not on the port given") <= 1, message


@pytest.mark.heavy
@needs_bwrap
def test_no_process_of_a_submission_outlives_its_grading(tmp_path: Path) -> None:
    sys.path.insert(0, str(HERE.parent / "tools"))
    from grading import GradeOptions, grade_submission

    options = GradeOptions(
        modes=("thread",), tier="required", workers=0, pytest_args=("-k", "smoke-get-page")
    )
    card = grade_submission(SERVERS / "forks_listening_children.py", options, "forks")
    assert card.status == "graded", card.error
    assert any("still running after its run" in note for note in card.notes), card.notes
    left = [
        process
        for process in psutil.process_iter(["cmdline"])
        if "forks_listening_children.py" in " ".join(process.info["cmdline"] or [])
    ]
    assert not left


@pytest.mark.heavy
@needs_bwrap
def test_a_refused_write_is_in_the_scorecard(tmp_path: Path) -> None:
    sys.path.insert(0, str(HERE.parent / "tools"))
    from grading import GradeOptions, grade_submission

    options = GradeOptions(
        modes=("thread",), tier="required", workers=0, pytest_args=("-k", "smoke-get-page")
    )
    card = grade_submission(SERVERS / "writes_outside_folder.py", options, "writes")
    text = json.dumps(dataclasses.asdict(card))
    assert "tried to write outside its folder (refused)" in text, text[:2000]


def test_unresponsive_modes_skip_table_cases_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(harness_server.UNRESPONSIVE_ENV, "thread")
    command = ServerCommand(SERVERS / "hangs_on_every_request.py")
    with pytest.raises(ServerError, match="hangs on every request"):
        harness_server.launch(command, "thread", table_case=True)
    server = harness_server.launch(command, "thread")
    assert server.exit_status() is None
    harness_server.retire([server], grace=1.0)


def test_a_uid_with_processes_is_not_claimed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A uid running processes is skipped even when its lock file is free: a suite in a chroot
    or container keeps its locks in another /tmp, and sharing its uid would let one grader's
    sweep kill the other's servers (and share one process limit)."""
    first = sandbox.UID_RANGE.start
    monkeypatch.setattr(sandbox.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(sandbox, "processes_of", lambda uid: [object()] if uid == first else [])
    uid = sandbox.claim_uid()
    try:
        assert uid == first + 1
    finally:
        sandbox.release_uid(uid)


def test_without_bwrap_the_reference_package_is_readable_by_the_sandbox_uid(
    tmp_path: Path,
) -> None:
    """With limits only (no bwrap: a chroot, no user namespaces) nothing is bind-mounted, so the
    httpd/ the selftest servers import must be readable by any uid from / down (a checkout in
    root's 0700 home is not)."""
    box = sandbox.Sandbox("limits", uid=sandbox.UID_RANGE.start)
    repo = Path(sandbox.sandbox_environment({}, tmp_path, box)["HTTPD_REPO"])
    package = repo / "httpd"
    assert (package / "__init__.py").is_file()
    for folder in [*reversed(package.parents), package]:
        assert folder.stat().st_mode & 0o005 == 0o005, f"{folder} is closed to other users"
    for module in package.glob("*.py"):
        assert module.stat().st_mode & 0o004, f"{module} is unreadable to other users"
