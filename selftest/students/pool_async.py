"""Student-style lab-6 server with the extra credit: thread, process, thread-pool and async modes.

Written the way a student who did the extra credit writes it (not derived from httpd/): one
HttpRequest class parses the head with a regex per line and keeps every header; `thread` and
`process` spawn a worker per client (children are reaped with `multiprocessing.active_children()`
at each accept); `thread-pool` starts POOL_SIZE threads that take sockets from a `queue.Queue`;
`async` serves each client with asyncio streams. Files are sent in chunks with a Content-Length.
Ctrl-C stops accepting, lets every client finish and joins every thread and child. Correct: the
selftest expects it to pass every required check in its four modes.
"""

import argparse
import asyncio
import multiprocessing
import queue
import re
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

POOL_SIZE = 16
CHUNK = 64 * 1024
STATUS_TEXT = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    505: "HTTP Version Not Supported",
}
REQUEST_LINE = re.compile(r"^([A-Za-z]+) (\S+) HTTP/(\d)\.(\d)$")
HEADER = re.compile(r"^([^\s:]+):(.*)$")


class HttpError(Exception):
    """Raised while parsing: the response to send instead of a file."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


class HttpRequest:
    """A parsed request: method, path, version and every header (names lower-cased)."""

    def __init__(self, head):
        lines = head.decode("latin-1").split("\r\n")
        match = REQUEST_LINE.match(lines[0])
        if not match:
            raise HttpError(400)
        self.method, target, major, _minor = match.groups()
        if major != "1":
            raise HttpError(505)
        if not target.startswith("/"):
            raise HttpError(400)
        self.path = unquote(urlsplit(target).path)
        self.headers = {}
        for line in lines[1:]:
            header = HEADER.match(line)
            if not header:
                raise HttpError(400)
            self.headers.setdefault(header.group(1).lower(), []).append(header.group(2).strip())


class FileServer:
    """Turns a request head into response pieces for files under one folder."""

    def __init__(self, folder, delay, verbose):
        self.root = Path(folder).resolve()
        self.delay = delay
        self.verbose = verbose

    def debug(self, text):
        """Log to stderr with the thread name when -v is given."""
        if self.verbose:
            print(f"[{threading.current_thread().name}] {text}", file=sys.stderr)

    def locate(self, path):
        """Return the file for a URL path, or None when it is missing or outside the folder."""
        if "\0" in path:
            return None
        candidate = (self.root / path.lstrip("/")).resolve()
        if not candidate.is_relative_to(self.root):
            return None
        if candidate.is_dir():
            candidate = candidate / "index.html"
        return candidate if candidate.is_file() else None

    def error_page(self, code):
        """Return the head and body of an error response."""
        page = self.root / "404.html"
        if code == 404 and page.is_file():
            body = page.read_bytes()
        else:
            body = f"<html><body><h1>{code} {STATUS_TEXT[code]}</h1></body></html>".encode()
        return self.head(code, len(body)), body

    def head(self, code, length):
        """Return a status line and a Content-Length header."""
        return f"HTTP/1.0 {code} {STATUS_TEXT[code]}\r\nContent-Length: {length}\r\n\r\n".encode()

    def respond(self, head):
        """Return (head bytes, body bytes or a file Path) for a request head."""
        try:
            request = HttpRequest(head)
        except HttpError as error:
            return self.error_page(error.code)
        self.debug(f"{request.method} {request.path}")
        if request.method != "GET":
            return self.error_page(405)
        found = self.locate(request.path)
        if found is None:
            return self.error_page(404)
        return self.head(200, found.stat().st_size), found


def read_head(conn):
    """Read from a blocking socket until the end of the head; None if the client closed early."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(4096)
        if not piece:
            return None
        data += piece
        if len(data) > 100_000:
            return b"TOO LONG"
    return data.split(b"\r\n\r\n", 1)[0]


