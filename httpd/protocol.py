"""Sans-IO HTTP/1.x request parsing.

Strategy: a RequestParser is fed bytes as they arrive, in pieces of any size. It answers None
("need more") until the head (request line and headers, up to the first empty line) is complete,
then returns a frozen Request. Anything wrong raises HttpError carrying the status to answer with,
as early as the bytes already prove it. No sockets, threads or event loops live here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_TARGET = 8190
MAX_LINE = 8190
MAX_HEAD = 64 * 1024
MAX_HEADERS = 100

TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
TOKEN_PREFIX = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]*")
VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")
VISIBLE = re.compile(rb"[\x21-\x7e]+")
FIELD_VALUE_BAD = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
DIGITS = re.compile(r"[0-9]+")
HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(:[0-9]*)?")


class HttpError(Exception):
    """A request the server must refuse; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str) -> None:
        """Create the error.

        Args:
            status: the HTTP status code of the answer (400, 414, 431, 505...).
            detail: a short human explanation, logged and shown in the error page.
        """
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.method = ""  # the method, once the parser knows it: a HEAD gets no content

    def __reduce__(self) -> tuple:
        """Pickle as the call that makes it, plus its attributes (a process-pool worker receives
        it pickled)."""
        return HttpError, (self.status, self.detail), self.__dict__


