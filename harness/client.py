"""Raw-socket HTTP exchanges for black-box tests of an HTTP/1.0 server."""

# Strategy: one TCP connection per exchange. The request goes out in pieces chosen by a
# variant (whole, bytewise, first-byte, split-crlf) or given as explicit chunks; the response is
# read by its Content-Length under one overall deadline, never only "until close". Every way an
# exchange can go wrong (refused, reset, timeout, malformed head, wrong length) ends in a Reply
# that says so, never in an exception, so a test can report exactly what the server did.

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

# A mode the grader's pre-flight found answering none of its plain requests (see
# harness.server.unresponsive_modes) would make every test wait out its full timeouts, a minute
# or two each, for verdicts known in advance: every wait for a reply from a server in such a mode
# is cut to UNRESPONSIVE_PATIENCE seconds. Tests still run (some pass without any reply).
UNRESPONSIVE_PATIENCE = 5.0
_UNRESPONSIVE_PORTS: set[int] = set()


def mark_port(port: int, unresponsive: bool) -> None:
    """Record whether the server now started on `port` is in a mode found answering nothing."""
    if unresponsive:
        _UNRESPONSIVE_PORTS.add(port)
    else:
        _UNRESPONSIVE_PORTS.discard(port)


def is_unresponsive(port: int) -> bool:
    """Say whether the server on `port` is in a mode found answering nothing (see mark_port)."""
    return port in _UNRESPONSIVE_PORTS


def patience(port: int, timeout: float) -> float:
    """Return how long to wait for the server on `port`: `timeout`, cut to UNRESPONSIVE_PATIENCE
    for a server in a mode found answering nothing (see mark_port)."""
    return min(timeout, UNRESPONSIVE_PATIENCE) if is_unresponsive(port) else timeout


VARIANTS = ("whole", "bytewise", "first-byte", "split-crlf")
OUTCOMES = ("response", "closed-without-response", "reset", "timeout", "malformed", "refused")
HEAD_LIMIT = 64 * 1024
RECV_SIZE = 1 << 20
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_STATUS_LINE = re.compile(rb"(HTTP/(\d)\.(\d)) (\d{3})(?: (.*))?")
_Sent = tuple[int, str]
_HEADER_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*")


@dataclass
class Reply:
    """What came back from one exchange; `outcome` is one of OUTCOMES."""

    outcome: str
    status: int | None = None
    reason: str = ""
    version: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    head: bytes = b""
    body_received: int = 0
    content_length: int | None = None
    closed_by_server: bool = False
    reset: bool = False
    extra_bytes: int = 0
    bare_lf: bool = False
    problems: list[str] = field(default_factory=list)
    error: str = ""
    sent: int = 0
    elapsed: float = 0.0
    head_only: bool = False

    def header(self, name: str) -> str | None:
        """Return the first value of header `name` (case-insensitive), or None."""
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        """Return every value of header `name` (case-insensitive), in order."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def describe(self, max_body: int = 200) -> str:
        """Return a multi-line human summary: outcome, head lines and the start of the body."""
        closing = "closed by server" if self.closed_by_server else "not closed by server"
        lines = [f"outcome: {self.outcome} ({closing}, {self.elapsed:.3f} s)"]
        if self.error:
            lines.append(f"error: {self.error}")
        lines += [f"problem: {problem}" for problem in self.problems]
        if self.head:
            head_text = self.head.decode("latin-1").rstrip("\r\n")
            lines += ["  " + repr(line.removesuffix("\r"))[1:-1] for line in head_text.split("\n")]
        if self.outcome == "response":
            lines.append(f"body ({self.body_received} bytes): {self.body[:max_body]!r}")
            if self.extra_bytes:
                lines.append(f"extra bytes after Content-Length: {self.extra_bytes}")
        return "\n".join(lines)


def split_request(request: bytes, variant: str) -> Iterator[bytes]:
    """Yield the pieces of `request` to send one `send` each, as the variant prescribes."""
    if variant == "whole":
        yield request
    elif variant == "bytewise":
        yield from (request[i : i + 1] for i in range(len(request)))
    elif variant in ("first-byte", "split-crlf"):
        cut = 1 if variant == "first-byte" else crlf_split_point(request)
        yield from (piece for piece in (request[:cut], request[cut:]) if piece)
    else:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")


def crlf_split_point(request: bytes) -> int:
    """Return where split-crlf cuts: inside the head's CRLFCRLF, else inside the last line end."""
    end = request.find(b"\r\n\r\n")
    if end >= 0:
        return end + 2
    last = request.rfind(b"\r\n")
    if last >= 0:
        return last + 1
    last = request.rfind(b"\n")
    return last if last >= 0 else len(request) // 2


