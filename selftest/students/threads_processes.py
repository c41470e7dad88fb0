"""Student-style lab-6 server: its own parser, a Thread or a Process per client, lazy reaping.

Written the way a student writes the lab (not derived from httpd/): a blocking accept loop;
`thread` starts a `threading.Thread` per client and keeps it in a list, `process` starts a
`multiprocessing.Process` per client and reaps finished children at the next accept (a few
zombies between two accepts, never a growing pile). Ctrl-C closes the listener, then joins every
thread and child. The HTTP part reads the head to the blank line, splits the request line in
three, parses every header into a dict and answers 200, 400, 404, 405 or 505 with a
Content-Length. Correct: the selftest expects it to pass every required check.
"""

import argparse
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import urllib.parse

BUFFER_SIZE = 4096
MAX_HEAD = 65536
NOT_FOUND_PAGE = b"<html><body><h1>404 File Not Found</h1></body></html>"
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "File Not Found",
    405: "Method Not Allowed",
    505: "HTTP Version Not Supported",
}


class BadRequest(Exception):
    """The request could not be understood; `status` says which error to send."""

    def __init__(self, status):
        super().__init__(status)
        self.status = status


def parse_args():
    """Read the command line (the lab's five options plus -c)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("-p", "--port", type=int, default=8085, help="port to bind to")
    parser.add_argument("-v", "--verbose", action="store_true", help="turn on debugging output")
    parser.add_argument("-d", "--delay", action="store_true", help="add a delay for debugging")
    parser.add_argument("-f", "--folder", default=".", help="folder from where to serve from")
    parser.add_argument(
        "-c",
        "--concurrency",
        choices=["thread", "process"],
        default="thread",
        help="concurrency methodology",
    )
    return parser.parse_args()


def log(verbose, message):
    """Print a debugging line to stderr when -v is on."""
    if verbose:
        print(message, file=sys.stderr)


def read_request(conn):
    """Receive bytes until the blank line that ends the head; return (head, rest) or None."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(BUFFER_SIZE)
        if not chunk:
            return None if not data else (data, b"")
        data += chunk
        if len(data) > MAX_HEAD:
            raise BadRequest(400)
    head, rest = data.split(b"\r\n\r\n", 1)
    return head, rest


def parse_request(head):
    """Split the head into method, path, version and a dict of headers."""
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        raise BadRequest(400) from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise BadRequest(400)
    method, path, version = parts
    if not method.isalpha() or not method.isupper() or not path.startswith("/"):
        raise BadRequest(400)
    if len(version) != 8 or not version.startswith("HTTP/") or version[6] != ".":
        raise BadRequest(400)
    if not (version[5].isdigit() and version[7].isdigit()):
        raise BadRequest(400)
    if version[5] != "1":
        raise BadRequest(505)
    headers = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise BadRequest(400)
        headers[name.lower()] = value.strip()
    for char in path:
        if ord(char) < 33 or ord(char) > 126:
            raise BadRequest(400)
    return method, path, version, headers


def skip_body(conn, headers, already):
    """Read and drop a request body announced by Content-Length (so closing does not reset)."""
    length = headers.get("content-length", "0")
    if not length.isdigit():
        return
    left = min(int(length), 16 * 1024 * 1024) - len(already)
    conn.settimeout(2)
    while left > 0:
        chunk = conn.recv(min(left, 65536))
        if not chunk:
            return
        left -= len(chunk)


def find_file(folder, path):
    """Return the real path of the requested file inside folder, or None if it is not there."""
    path = urllib.parse.unquote(path.split("?", 1)[0])
    if "\x00" in path or "\\" in path:
        return None
    root = os.path.realpath(folder)
    wanted = os.path.realpath(os.path.join(root, path.lstrip("/")))
    if os.path.commonpath([root, wanted]) != root:
        return None
    if os.path.isdir(wanted):
        wanted = os.path.join(wanted, "index.html")
    if not os.path.isfile(wanted):
        return None
    return wanted


def send_head(conn, status, length):
    """Send the status line and the Content-Length header."""
    head = f"HTTP/1.0 {status} {REASONS[status]}\r\nContent-Length: {length}\r\n\r\n"
    conn.sendall(head.encode("ascii"))


def send_error(conn, status, folder):
    """Send an error response with a small HTML page (the folder's 404.html for a 404)."""
    body = f"<html><body><h1>{status} {REASONS[status]}</h1></body></html>".encode()
    if status == 404:
        page = os.path.join(folder, "404.html")
        if os.path.isfile(page):
            with open(page, "rb") as file:
                body = file.read()
        else:
            body = NOT_FOUND_PAGE
    send_head(conn, status, len(body))
    conn.sendall(body)


def send_file(conn, filename):
    """Send a 200 with the file, read in chunks so any size fits."""
    send_head(conn, 200, os.path.getsize(filename))
    with open(filename, "rb") as file:
        while True:
            chunk = file.read(65536)
            if not chunk:
                break
            conn.sendall(chunk)


def handle_client(conn, address, folder, delay, verbose):
    """Serve one request on `conn`, then close it."""
    log(verbose, f"[{conn.fileno()}] connection from {address}")
    try:
        conn.settimeout(30)
        request = read_request(conn)
        if request is None:
            return
        if delay:
            time.sleep(5)
        try:
            method, path, _, headers = parse_request(request[0])
        except BadRequest as error:
            send_error(conn, error.status, folder)
            return
        log(verbose, f"[{conn.fileno()}] {method} {path}")
        if method != "GET":
            skip_body(conn, headers, request[1])
            send_error(conn, 405, folder)
            return
        filename = find_file(folder, path)
        if filename is None:
            send_error(conn, 404, folder)
        else:
            send_file(conn, filename)
    except BadRequest as error:
        send_error(conn, error.status, folder)
    except OSError as error:
        log(verbose, f"client {address}: {error}")
    finally:
        conn.close()


def child_main(conn, address, folder, delay, verbose):
    """Entry point of a child process: ignore Ctrl-C (the parent waits for us), serve, exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    handle_client(conn, address, folder, delay, verbose)


def reap(children):
    """Join the children that have finished; return the ones still running."""
    running = []
    for child in children:
        if child.is_alive():
            running.append(child)
        else:
            child.join()
    return running


def serve(args):
    """Accept clients until Ctrl-C, handing each to a thread or a process."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("", args.port))
    server.listen(128)
    print(f"Listening on port {args.port}", file=sys.stderr)
    workers = []
    try:
        while True:
            conn, address = server.accept()
            worker_args = (conn, address, args.folder, args.delay, args.verbose)
            if args.concurrency == "thread":
                workers = [t for t in workers if t.is_alive()]
                worker = threading.Thread(target=handle_client, args=worker_args)
                worker.start()
            else:
                workers = reap(workers)
                worker = multiprocessing.Process(target=child_main, args=worker_args)
                worker.start()
                conn.close()
            workers.append(worker)
    except KeyboardInterrupt:
        print("Shutting down", file=sys.stderr)
    finally:
        server.close()
        for worker in workers:
            worker.join()


def main():
    """Check the options, then serve."""
    args = parse_args()
    if not os.path.isdir(args.folder):
        print(f"error: folder {args.folder} does not exist", file=sys.stderr)
        return 1
    try:
        serve(args)
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