def serve_connection(conn, app):
    """Serve one client on a blocking socket, then close it."""
    with conn:
        try:
            conn.settimeout(30)
            head = read_head(conn)
            if head is None:
                return
            if app.delay:
                time.sleep(5)
            response_head, body = app.respond(head)
            conn.sendall(response_head)
            if isinstance(body, Path):
                with body.open("rb") as file:
                    while chunk := file.read(CHUNK):
                        conn.sendall(chunk)
            else:
                conn.sendall(body)
        except OSError as error:
            app.debug(f"client error: {error}")


def process_worker(conn, app):
    """Child process body: Ctrl-C is the parent's business, the child finishes its client."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve_connection(conn, app)


def pool_worker(jobs, app):
    """Thread-pool worker: serve sockets from the queue until it hands out None."""
    while True:
        conn = jobs.get()
        if conn is None:
            return
        serve_connection(conn, app)


def make_listener(port):
    """Return a listening TCP socket on every address, port `port`."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(100)
    return listener


def run_blocking(mode, listener, app):
    """Accept loop of the thread, process and thread-pool modes; drains on Ctrl-C."""
    threads, jobs = [], queue.Queue()
    if mode == "thread-pool":
        for number in range(POOL_SIZE):
            worker = threading.Thread(target=pool_worker, args=(jobs, app), name=f"pool-{number}")
            worker.start()
            threads.append(worker)
    try:
        while True:
            conn, _ = listener.accept()
            if mode == "thread":
                threads = [thread for thread in threads if thread.is_alive()]
                worker = threading.Thread(target=serve_connection, args=(conn, app))
                worker.start()
                threads.append(worker)
            elif mode == "process":
                multiprocessing.active_children()
                multiprocessing.Process(target=process_worker, args=(conn, app)).start()
                conn.close()
            else:
                jobs.put(conn)
    except KeyboardInterrupt:
        app.debug("shutting down")
    finally:
        listener.close()
        for _ in range(POOL_SIZE if mode == "thread-pool" else 0):
            jobs.put(None)
        for thread in threads:
            thread.join()
        for child in multiprocessing.active_children():
            child.join()


async def handle_stream(reader, writer, app):
    """Serve one client with asyncio streams."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        if app.delay:
            await asyncio.sleep(5)
        response_head, body = app.respond(head[:-4])
        writer.write(response_head)
        if isinstance(body, Path):
            with body.open("rb") as file:
                while chunk := file.read(CHUNK):
                    writer.write(chunk)
                    await writer.drain()
        else:
            writer.write(body)
        await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as error:
        app.debug(f"client error: {error!r}")
    finally:
        writer.close()


async def run_async(listener, app):
    """Serve with asyncio until Ctrl-C (SIGINT), then wait for the clients in progress."""
    stop = asyncio.Event()
    tasks = set()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.set)

    async def on_client(reader, writer):
        task = asyncio.current_task()
        tasks.add(task)
        try:
            await handle_stream(reader, writer, app)
        finally:
            tasks.discard(task)

    server = await asyncio.start_server(on_client, sock=listener, limit=100_000)
    await stop.wait()
    server.close()
    if tasks:
        await asyncio.wait(set(tasks))


def main():
    """Parse the options and run the chosen mode."""
    parser = argparse.ArgumentParser(description="Concurrent HTTP/1.0 server")
    parser.add_argument("-p", "--port", type=int, default=8085, help="Port to bind to")
    parser.add_argument("-v", "--verbose", action="store_true", help="Turn on debugging output.")
    parser.add_argument("-d", "--delay", action="store_true", help="Add a delay for debugging.")
    parser.add_argument("-f", "--folder", default=".", help="Folder from where to serve from.")
    parser.add_argument(
        "-c",
        "--concurrency",
        choices=["thread", "thread-pool", "process", "async"],
        default="thread",
        help="Concurrency methodology.",
    )
    args = parser.parse_args()
    if not Path(args.folder).is_dir():
        parser.error(f"folder not found: {args.folder}")
    try:
        listener = make_listener(args.port)
    except OSError as error:
        print(f"cannot listen on port {args.port}: {error}", file=sys.stderr)
        return 1
    app = FileServer(args.folder, args.delay, args.verbose)
    if args.concurrency == "async":
        asyncio.run(run_async(listener, app))
    else:
        run_blocking(args.concurrency, listener, app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