@dataclass(frozen=True)
class Request:
    """A parsed request head. Header names keep their case; look them up with `header`."""

    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]

    def header_values(self, name: str) -> list[str]:
        """Return every value of header `name` (case-insensitive), in arrival order."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def header(self, name: str) -> str | None:
        """Return the first value of header `name` (case-insensitive), or None."""
        values = self.header_values(name)
        return values[0] if values else None

    @property
    def has_body(self) -> bool:
        """True when the client announced a body (which this server never reads)."""
        length = self.header("Content-Length")
        return self.header("Transfer-Encoding") is not None or (length or "0").strip("0 ") != ""


class RequestParser:
    """Accumulates bytes, line by line, until a complete request head is available."""

    def __init__(self) -> None:
        """Start with nothing received."""
        self._buffer = bytearray()
        self._scanned = 0
        self._request_line: tuple[str, str, str] | None = None
        self._headers: list[tuple[str, str]] = []
        self._skipped_empty_line = False

    @property
    def started(self) -> bool:
        """True once any byte has been fed."""
        return bool(self._buffer)

    def feed(self, data: bytes) -> Request | None:
        """Add `data`; return the Request once the head is complete, else None.

        Raises:
            HttpError: the bytes so far already make an invalid request.
        """
        self._buffer += data
        while (newline := self._buffer.find(b"\n", self._scanned)) >= 0:
            line = bytes(self._buffer[self._scanned : newline]).removesuffix(b"\r")
            self._scanned = newline + 1
            if line or self._request_line:
                if not line:
                    return self._finish()
                self._accept_line(line)
            elif self._skipped_empty_line:
                raise HttpError(400, "empty request line")
            else:
                self._skipped_empty_line = True
        self._check_partial_line(bytes(self._buffer[self._scanned :]))
        return None

    def outcome(self, data: bytes | None) -> Request | HttpError | None:
        """Feed what one receive brought and say where the request stands.

        Args:
            data: the bytes received; b"" when the client closed; None when the read timed out.

        Returns:
            The Request, the HttpError to answer with (408 for a timeout, 400 for a close in the
            middle of the head), or None while more bytes are needed.
        """
        if data is None:
            error = HttpError(408, "timed out waiting for the request")
        elif not data:
            error = HttpError(400, "connection closed mid-request")
        else:
            try:
                return self.feed(data)
            except HttpError as raised:
                error = raised
        error.method = self.method
        return error

    @property
    def method(self) -> str:
        """The first word of the request line, once a space ends it ("" before that)."""
        word, space, _ = bytes(self._buffer).lstrip(b"\r\n").partition(b" ")
        return word.decode("latin-1") if space else ""

    def _accept_line(self, line: bytes) -> None:
        """Validate one complete line of the head as soon as it has arrived."""
        if self._request_line is None:
            self._request_line = parse_request_line(line)
        elif len(self._headers) >= MAX_HEADERS:
            raise HttpError(431, "too many header fields")
        else:
            self._headers.append(parse_header_line(line))
        if self._scanned > MAX_HEAD:
            raise HttpError(431, "request head too large")

    def _finish(self) -> Request:
        """Build the Request from the validated lines and check its framing headers."""
        method, target, version = self._request_line
        request = Request(method, target, version, tuple(self._headers))
        check_framing(request)
        return request

    def _check_partial_line(self, partial: bytes) -> None:
        """Reject the incomplete last line when what has arrived of it is already wrong."""
        if b"\r" in partial[:-1]:
            raise HttpError(400, "bare CR in request head")
        if self._request_line is None:
            self._check_partial_request_line(partial.removesuffix(b"\r"))
        elif len(partial) > MAX_LINE:
            raise HttpError(431, "header line too long")
        if self._scanned + len(partial) > MAX_HEAD:
            raise HttpError(431, "request head too large")

    @staticmethod
    def _check_partial_request_line(partial: bytes) -> None:
        """Reject an incomplete request line whose method or length is already wrong."""
        method = TOKEN_PREFIX.match(partial).group()
        following = partial[len(method) : len(method) + 1]
        if following and (not method or following != b" "):
            raise HttpError(400, "malformed request line")
        if len(partial) > MAX_TARGET + len(method) + len(b" HTTP/1.1\r") + 1:
            raise HttpError(414, "request target too long")


def parse_request_line(line: bytes) -> tuple[str, str, str]:
    """Split `METHOD SP TARGET SP VERSION` strictly and validate each part."""
    parts = line.split(b" ")
    if len(parts) != 3:
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    if not TOKEN.fullmatch(method):
        raise HttpError(400, "malformed method")
    if len(target) > MAX_TARGET:
        raise HttpError(414, "request target too long")
    if not VISIBLE.fullmatch(target):
        raise HttpError(400, "malformed request target")
    matched = VERSION.fullmatch(version)
    if not matched:
        raise HttpError(400, "malformed HTTP version")
    if matched.group(1) != b"1":
        raise HttpError(505, "only HTTP/1.x is supported")
    return method.decode("ascii"), target.decode("ascii"), version.decode("ascii")


def parse_header_line(line: bytes) -> tuple[str, str]:
    """Parse `name: value`; return the name and the value trimmed of SP and HTAB."""
    if len(line) > MAX_LINE:
        raise HttpError(431, "header line too long")
    name, colon, value = line.partition(b":")
    if not colon or not TOKEN.fullmatch(name):
        raise HttpError(400, "malformed header line")
    value = value.strip(b" \t")
    if FIELD_VALUE_BAD.search(value):
        raise HttpError(400, "control character in header value")
    return name.decode("ascii"), value.decode("latin-1")


def check_framing(request: Request) -> None:
    """Apply RFC 9112's rules on Host, Content-Length and Transfer-Encoding."""
    hosts = request.header_values("Host")
    if len(hosts) > 1 or (request.version != "HTTP/1.0" and not hosts):
        raise HttpError(400, "a request needs one Host header (HTTP/1.1), never several")
    if hosts and not HOST.fullmatch(hosts[0]):
        raise HttpError(400, "invalid Host header")
    values = request.header_values("Content-Length")
    lengths = {item.strip() for value in values for item in value.split(",")}
    if len(lengths) > 1 or not all(DIGITS.fullmatch(item) for item in lengths):
        raise HttpError(400, "invalid Content-Length")
    codings = ",".join(request.header_values("Transfer-Encoding"))
    if codings and lengths:
        raise HttpError(400, "both Transfer-Encoding and Content-Length")
    if codings and codings.rsplit(",", 1)[-1].strip().lower() != "chunked":
        raise HttpError(400, "chunked must be the final transfer coding")
