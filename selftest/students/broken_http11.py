"""Broken on purpose (one rule: responses are HTTP/1.0): every status line says HTTP/1.1.

threads_processes.py copied from an HTTP/1.1 tutorial; it still closes after each response.
"""

import sys

import threads_processes


def send_head(conn, status, length):
    """Send an HTTP/1.1 status line and the Content-Length."""
    reason = threads_processes.REASONS[status]
    conn.sendall(f"HTTP/1.1 {status} {reason}\r\nContent-Length: {length}\r\n\r\n".encode())


threads_processes.send_head = send_head

if __name__ == "__main__":
    sys.exit(threads_processes.main())
