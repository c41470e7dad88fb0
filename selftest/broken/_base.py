"""A small, correct-enough threaded HTTP/1.0 server: the base each broken server changes once."""

# Strategy: one thread per connection (non-daemon, joined on Ctrl-C). A Handler reads the head
# up to CRLFCRLF, parses it strictly, and answers a file, 301, 400, 403, 404, 405 or 505. Every
# rule a broken server breaks is one small Handler method (resolve, content_length,
# method_allowed, error_body, bad_request_line, send_content), so a broken server overrides exactly
# one of them. Standard library only; run as `python X.py -p PORT -f FOLDER [-c thread] [-d]`.

from __future__ import annotations

import argparse
import email.utils
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import BinaryIO

REASONS = {200: "OK", 301: "Moved Permanently", 400: "Bad Request", 403: "Forbidden"}
REASONS |= {404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}
REASONS |= {505: "HTTP Version Not Supported"}
TYPES = {".html": "text/html; charset=utf-8", ".txt": "text/plain; charset=utf-8"}
TYPES |= {".css": "text/css", ".jpg": "image/jpeg", ".png": "image/png"}
REQUEST_LINE = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (/\S*) HTTP/(\d)\.(\d)")
HEADER_LINE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[ \t]*[^\x00-\x08\x0a-\x1f\x7f]*")


