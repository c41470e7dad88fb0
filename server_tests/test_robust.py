"""Our server under hostile conditions (issue 10): each test is one attack that once hurt it.

Strategy: every test starts its own server through `server_factory`, does one thing a hostile
client or a changing folder does (a file shrinking mid-download, stray bytes after the head, a
process limit, a trap 404.html, a second Ctrl-C, a cut head, a HEAD that fails, a dotfile) and
checks that the server answered, ended the connection and kept serving. Waits are on events
(bytes, end-of-file, process exit) under generous deadlines, never on sleeps a loaded machine
can outrun.
"""

from __future__ import annotations

import ast
import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from harness.client import exchange
from harness.fixtures import SECRET_MARKER, SPARSE_NAME, SPARSE_SIZE
from harness.server import ServerFactory, ServerProcess

REPO = Path(__file__).resolve().parent.parent
EVENT_LOOPS = ["select", "async"]
BLOCKING = ["single", "thread", "thread-pool", "process", "process-pool"]
DEADLINE = 20.0
BIG_SIZE = 8 * 1024 * 1024


def read_to_eof(sock: socket.socket, deadline: float = DEADLINE) -> tuple[bytes, str]:
    """Read until the server closes; return the bytes and how it ended (eof, reset, timeout)."""
    received = bytearray()
    end = time.monotonic() + deadline
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return bytes(received), "reset"
        except TimeoutError:
            break
        if not data:
            return bytes(received), "eof"
        received += data
    return bytes(received), "timeout"


def split_reply(raw: bytes) -> tuple[bytes, bytes]:
    """Split a raw reply into its head (without the empty line) and what followed it."""
    head, _, body = raw.partition(b"\r\n\r\n")
    return head, body


def content_length(head: bytes) -> int:
    """Return the Content-Length of a raw head (-1 when there is none)."""
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return -1


def wait_for(condition: callable, deadline: float = DEADLINE) -> bool:
    """Poll `condition` every 50 ms until it holds or `deadline` seconds pass; return it."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def connect(server: ServerProcess, receive_buffer: int | None = None) -> socket.socket:
    """Open a connection to `server`, with a small receive buffer when asked."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(DEADLINE)
    sock.connect((server.host, server.port))
    return sock


