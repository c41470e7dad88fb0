"""Sans-IO response planning: from a Request (or an HttpError) and a root folder to a Response.

Strategy: `plan_response` maps the request target to a file strictly inside the root (decode once,
remove dot-segments, realpath, containment check, hidden names refused unless asked for), opens
it, and returns a Response whose head is ready to send and whose body is either small bytes or an
open file the caller streams. Every error becomes an HTML page through one function,
`error_response`; the folder's own 404.html passes the same containment checks as any file.
A response to HEAD keeps its head and drops its content. Nothing here touches a socket.
"""

from __future__ import annotations

import functools
import html
import logging
import os
import re
import stat
import time
from dataclasses import dataclass
from email.utils import formatdate
from typing import BinaryIO
from urllib.parse import quote, unquote_to_bytes

from httpd.protocol import HttpError, Request

LOG = logging.getLogger("http_server")
SERVER_NAME = "http_server.py"
INLINE_LIMIT = 64 * 1024
ERROR_PAGE_LIMIT = 1024 * 1024
REASONS = {
    200: "OK",
    301: "Moved Permanently",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".xml": "application/xml",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".ico": "image/x-icon",
    ".pdf": "application/pdf",
    ".wasm": "application/wasm",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".mp4": "video/mp4",
    ".mp3": "audio/mpeg",
    ".zip": "application/zip",
    ".gz": "application/gzip",
}
DEFAULT_TYPE = "application/octet-stream"
HTML_TYPE = CONTENT_TYPES[".html"]
BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
ABSOLUTE_FORM = re.compile(r"(?i)https?://[^/?#]*")