def exchange(
    port: int,
    request: bytes,
    variant: str = "whole",
    chunks: Sequence[bytes] | None = None,
    pause: float = 0.05,
    timeout: float = 5.0,
    *,
    host: str = "127.0.0.1",
    close_wait: float = 1.0,
    body_limit: int | None = None,
    head_timeout: float | None = None,
) -> Reply:
    """Send one request and read one response.

    Args: `request` is sent per `variant` (or `chunks`, one send each, replace it), with `pause`
    seconds between pieces (none for bytewise). `timeout` bounds connecting, sending and reading
    the response; then up to `close_wait` seconds are spent waiting for the server to close.
    `body_limit` caps how many body bytes are kept (all are counted in `body_received`).
    `head_timeout` (at most `timeout`) bounds the wait for the response head alone. The
    response to a HEAD request ends with its head (RFC 9112 6.3): any byte after it is extra.
    Returns: a Reply; never raises for anything the server does.
    """
    started, timeout = time.monotonic(), patience(port, timeout)
    pieces = chunks if chunks is not None else split_request(request, variant)
    gap = 0.0 if variant == "bytewise" and chunks is None else pause
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        return Reply("refused", error=f"cannot connect to {host}:{port}: {exc}")
    with sock:
        if variant == "bytewise":
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sent, send_error = _send(sock, pieces, gap)
        head_only = (request if chunks is None else b"".join(chunks)).startswith(b"HEAD ")
        reader = _Reader(sock, timeout, body_limit, head_timeout)
        reply = reader.read(close_wait, head_only)
    reply.sent = sent
    if send_error and reply.outcome != "response":
        reply.error = f"{send_error}; {reply.error}" if reply.error else send_error
    reply.elapsed = time.monotonic() - started
    return reply


def _send(sock: socket.socket, pieces: Iterator[bytes] | Sequence[bytes], gap: float) -> _Sent:
    """Send each piece with `gap` seconds between them; return (bytes sent, error text)."""
    sent = 0
    for index, piece in enumerate(pieces):
        if index and gap:
            time.sleep(gap)
        try:
            sock.sendall(piece)
        except TimeoutError:
            return sent, f"send timed out after {sent} request bytes"
        except OSError as exc:
            return sent, f"send failed after {sent} request bytes: {exc.strerror or exc}"
        sent += len(piece)
    return sent, ""


