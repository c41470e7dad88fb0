"""Student-style lab-5 server: one client at a time, no -c, default port 8084.

Written the way a lab-5 student writes it (not derived from httpd/): a `while True` accept loop
that serves each client to the end before accepting the next; the head is read to the blank
line, the request line split in three, every header kept; a file is streamed in chunks under
its Content-Length, anything else gets 400, 404 (the folder's 404.html when there is one), 405
or 505. Ctrl-C ends the loop once the current client is served. Correct for the lab-5 profile:
the selftest expects it to pass every required check it can be given (no concurrency).
"""

import argparse
import os
import socket
import sys
import time
from urllib.parse import unquote

PHRASES = {
    200: "OK",
    400: "Bad Request",
    404: "File Not Found",
    405: "Method Not Allowed",
    505: "HTTP Version Not Supported",
}


def get_args():
    """The lab-5 command line: -p, -v, -d, -f."""
    parser = argparse.ArgumentParser()
    parser.add_argument("-p", "--port", type=int, default=8084, help="port to bind to")
    parser.add_argument("-v", "--verbose", action="store_true", help="turn on debugging output")
    parser.add_argument("-d", "--delay", action="store_true", help="add a delay for debugging")
    parser.add_argument("-f", "--folder", default=".", help="folder from where to serve from")
    return parser.parse_args()


def receive_head(client):
    """Return the request head (without the blank line), or None if the client left first."""
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        more = client.recv(1024)
        if not more:
            return None
        data += more
    return data.split(b"\r\n\r\n")[0]


def status_and_file(head, folder):
    """Decide the answer: (status, file path or None)."""
    lines = head.decode("latin-1").split("\r\n")
    request_line = lines[0].split(" ")
    if len(request_line) != 3:
        return 400, None
    method, target, version = request_line
    if not version.startswith("HTTP/") or len(version) != 8 or version[6] != ".":
        return 400, None
    if not version[5].isdigit() or not version[7].isdigit() or not method.isalpha():
        return 400, None
    if version[5] != "1":
        return 505, None
    headers = {}
    for line in lines[1:]:
        if ":" not in line or line[0] in " \t:":
            return 400, None
        name, value = line.split(":", 1)
        headers[name.lower()] = value.strip()
    if method != "GET":
        return 405, None
    if not target.startswith("/") or "\0" in unquote(target):
        return 400, None
    root = os.path.realpath(folder)
    path = os.path.realpath(os.path.join(root, unquote(target.split("?")[0]).lstrip("/")))
    if path != root and not path.startswith(root + os.sep):
        return 404, None
    if os.path.isdir(path):
        path = os.path.join(path, "index.html")
    return (200, path) if os.path.isfile(path) else (404, None)


def answer(client, status, path, folder):
    """Send the response: the file, or an error page."""
    if status == 200:
        size = os.path.getsize(path)
        client.sendall(f"HTTP/1.0 200 OK\r\nContent-Length: {size}\r\n\r\n".encode())
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(65536), b""):
                client.sendall(block)
        return
    page = os.path.join(folder, "404.html")
    if status == 404 and os.path.isfile(page):
        with open(page, "rb") as file:
            body = file.read()
    else:
        body = f"<html><body><h1>{status} {PHRASES[status]}</h1></body></html>".encode()
    head = f"HTTP/1.0 {status} {PHRASES[status]}\r\nContent-Length: {len(body)}\r\n\r\n"
    client.sendall(head.encode() + body)


def serve_client(client, args):
    """Serve one client and close its socket."""
    try:
        client.settimeout(10)
        head = receive_head(client)
        if head is None:
            return
        if args.delay:
            time.sleep(5)
        status, path = status_and_file(head, args.folder)
        if args.verbose:
            print(f"{status} {head.splitlines()[0]!r}", file=sys.stderr)
        answer(client, status, path, args.folder)
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
    finally:
        client.close()


def main():
    """Serve clients one after the other until Ctrl-C."""
    args = get_args()
    if not os.path.isdir(args.folder):
        print(f"error: no folder {args.folder}", file=sys.stderr)
        return 1
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind(("", args.port))
    except OSError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    server.listen(16)
    try:
        while True:
            client, _ = server.accept()
            serve_client(client, args)
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