@dataclass
class Response:
    """A planned response: the head to send, then `body`, then `file` streamed to its end
    (`file_size` bytes promised; `path`, the request path it came from, names it in the log)."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    file: BinaryIO | None = None
    file_size: int = 0
    path: str = ""

    def head(self) -> bytes:
        """Return the status line and headers, ending with the empty line."""
        lines = [f"HTTP/1.0 {self.status} {REASONS[self.status]}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def close(self) -> None:
        """Close the file being streamed, if any."""
        if self.file is not None:
            self.file.close()

    def log_shrunk(self, log: logging.LoggerAdapter, sent: int) -> None:
        """Log that the file ended after `sent` of its promised `file_size` bytes.

        A file that shrinks while it is sent (a log being rotated) breaks the promise of its
        Content-Length; the caller then closes the connection, which tells the client.
        """
        log.warning(
            "%s shrank while being sent: closing after %d of %d bytes",
            self.path,
            sent,
            self.file_size,
        )


def http_date(timestamp: float | None = None) -> str:
    """Format `timestamp` (default: now) as an RFC 9110 IMF-fixdate."""
    return format_second(int(time.time() if timestamp is None else timestamp))


@functools.lru_cache(maxsize=1024)
def format_second(second: int) -> str:
    """Format a whole Unix second as an IMF-fixdate (cached: busy servers repeat seconds)."""
    return formatdate(second, usegmt=True)


def build_response(status: int, content_type: str, length: int, **extra: str) -> Response:
    """Create a Response with the headers every answer carries, plus `extra` ones.

    Args:
        status: the status code.
        content_type: the Content-Type value.
        length: the exact number of body bytes that will follow the head.
        extra: more headers; underscores in names become dashes.
    """
    headers = [
        ("Server", SERVER_NAME),
        ("Date", http_date()),
        ("Content-Type", content_type),
        ("Content-Length", str(length)),
    ]
    headers += [(name.replace("_", "-"), value) for name, value in extra.items()]
    headers.append(("Connection", "close"))
    return Response(status, headers)


def error_response(status: int, root: str, detail: str = "") -> Response:
    """Return the HTML error response for `status` (the folder's 404.html for a 404).

    Args:
        status: an error status present in REASONS.
        root: the served folder, for its 404.html.
        detail: a short explanation shown in the built-in page.
    """
    body = folder_error_page(root) if status == 404 else None
    if body is None:
        title = f"{status} {REASONS[status]}"
        body = (
            f"<!DOCTYPE html>\n<html><head><title>{title}</title></head>\n"
            f"<body><h1>{title}</h1><p>{html.escape(detail)}</p></body></html>\n"
        ).encode()
    extra = {"Allow": "GET"} if status == 405 else {}
    response = build_response(status, HTML_TYPE, len(body), **extra)
    response.body = body
    return response


def folder_error_page(root: str) -> bytes | None:
    """Return the bytes of the root's 404.html, or None when it is missing or unusable.

    It is opened like any served file (non-blocking, its real location inside the root) and
    used only when it is a regular file: a symlink leading outside or a FIFO is ignored.
    """
    try:
        fd = open_inside(root, "/404.html", dotfiles=True)
    except HttpError:
        return None
    with open(fd, "rb") as page:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        body = page.read(ERROR_PAGE_LIMIT + 1)
    return body if len(body) <= ERROR_PAGE_LIMIT else None


def respond(outcome: Request | HttpError, root: str, dotfiles: bool = False) -> Response:
    """Return the Response for a parsed request or a parse error; 500 if planning itself fails.

    A response to HEAD (also an error answering one) keeps its Content-Length but carries no
    content (RFC 9110 section 9.3.2).

    Args:
        outcome: what the parser produced.
        root: the served folder, already resolved with realpath.
        dotfiles: serve paths with a segment starting with "." (hidden: 404 by default).
    """
    if isinstance(outcome, HttpError):
        response = error_response(outcome.status, root, outcome.detail)
    else:
        try:
            response = plan_response(outcome, root, dotfiles)
        except Exception:
            LOG.exception(
                "unexpected failure while answering %s %s", outcome.method, outcome.target
            )
            response = error_response(500, root, "unexpected server error")
    if outcome.method == "HEAD":
        response.body = b""
    return response


def plan_response(request: Request, root: str, dotfiles: bool = False) -> Response:
    """Plan the answer to a well-formed request.

    Args:
        request: the parsed request.
        root: the served folder, already resolved with realpath.
        dotfiles: serve hidden paths too.

    Returns:
        The Response; an open file inside it must be closed by the caller (Response.close).
    """
    try:
        if request.method != "GET":
            raise HttpError(405, f"{request.method} is not supported; use GET")
        return file_response(request_path(request.target), root, dotfiles)
    except HttpError as error:
        return error_response(error.status, root, error.detail)


def request_path(target: str) -> str:
    """Turn a request target into a decoded, dot-segment-free absolute path.

    Raises:
        HttpError: 400 for a target that is not a valid path.
    """
    if not target.startswith("/"):
        matched = ABSOLUTE_FORM.match(target)
        if not matched:
            raise HttpError(400, "the request target must start with /")
        target = target[matched.end() :] or "/"
    if "#" in target or not target.startswith("/"):
        raise HttpError(400, "malformed request target")
    path = target.split("?", 1)[0]
    if BAD_ESCAPE.search(path):
        raise HttpError(400, "malformed percent-escape")
    try:
        decoded = unquote_to_bytes(path).decode("utf-8")
    except UnicodeDecodeError as error:
        raise HttpError(400, "the path is not valid UTF-8") from error
    if "\x00" in decoded or "\\" in decoded:
        raise HttpError(400, "NUL or backslash in path")
    return remove_dot_segments(decoded)


def remove_dot_segments(path: str) -> str:
    """Resolve `.` and `..` (never above `/`) and collapse empty segments, keeping a final `/`."""
    kept: list[str] = []
    segments = path.split("/")
    for segment in segments:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment not in ("", "."):
            kept.append(segment)
    trailing = segments[-1] in ("", ".", "..") and bool(kept)
    return "/" + "/".join(kept) + ("/" if trailing else "")


def file_response(path: str, root: str, dotfiles: bool = False) -> Response:
    """Return the 200 (or 301) for `path` under `root`.

    Raises:
        HttpError: 404 when missing, outside the root, hidden (unless `dotfiles`) or not a
            regular file, 403 when unreadable.
    """
    fd = open_inside(root, path, dotfiles)
    info = os.fstat(fd)
    if stat.S_ISREG(info.st_mode) and not path.endswith("/"):
        return file_answer(open(fd, "rb"), info, path)
    os.close(fd)
    if stat.S_ISDIR(info.st_mode) and path.endswith("/"):
        return file_response(path + "index.html", root, dotfiles)
    if stat.S_ISDIR(info.st_mode):
        return redirect_response(quote(path) + "/")
    raise HttpError(404, "no such file")


def open_inside(root: str, path: str, dotfiles: bool) -> int:
    """Open `path` under `root` for reading; return the descriptor if it really lies inside.

    The real location is read back from the open descriptor (/proc/self/fd on Linux: one system
    call, where realpath makes one per path component), so a symlink that leads outside the root
    is a 404, exactly like a missing file. O_NONBLOCK keeps a FIFO from blocking the open.
    Without `dotfiles`, a hidden name in the request path or in the real location (a symlink
    to .git) is a 404 too.

    Raises:
        HttpError: 404 when missing, outside the root or hidden, 403 when permission is denied.
    """
    if not dotfiles and is_hidden(path):
        raise HttpError(404, "no such file")
    full = os.path.join(root, path.lstrip("/"))
    try:
        fd = os.open(full, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except PermissionError as error:
        raise HttpError(403, "permission denied") from error
    except (OSError, ValueError) as error:
        raise HttpError(404, "no such file") from error
    real = real_location(fd, full)
    inside = real.removeprefix(root.rstrip(os.sep) + os.sep)
    if real != root and (inside == real or (not dotfiles and is_hidden(inside))):
        os.close(fd)
        raise HttpError(404, "no such file")
    return fd


def is_hidden(path: str) -> bool:
    """True when a segment of the /-separated `path` starts with a dot (.git, .env)."""
    return any(segment.startswith(".") for segment in path.split("/"))


def real_location(fd: int, fallback: str) -> str:
    """Return the canonical path of the open `fd` (without /proc: the realpath of `fallback`)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(fallback)


def redirect_response(location: str) -> Response:
    """Return a 301 to `location` with a small HTML body."""
    body = f'<!DOCTYPE html>\n<a href="{html.escape(location)}">Moved here</a>\n'.encode()
    response = build_response(301, HTML_TYPE, len(body), Location=location)
    response.body = body
    return response


def file_answer(file: BinaryIO, info: os.stat_result, path: str) -> Response:
    """Return the 200 for the open regular `file`; up to INLINE_LIMIT bytes go in the body.

    Args:
        file: the open file, owned by the Response from now on (closed here when inlined).
        info: its fstat result.
        path: the request path, whose extension gives the Content-Type.
    """
    content_type = CONTENT_TYPES.get(os.path.splitext(path)[1].lower(), DEFAULT_TYPE)
    response = build_response(
        200, content_type, info.st_size, Last_Modified=http_date(info.st_mtime)
    )
    response.path = path
    if info.st_size <= INLINE_LIMIT:
        with file:
            response.body = file.read(info.st_size)
        return response
    response.file, response.file_size = file, info.st_size
    return response