class HttpError(Exception):
    """An error response to send, carrying its status."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class Handler:
    """Serves one connection: read a request, send one response, close."""

    head_timeout = 10.0

    def __init__(self, conn: socket.socket, root: Path, delay: bool) -> None:
        self.conn, self.root, self.delay = conn, root, delay

    def serve(self) -> None:
        """Answer one request on the connection, then close it politely."""
        try:
            head = self.read_head()
            if head is not None:
                self.respond(head)
        except OSError:
            pass
        finally:
            self.close()

    def read_head(self) -> bytes | None:
        """Read up to the blank line (head_timeout s per recv); None if the client closes first."""
        self.conn.settimeout(self.head_timeout)
        buffer = b""
        while b"\r\n\r\n" not in buffer and len(buffer) < 65536:
            data = self.conn.recv(4096)
            if not data:
                return None
            buffer += data
        return buffer.split(b"\r\n\r\n", 1)[0]

    def respond(self, head: bytes) -> None:
        """Parse the head and send the file or an error."""
        try:
            method, target = self.parse(head)
            if self.delay:
                time.sleep(5)
            if not self.method_allowed(method):
                raise HttpError(405)
            self.send_target(target)
        except HttpError as error:
            self.send_error(error.status)

    def parse(self, head: bytes) -> tuple[str, str]:
        """Return (method, target) of a well-formed head; raise HttpError otherwise."""
        lines = head.decode("latin-1").split("\r\n")
        match = REQUEST_LINE.fullmatch(lines[0])
        if not match:
            self.bad_request_line()
        if match.group(3) != "1":
            raise HttpError(505)
        if not all(HEADER_LINE.fullmatch(line) for line in lines[1:]):
            raise HttpError(400)
        return match.group(1), match.group(2)

    def bad_request_line(self) -> None:
        """React to a malformed request line (raise HttpError(400))."""
        raise HttpError(400)

    def method_allowed(self, method: str) -> bool:
        """Say whether `method` is served."""
        return method == "GET"

    def send_target(self, target: str) -> None:
        """Send the file the target names, a redirect, or raise the matching HttpError."""
        path = self.resolve(target)
        if path is None or not path.exists():
            raise HttpError(404)
        if path.is_dir() and not target.split("?")[0].endswith("/"):
            self.send_head(301, 0, "text/html", [("Location", target.split("?")[0] + "/")])
            return
        path = path / "index.html" if path.is_dir() else path
        if not path.is_file():
            raise HttpError(404)
        if not os.access(path, os.R_OK):
            raise HttpError(403)
        self.send_file(path, path.stat().st_size)

    def resolve(self, target: str) -> Path | None:
        """Map a target to a path inside the root, or None if it would leave it."""
        path = urllib.parse.unquote(target.split("?", 1)[0])
        if "\x00" in path or "\\" in path:
            raise HttpError(400)
        parts: list[str] = []
        for segment in path.split("/"):
            if segment == "..":
                parts = parts[:-1]
            elif segment not in ("", "."):
                parts.append(segment)
        real = os.path.realpath(os.path.join(self.root, *parts))
        inside = real == str(self.root) or real.startswith(str(self.root) + os.sep)
        return Path(real) if inside else None

    def content_length(self, size: int) -> int:
        """Return the Content-Length to announce for a body of `size` bytes."""
        return size

    def send_file(self, path: Path, size: int) -> None:
        """Send a 200 head and the file."""
        with open(path, "rb") as handle:
            modified = email.utils.formatdate(path.stat().st_mtime, usegmt=True)
            self.send_head(200, size, TYPES.get(path.suffix.lower()), [("Last-Modified", modified)])
            if size:
                self.send_content(handle)

    def send_content(self, handle: BinaryIO) -> None:
        """Stream an open file to the client."""
        self.conn.sendfile(handle)

    def error_body(self, status: int) -> bytes:
        """Return the HTML body of an error response."""
        page = self.root / "404.html"
        if status == 404 and page.is_file():
            return page.read_bytes()
        return f"<html><body><h1>{status} {REASONS[status]}</h1></body></html>\n".encode()

    def send_error(self, status: int) -> None:
        """Send an error response with its HTML body."""
        body = self.error_body(status)
        extra = [("Allow", "GET")] if status == 405 else []
        self.send_head(status, len(body), "text/html; charset=utf-8", extra)
        self.conn.sendall(body)

    def send_head(self, status: int, size: int, ctype: str | None, extra: list) -> None:
        """Send the status line and headers."""
        headers = [("Server", "selftest-base"), ("Date", email.utils.formatdate(usegmt=True))]
        headers += [("Content-Type", ctype or "application/octet-stream")]
        headers += [("Content-Length", str(self.content_length(size))), ("Connection", "close")]
        lines = [f"HTTP/1.0 {status} {REASONS[status]}"] + [f"{k}: {v}" for k, v in headers + extra]
        self.conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def close(self) -> None:
        """Shut down sending, drain what the client still sends (briefly), close."""
        try:
            self.conn.shutdown(socket.SHUT_WR)
            self.conn.settimeout(1)
            while self.conn.recv(65536):
                pass
        except OSError:
            pass
        self.conn.close()


def parse_args(modes: tuple[str, ...]) -> argparse.Namespace:
    """Parse the lab's command line."""
    parser = argparse.ArgumentParser(description="selftest server")
    parser.add_argument("-p", "--port", type=int, default=8085, help="port to bind to")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug output")
    parser.add_argument("-d", "--delay", action="store_true", help="wait 5 s before answering")
    parser.add_argument("-f", "--folder", default=".", help="folder to serve")
    parser.add_argument("-c", "--concurrency", choices=modes, default=modes[0], help="mode")
    return parser.parse_args()


def main(handler: type[Handler] = Handler, modes: tuple[str, ...] = ("thread",)) -> None:
    """Serve forever, a thread per client ("single": inline); Ctrl-C joins threads, exits 0."""
    args = parse_args(modes)
    root = Path(os.path.realpath(args.folder))
    try:
        listener = socket.create_server(("127.0.0.1", args.port))
    except OSError as exc:
        sys.exit(f"cannot listen on port {args.port}: {exc.strerror}")
    threads: list[threading.Thread] = []
    try:
        while True:
            conn, _ = listener.accept()
            worker = handler(conn, root, args.delay)
            if args.concurrency == "single":
                worker.serve()
                continue
            threads = [thread for thread in threads if thread.is_alive()]
            threads.append(threading.Thread(target=worker.serve))
            threads[-1].start()
    except KeyboardInterrupt:
        listener.close()
        for thread in threads:
            thread.join()


if __name__ == "__main__":
    main()
