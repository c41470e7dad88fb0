"""Student-style server for the later year's lab 6: thread, thread-pool and select modes.

Written the way a student writes that lab (not derived from httpd/): a Connection object per
client holds its input buffer and what is left to send; `select` runs one `selectors` loop that
reads heads, parks delayed clients until their time comes (a heap of deadlines, no sleep), and
sends files a chunk at a time as the socket becomes writable; `thread` runs the same Connection
in a thread per client, `thread-pool` in a fixed set of threads fed by a `queue.Queue`. Ctrl-C
stops accepting and finishes every client before exiting. Correct: the selftest expects it to
pass every required check in its three modes.
"""

import argparse
import heapq
import os
import queue
import selectors
import socket
import sys
import threading
import time
import urllib.parse

WORKERS = 12
DELAY_SECONDS = 5
PIECE = 32768
MESSAGES = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
MESSAGES[505] = "HTTP Version Not Supported"


def build_parser():
    """Return the argument parser of the later year's CLI."""
    parser = argparse.ArgumentParser(prog="http_server.py")
    parser.add_argument("-p", "--port", type=int, default=8085, help="Port to bind to")
    parser.add_argument("-v", "--verbose", action="store_true", help="Turn on debugging output.")
    parser.add_argument("-d", "--delay", action="store_true", help="Add a delay for debugging.")
    parser.add_argument("-f", "--folder", default=".", help="Folder from where to serve from.")
    parser.add_argument(
        "-c",
        "--concurrency",
        choices=["thread", "thread-pool", "select"],
        default="thread",
        help="Concurrency methodology.",
    )
    return parser


def parse_head(text):
    """Return (status, path) for a request head: status 0 means "serve path"."""
    lines = text.split("\r\n")
    words = lines[0].split(" ")
    if len(words) != 3 or not words[1].startswith("/"):
        return 400, None
    method, target, version = words
    if not version.startswith("HTTP/") or version[5:] not in ("1.0", "1.1", "1.2", "1.9"):
        major = version[5:6]
        return (505 if version.startswith("HTTP/") and major.isdigit() else 400), None
    if not method.isalpha():
        return 400, None
    headers = {}
    for line in lines[1:]:
        if ":" not in line or line.startswith((" ", "\t", ":")):
            return 400, None
        key, value = line.split(":", 1)
        headers[key.strip().lower()] = value.strip()
    if method != "GET":
        return 405, None
    return 0, urllib.parse.unquote(target.split("?")[0])


def pick_file(folder, path):
    """Return the path of the file to send, or None when it is missing or outside the folder."""
    if "\0" in path:
        return None
    base = os.path.realpath(folder)
    full = os.path.realpath(base + "/" + path)
    if full != base and not full.startswith(base + os.sep):
        return None
    if os.path.isdir(full):
        full = os.path.join(full, "index.html")
    return full if os.path.isfile(full) else None


class Connection:
    """One client: collect its head, build the response, hand out the bytes to send."""

    def __init__(self, sock, folder, delay):
        self.sock = sock
        self.folder = folder
        self.inbox = b""
        self.outbox = b""
        self.file = None
        self.ready_at = None
        self.delay = delay

    def feed(self, data):
        """Add received bytes; return True once the whole head is in."""
        self.inbox += data
        if len(self.inbox) > 65536 and b"\r\n\r\n" not in self.inbox:
            self.inbox = b"X\r\n\r\n"
        return b"\r\n\r\n" in self.inbox

    def prepare(self):
        """Build the response for the head received (the file is opened, not read)."""
        head = self.inbox.split(b"\r\n\r\n")[0].decode("latin-1")
        status, path = parse_head(head)
        name = pick_file(self.folder, path) if status == 0 else None
        if status == 0 and name is None:
            status = 404
        if name is not None:
            try:
                self.file = open(name, "rb")  # noqa: SIM115 - closed when sent
            except OSError:
                name, status = None, 404
        if name is not None:
            size = os.path.getsize(name)
            self.outbox = f"HTTP/1.0 200 OK\r\nContent-Length: {size}\r\n\r\n".encode()
            return
        body = f"<html><body><h1>{status} {MESSAGES[status]}</h1></body></html>".encode()
        custom = os.path.join(self.folder, "404.html")
        if status == 404 and os.path.isfile(custom):
            with open(custom, "rb") as page:
                body = page.read()
        head = f"HTTP/1.0 {status} {MESSAGES[status]}\r\nContent-Length: {len(body)}\r\n\r\n"
        self.outbox = head.encode() + body

    def next_bytes(self):
        """Return the next bytes to send (b"" when everything is sent)."""
        if not self.outbox and self.file is not None:
            self.outbox = self.file.read(PIECE)
            if not self.outbox:
                self.file.close()
                self.file = None
        return self.outbox

    def sent(self, count):
        """Drop `count` bytes that went out."""
        self.outbox = self.outbox[count:]

    def close(self):
        """Close the file and the socket."""
        if self.file is not None:
            self.file.close()
        self.sock.close()

    def run_blocking(self):
        """Serve the client on a blocking socket (thread and thread-pool modes)."""
        try:
            self.sock.settimeout(30)
            while True:
                data = self.sock.recv(4096)
                if not data:
                    return
                if self.feed(data):
                    break
            if self.delay:
                time.sleep(DELAY_SECONDS)
            self.prepare()
            while data := self.next_bytes():
                self.sock.sendall(data)
                self.sent(len(data))
        except OSError as error:
            print(f"client error: {error}", file=sys.stderr)
        finally:
            self.close()


