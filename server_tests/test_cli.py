"""What our server says on its command line, and where it listens (issue 12).

Strategy: each test starts our server through `server_factory` with the options in question
(`--bind ::1`, `-v`), talks to it with the harness's raw client, stops it with SIGINT (the
graceful stop joins every thread, so every log line is written before stderr is read), and
reads what it printed: the ready line's URL must open, the lines without -v must read like the
ready line, and -v must tell connections apart and say what each answer was.
"""

from __future__ import annotations

import re
import socket
import urllib.request

import pytest

from harness.client import exchange
from harness.fixtures import root_files
from harness.server import ServerFactory

ALL_MODES = ["thread", "thread-pool", "process", "process-pool", "async", "select", "single"]
PROG = "http_server.py: "
READY = re.compile(r"serving \S+ at (http://(\S+):(\d+)/) \(on (\S+), all interfaces; mode \w+")
PAGE = "page.html"


def has_ipv6_loopback() -> bool:
    """Tell whether this machine can listen on ::1 (IPv6 may be disabled in a container)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def get(port: int, path: str, host: str = "127.0.0.1") -> tuple[int | None, bytes]:
    """Send one GET and return the status and body."""
    request = f"GET /{path} HTTP/1.0\r\nHost: x\r\n\r\n".encode()
    reply = exchange(port, request, host=host, timeout=15.0)
    return reply.status, reply.body


def test_ready_line_names_a_url_that_opens_and_the_address_bound(server_factory: ServerFactory):
    server = server_factory("thread")
    ready = READY.search(server.stderr_text())
    assert ready, f"no ready line with a URL and the bound address:\n{server.stderr_text()}"
    url, host, port, bound = ready.groups()
    assert (host, int(port), bound) == ("127.0.0.1", server.port, f"0.0.0.0:{server.port}")
    with urllib.request.urlopen(url + PAGE, timeout=15) as response:
        assert response.status == 200 and response.read() == root_files()[PAGE]


@pytest.mark.skipif(not has_ipv6_loopback(), reason="this machine has no IPv6 loopback")
@pytest.mark.parametrize("mode", ALL_MODES)
def test_bind_to_ipv6_loopback_serves_in_every_mode(server_factory: ServerFactory, mode: str):
    server = server_factory(mode, extra_args=["--bind", "::1"])
    assert server.host == "::1", f"listens on {server.host}, not ::1"
    assert get(server.port, PAGE, host="::1") == (200, root_files()[PAGE])
    assert f"at http://[::1]:{server.port}/ (on [::1]:{server.port}; mode {mode})" in (
        server.stderr_text()
    )
    assert server.stop() == 0


@pytest.mark.parametrize("mode", ["thread", "async"])
def test_without_v_every_line_reads_like_the_ready_line(server_factory: ServerFactory, mode: str):
    server = server_factory(mode)
    assert get(server.port, PAGE)[0] == 200
    assert server.stop() == 0
    lines = server.stderr_text().splitlines()
    assert len(lines) >= 3, lines  # ready, shutting down, stopped
    assert all(line.startswith(PROG) for line in lines), lines


def test_verbose_names_each_connection_and_says_what_was_answered(server_factory: ServerFactory):
    server = server_factory("thread", extra_args=["-v"])
    for _ in range(4):  # one after the other, so the kernel hands out the same fd again
        assert get(server.port, PAGE)[0] == 200
    assert get(server.port, "no-such-file.html")[0] == 404
    assert server.stop() == 0
    answered = re.findall(
        r"\[pid \d+ (\S+)\] \[fd \d+ [^]]+\] answered (\d+)(.*)", server.stderr_text()
    )
    assert len(answered) == 5, server.stderr_text()
    threads = [thread for thread, _, _ in answered]
    assert len(set(threads)) == 5, f"thread names repeat: {threads}"
    size = len(root_files()[PAGE])
    for _, status, rest in answered[:4]:
        assert status == "200" and re.fullmatch(rf" /{PAGE}, {size} bytes in \d+\.\d ms", rest)
    assert re.fullmatch(r", \d+ bytes in \d+\.\d ms", answered[4][2])