@pytest.fixture
def big_tree(tmp_path: Path) -> Path:
    """A folder holding an 8 MB file of varied bytes, big.bin, and an index.html."""
    (tmp_path / "index.html").write_bytes(b"<!DOCTYPE html><title>i</title>\n")
    (tmp_path / "big.bin").write_bytes(bytes(range(256)) * (BIG_SIZE // 256))
    return tmp_path


def test_shrinking_file_ends_the_connection(server_factory: ServerFactory, mode: str) -> None:
    """Item 2: a file truncated while it is sent ends the connection, logged once; no spin."""
    server = server_factory(mode)
    sparse = server.folder / SPARSE_NAME
    times = sparse.stat()
    with connect(server, receive_buffer=64 * 1024) as sock:
        sock.sendall(f"GET /{SPARSE_NAME} HTTP/1.0\r\n\r\n".encode())
        first = sock.recv(4096)
        assert first.startswith(b"HTTP/1.0 200"), first[:100]
        os.truncate(sparse, 0)
        try:
            received, ending = read_to_eof(sock)
        finally:
            os.truncate(sparse, SPARSE_SIZE)
            os.utime(sparse, ns=(times.st_atime_ns, times.st_mtime_ns))
    assert ending in ("eof", "reset"), f"connection still open {DEADLINE:g} s after the truncation"
    assert len(first) + len(received) < SPARSE_SIZE
    assert wait_for(lambda: "shrank" in server.stderr_text()), server.stderr_tail()
    server.assert_alive()
    assert server.stderr_text().count("shrank") == 1, server.stderr_tail()
    assert exchange(server.port, b"GET /index.html HTTP/1.0\r\n\r\n").status == 200


@pytest.mark.parametrize("mode", EVENT_LOOPS)
def test_stray_bytes_after_the_head_do_not_reset(
    server_factory: ServerFactory, mode: str, big_tree: Path
) -> None:
    """Item 5: bytes sent after a complete head must not turn the close into a reset."""
    server = server_factory(mode, tree=big_tree)
    for attempt in range(3):
        with connect(server, receive_buffer=64 * 1024) as sock:
            sock.sendall(b"GET /big.bin HTTP/1.0\r\n\r\n")
            time.sleep(0.05)
            sock.sendall(b"\r\n")
            raw, ending = read_to_eof(sock)
        head, body = split_reply(raw)
        assert head.startswith(b"HTTP/1.0 200"), head[:100]
        assert (ending, len(body)) == ("eof", BIG_SIZE), f"attempt {attempt + 1}"


CGROUP_V1_PIDS = Path("/sys/fs/cgroup/pids")
CGROUP_V2 = Path("/sys/fs/cgroup")


@contextlib.contextmanager
def no_new_tasks(server: ServerProcess) -> Iterator[Callable[[], None]]:
    """Keep the server from starting any thread or process; yield the function that lifts it.

    Not root: the server's soft RLIMIT_NPROC drops to 1 (the user already runs more tasks).
    Root is exempt from that limit, so the server moves into a fresh pids cgroup (v1, or v2
    when the root cgroup delegates pids) allowing no more tasks than it has. Either way thread
    and fork fail with EAGAIN.
    """
    if os.geteuid() != 0:
        process = psutil.Process(server.pid)
        limits = process.rlimit(psutil.RLIMIT_NPROC)
        process.rlimit(psutil.RLIMIT_NPROC, (1, limits[1]))
        try:
            yield lambda: process.rlimit(psutil.RLIMIT_NPROC, limits)
        finally:
            process.rlimit(psutil.RLIMIT_NPROC, limits)
        return
    parent = pids_cgroup_parent()
    group = parent / f"http-suite-{os.getpid()}-{server.port}"
    group.mkdir()
    try:
        (group / "cgroup.procs").write_text(str(server.pid))
        (group / "pids.max").write_text((group / "pids.current").read_text())
        yield lambda: (group / "pids.max").write_text("max")
    finally:
        (group / "pids.max").write_text("max")
        wait_for(lambda: moved_out(group, parent))
        group.rmdir()


def moved_out(group: Path, parent: Path) -> bool:
    """Move every task of cgroup `group` to `parent`; True once none is left (an exited child
    stays listed until its parent reaps it)."""
    for pid in (group / "cgroup.procs").read_text().split():
        with contextlib.suppress(ProcessLookupError):
            (parent / "cgroup.procs").write_text(pid)
    return not (group / "cgroup.procs").read_text().split()


def pids_cgroup_parent() -> Path:
    """Return the cgroup to create a pids-limited child in (skip the test when there is none)."""
    if (CGROUP_V1_PIDS / "cgroup.procs").exists():
        return CGROUP_V1_PIDS
    control = CGROUP_V2 / "cgroup.subtree_control"
    if control.exists() and "pids" in control.read_text().split():
        return CGROUP_V2
    pytest.skip("root, and no pids cgroup to limit the server with")


def assert_refused_and_logged_once(server: ServerProcess, replies: list) -> None:
    """Every reply is a 503, and the server logged the streak of refusals in one line."""
    assert {reply.status for reply in replies} == {503}, [r.describe() for r in replies]
    assert server.stderr_text().count("answering 503") == 1, server.stderr_tail()


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_out_of_threads_or_processes_answers_503(server_factory: ServerFactory, mode: str) -> None:
    """Item 6: when no thread or process can be started, answer 503, log once, keep serving."""
    server = server_factory(mode)
    request = b"GET /index.html HTTP/1.0\r\n\r\n"
    assert exchange(server.port, request).status == 200
    assert wait_for(lambda: len(server.processes()) == 1), "the first child did not exit"
    baseline = psutil.Process(server.pid).num_fds()
    with no_new_tasks(server) as lift:
        replies = [exchange(server.port, request) for _ in range(5)]
        server.assert_alive()
        lift()
        assert exchange(server.port, request).status == 200
    assert_refused_and_logged_once(server, replies)
    assert wait_for(
        lambda: psutil.Process(server.pid).num_fds() == baseline
    ), f"{psutil.Process(server.pid).num_fds()} descriptors open, {baseline} before"


def test_process_pool_without_workers_answers_503_and_restarts_them(
    server_factory: ServerFactory,
) -> None:
    """Item 6 for process-pool: workers that die while no process can start are replaced later;
    meanwhile, with none left, a request is answered 503 and the server keeps serving."""
    server = server_factory("process-pool", extra_args=["--workers", "2"])
    request = b"GET /index.html HTTP/1.0\r\n\r\n"
    assert exchange(server.port, request).status == 200
    baseline = psutil.Process(server.pid).num_fds()
    with no_new_tasks(server) as lift:
        for worker in server.processes()[1:]:
            worker.kill()
        assert wait_for(lambda: len(server.processes()) == 1), server.stderr_tail()
        replies = [exchange(server.port, request) for _ in range(3)]
        server.assert_alive()
        lift()
        assert exchange(server.port, request).status == 200
    assert_refused_and_logged_once(server, replies)
    assert wait_for(lambda: len(server.processes()) == 3), "the pool did not grow back to 2"
    assert wait_for(
        lambda: psutil.Process(server.pid).num_fds() == baseline
    ), f"{psutil.Process(server.pid).num_fds()} descriptors open, {baseline} before"


def trap_tree(tmp_path: Path) -> Path:
    """A folder whose 404.html is a symlink to the secret outside the served folder."""
    (tmp_path / "index.html").write_bytes(b"<!DOCTYPE html><title>i</title>\n")
    (tmp_path / "404.html").symlink_to("../outside/secret.txt")
    return tmp_path


def test_404_page_symlinked_outside_is_not_sent(
    server_factory: ServerFactory, mode: str, tmp_path: Path
) -> None:
    """Item 7: a 404.html leading outside the folder is ignored: the built-in page is sent."""
    server = server_factory(mode, tree=trap_tree(tmp_path))
    reply = exchange(server.port, b"GET /missing.txt HTTP/1.0\r\n\r\n")
    assert reply.status == 404, reply.describe()
    assert SECRET_MARKER not in reply.body


@pytest.fixture
def fifo_404(server_factory: ServerFactory, mode: str) -> Iterator[ServerProcess]:
    """A server whose folder gains a FIFO named 404.html (removed again before the teardown)."""
    server = server_factory(mode, tree="no-404-page")
    fifo = server.folder / "404.html"
    os.mkfifo(fifo)
    try:
        yield server
    finally:
        fifo.unlink()


def test_404_page_fifo_does_not_freeze(fifo_404: ServerProcess) -> None:
    """Item 7: a FIFO named 404.html is not opened for reading: the built-in page is sent."""
    reply = exchange(fifo_404.port, b"GET /missing.txt HTTP/1.0\r\n\r\n", timeout=DEADLINE)
    assert reply.status == 404, reply.describe()
    assert exchange(fifo_404.port, b"GET /index.html HTTP/1.0\r\n\r\n").status == 200


def test_second_ctrl_c_leaves_no_child(server_factory: ServerFactory) -> None:
    """Item 8: a second SIGINT while a process-mode child serves kills that child too.

    The child is kept busy by a download its client never reads (under a long idle timeout),
    so it is still serving whenever the signals come.
    """
    server = server_factory("process", extra_args=["--timeout", "120"])
    sock = connect(server, receive_buffer=4096)
    sock.sendall(f"GET /{SPARSE_NAME} HTTP/1.0\r\n\r\n".encode())
    assert wait_for(lambda: len(server.processes()) > 1), "no child started for the request"
    children = [p for p in server.processes() if p.pid != server.pid]
    server.send_signal(signal.SIGINT)
    assert wait_for(lambda: "shutting down" in server.stderr_text()), server.stderr_tail()
    server.send_signal(signal.SIGINT)
    # bwrap reports an exit status of 130 as it would a death by SIGINT (128 + 2).
    forced = (130, -signal.SIGINT) if server.wrapped else (130,)
    assert server.wait_exit(DEADLINE) in forced, server.stderr_tail()
    sock.close()
    alive = [child.pid for child in children if child.is_running()]
    assert not alive, f"children {alive} still running after the forced exit"


@pytest.mark.parametrize("mode", BLOCKING)
def test_client_closing_mid_head_logs_no_traceback(
    server_factory: ServerFactory, mode: str
) -> None:
    """Item 10: a client that sends half a head and leaves is not an unexpected failure."""
    server = server_factory(mode)
    for _ in range(3):
        with connect(server) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\nHost: x")
    assert exchange(server.port, b"GET /index.html HTTP/1.0\r\n\r\n").status == 200
    assert server.stop() == 0
    assert "Traceback" not in server.stderr_text(), server.stderr_tail()


@pytest.mark.parametrize(
    "request_bytes",
    [b"HEAD / HTTP/2.0\r\n\r\n", b"HEAD / HTTP/1.0\r\nbad header\r\n\r\n"],
    ids=["505", "400"],
)
def test_head_error_has_no_body(
    server_factory: ServerFactory, mode: str, request_bytes: bytes
) -> None:
    """Item 10: an error answering HEAD keeps its Content-Length but carries no content."""
    server = server_factory(mode)
    with connect(server) as sock:
        sock.sendall(request_bytes)
        raw, _ = read_to_eof(sock)
    head, body = split_reply(raw)
    assert head.startswith(b"HTTP/1.0 4") or head.startswith(b"HTTP/1.0 5"), head[:100]
    assert content_length(head) > 0 and body == b"", raw[:300]


def test_unfinished_head_gets_408(server_factory: ServerFactory, mode: str) -> None:
    """Item 10: a head that stops coming is answered 408 when the idle timeout ends it."""
    server = server_factory(mode, extra_args=["--timeout", "1"])
    with connect(server) as sock:
        sock.sendall(b"GET /index.html HTTP/1.0\r\n")
        raw, ending = read_to_eof(sock)
    assert raw.startswith(b"HTTP/1.0 408"), (ending, raw[:100])


def dotfile_tree(tmp_path: Path) -> Path:
    """A folder with a dotfile and a file inside a dot-directory (a checkout's .git)."""
    (tmp_path / "index.html").write_bytes(b"<!DOCTYPE html><title>i</title>\n")
    (tmp_path / ".env").write_bytes(b"SECRET=1\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_bytes(b"[core]\n")
    return tmp_path


@pytest.mark.parametrize("mode", ["thread", "select"])
def test_dotfiles_hidden_unless_asked(
    server_factory: ServerFactory, mode: str, tmp_path: Path
) -> None:
    """Item 10: hidden paths are 404 by default and served with --dotfiles."""
    tree = dotfile_tree(tmp_path)
    hiding = server_factory(mode, tree=tree)
    serving = server_factory(mode, tree=tree, extra_args=["--dotfiles"])
    for target in ("/.env", "/.git/config", "/%2egit/config"):
        request = f"GET {target} HTTP/1.0\r\n\r\n".encode()
        assert exchange(hiding.port, request).status == 404, target
        assert exchange(serving.port, request).status == 200, target
    assert exchange(hiding.port, b"GET /index.html HTTP/1.0\r\n\r\n").status == 200


def test_process_mode_uses_multiprocessing() -> None:
    """Item 11: the lab allows threading.Thread and multiprocessing.Process only: no os.fork."""
    calls = []
    for path in sorted((REPO / "httpd").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("fork", "forkpty")
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ):
                calls.append(f"{path.name}:{node.lineno}")
    assert not calls, f"os.fork used at {calls}"