class _Reader:
    """Reads one response from a socket under a deadline and builds the Reply."""

    def __init__(
        self,
        sock: socket.socket,
        timeout: float,
        body_limit: int | None,
        head_timeout: float | None = None,
    ) -> None:
        self.sock, self.body_limit = sock, body_limit
        self.timeout = min(timeout, head_timeout) if head_timeout is not None else timeout
        self.deadline = time.monotonic() + timeout
        self.head_deadline = time.monotonic() + self.timeout
        self.received = 0
        self.state = "open"  # open | eof | reset | timeout

    def recv(self, deadline: float) -> bytes:
        """Return the next bytes, or b"" and set `state` on close, reset or deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            self.state = "timeout"
            return b""
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(RECV_SIZE)
        except TimeoutError:
            self.state = "timeout"
            return b""
        except OSError:
            self.state = "reset"
            return b""
        self.received += len(data)
        if not data:
            self.state = "eof"
        return data

    def read(self, close_wait: float, head_only: bool = False) -> Reply:
        """Read head, body (none for a HEAD request) and the server's close; return the Reply."""
        buffer, end = self._read_head()
        if end is None:
            return self._no_head(buffer)
        reply = parse_head(buffer[:end])
        if reply.outcome != "response":
            reply.error = reply.error or "unparseable response head"
            return reply
        reply.head_only = head_only
        if head_only:
            reply.extra_bytes = len(buffer) - end
        else:
            self._read_body(reply, buffer[end:])
        self._await_close(reply, close_wait)
        return reply

    def _read_head(self) -> tuple[bytes, int | None]:
        """Read until the end of the head; return (bytes so far, end of head or None)."""
        buffer, scanned = bytearray(), 0
        while self.state == "open" and len(buffer) <= HEAD_LIMIT:
            match = _HEAD_END.search(buffer, max(0, scanned - 3))
            if match:
                return bytes(buffer), match.end()
            scanned = len(buffer)
            buffer += self.recv(self.head_deadline)
        match = _HEAD_END.search(buffer)
        return bytes(buffer), (match.end() if match else None)

    def _no_head(self, buffer: bytes) -> Reply:
        """Build the Reply for a connection that ended before a complete head."""
        if len(buffer) > HEAD_LIMIT:
            return Reply("malformed", head=buffer[:200], error="response head over 64 KiB")
        ending = {"eof": "closed", "reset": "reset", "timeout": "timed out"}[self.state]
        if buffer:
            error = f"{ending} after {len(buffer)} bytes without a complete head: {buffer[:200]!r}"
            return Reply("malformed", head=buffer, reset=self.state == "reset", error=error)
        if self.state == "eof":
            return Reply(
                "closed-without-response", closed_by_server=True, error="closed, no byte sent"
            )
        if self.state == "reset":
            return Reply("reset", reset=True, error="connection reset after 0 bytes")
        return Reply("timeout", error=f"no response within {self.timeout:g} s")

    def _read_body(self, reply: Reply, start: bytes) -> None:
        """Read the body by Content-Length (or until close without one) into `reply`."""
        wanted = reply.content_length
        kept, data = bytearray(), start
        while True:
            room_left = len(data) if wanted is None else max(0, wanted - reply.body_received)
            take = data if len(data) <= room_left else data[:room_left]
            reply.extra_bytes += len(data) - len(take)
            reply.body_received += len(take)
            room = len(take) if self.body_limit is None else self.body_limit - len(kept)
            kept += take[: max(0, room)]
            if (wanted is not None and reply.body_received >= wanted) or self.state != "open":
                break
            data = self.recv(self.deadline)
        reply.body = bytes(kept)
        self._note_body_end(reply)

    def _note_body_end(self, reply: Reply) -> None:
        """Record why the body ended early, if it did."""
        reply.reset = reply.reset or self.state == "reset"
        reply.closed_by_server = self.state in ("eof", "reset")
        wanted = reply.content_length
        if wanted is None or reply.body_received >= wanted:
            return
        how = {"eof": "server closed", "reset": "connection reset", "timeout": "timed out"}
        got = f"{reply.body_received} of {wanted} body bytes"
        reply.error = f"{how[self.state]} after {got} ({self.received} bytes in all)"

    def _await_close(self, reply: Reply, close_wait: float) -> None:
        """Wait up to `close_wait` s for the server to close; count bytes beyond the body."""
        if self.state != "open":
            return
        limit = min(self.deadline, time.monotonic() + close_wait) if close_wait else 0.0
        while self.state == "open":
            reply.extra_bytes += len(self.recv(limit))
        reply.closed_by_server = self.state in ("eof", "reset")
        reply.reset = reply.reset or self.state == "reset"


def parse_head(head: bytes) -> Reply:
    """Parse a response head (status line, header lines, blank line) strictly into a Reply.

    Returns: a Reply with outcome "response" (header-line problems listed in `problems`) or
    "malformed" when the status line is not `HTTP/x.y NNN reason`.
    """
    lines, bare_lf = _split_lines(head)
    match = _STATUS_LINE.fullmatch(lines[0]) if lines else None
    if not match:
        first = lines[0][:200] if lines else b""
        return Reply("malformed", head=head, bare_lf=bare_lf, error=f"bad status line {first!r}")
    reply = Reply("response", head=head, bare_lf=bare_lf, status=int(match.group(4)))
    reply.version = match.group(1).decode("ascii")
    reply.reason = (match.group(5) or b"").decode("latin-1")
    for line in lines[1:]:
        _add_header(reply, line)
    reply.content_length = _content_length(reply)
    return reply


def _split_lines(head: bytes) -> tuple[list[bytes], bool]:
    """Split a head (with its terminator) into lines; also say whether any line end is bare LF."""
    text = head[: _HEAD_END.search(head).start()] if _HEAD_END.search(head) else head
    terminator = head[len(text) :]
    lines = text.split(b"\n")
    bare_lf = terminator not in (b"\r\n\r\n", b"") or any(
        not line.endswith(b"\r") for line in lines[:-1]
    )
    return [line.removesuffix(b"\r") for line in lines], bare_lf


def _add_header(reply: Reply, line: bytes) -> None:
    """Add one header line to `reply`, or record why it is malformed."""
    match = _HEADER_LINE.fullmatch(line)
    if not match or b"\r" in line:
        reply.problems.append(f"malformed header line {line[:200]!r}")
        return
    reply.headers.append((match.group(1).decode("ascii"), match.group(2).decode("latin-1")))


def _content_length(reply: Reply) -> int | None:
    """Return the response's Content-Length, recording a problem when it is invalid."""
    values = {value for value in reply.header_values("Content-Length")}
    if not values:
        return None
    if len(values) == 1 and next(iter(values)).isdigit() and next(iter(values)).isascii():
        return int(next(iter(values)))
    reply.problems.append(f"invalid Content-Length {sorted(values)}")
    return None