def select_loop(listener, args):
    """Serve every client from one selectors loop; after Ctrl-C, finish the ones connected."""
    selector = selectors.DefaultSelector()
    listener.setblocking(False)
    selector.register(listener, selectors.EVENT_READ, None)
    waiting = []
    accepting = True
    while True:
        try:
            if not accepting and not selector.get_map() and not waiting:
                return
            timeout = max(0, waiting[0][0] - time.monotonic()) if waiting else None
            for key, events in selector.select(timeout):
                if key.data is None:
                    sock, _ = listener.accept()
                    sock.setblocking(False)
                    conn = Connection(sock, args.folder, args.delay)
                    selector.register(sock, selectors.EVENT_READ, conn)
                elif events & selectors.EVENT_READ:
                    read_ready(selector, key.data, waiting)
                else:
                    write_ready(selector, key.data)
            while waiting and waiting[0][0] <= time.monotonic():
                _, _, conn = heapq.heappop(waiting)
                conn.prepare()
                selector.register(conn.sock, selectors.EVENT_WRITE, conn)
        except KeyboardInterrupt:
            if accepting:
                selector.unregister(listener)
                listener.close()
                accepting = False
        except BlockingIOError:
            continue


def read_ready(selector, conn, waiting):
    """Read from a client; once its head is complete, schedule its response."""
    try:
        data = conn.sock.recv(4096)
    except OSError:
        data = b""
    if not data:
        selector.unregister(conn.sock)
        conn.close()
        return
    if conn.feed(data):
        selector.unregister(conn.sock)
        due = time.monotonic() + (DELAY_SECONDS if conn.delay else 0)
        heapq.heappush(waiting, (due, id(conn), conn))


def write_ready(selector, conn):
    """Send what the client can take; close when the response is out."""
    try:
        data = conn.next_bytes()
        if data:
            conn.sent(conn.sock.send(data))
            return
    except BlockingIOError:
        return
    except OSError as error:
        print(f"client error: {error}", file=sys.stderr)
    selector.unregister(conn.sock)
    conn.close()


def thread_loop(listener, args):
    """Accept loop of the thread and thread-pool modes; joins every thread on Ctrl-C."""
    jobs = queue.Queue()
    pool = []
    if args.concurrency == "thread-pool":
        for _ in range(WORKERS):
            pool.append(threading.Thread(target=pool_worker, args=(jobs,)))
            pool[-1].start()
    spawned = []
    try:
        while True:
            sock, _ = listener.accept()
            conn = Connection(sock, args.folder, args.delay)
            if pool:
                jobs.put(conn)
            else:
                spawned = [thread for thread in spawned if thread.is_alive()]
                spawned.append(threading.Thread(target=conn.run_blocking))
                spawned[-1].start()
    except KeyboardInterrupt:
        listener.close()
        for _ in pool:
            jobs.put(None)
        for thread in pool + spawned:
            thread.join()


def pool_worker(jobs):
    """Serve connections from the queue until a None arrives."""
    while (conn := jobs.get()) is not None:
        conn.run_blocking()


def main():
    """Start the server in the chosen mode."""
    args = build_parser().parse_args()
    if not os.path.isdir(args.folder):
        print(f"Error: {args.folder} is not a folder", file=sys.stderr)
        sys.exit(2)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("", args.port))
    except OSError as error:
        print(f"Error: cannot bind port {args.port}: {error}", file=sys.stderr)
        sys.exit(1)
    listener.listen(64)
    if args.verbose:
        print(f"serving {args.folder} on port {args.port}", file=sys.stderr)
    if args.concurrency == "select":
        select_loop(listener, args)
    else:
        thread_loop(listener, args)


if __name__ == "__main__":
    main()
