"""Broken on purpose (one rule: status codes): every response says 200 OK, error pages too.

threads_processes.py whose status line always reads 200; the 404, 405 and 400 pages are still
sent, so only the codes are wrong.
"""

import sys

import threads_processes


def send_head(conn, status, length):
    """Send a 200 status line whatever `status` is, and the Content-Length."""
    conn.sendall(f"HTTP/1.0 200 OK\r\nContent-Length: {length}\r\n\r\n".encode("ascii"))


threads_processes.send_head = send_head

if __name__ == "__main__":
    sys.exit(threads_processes.main())
