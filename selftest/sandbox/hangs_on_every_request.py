"""Sandbox selftest server: accepts every connection and never answers (the slowest to grade)."""

import http.server

from _lab_server import serve


class HangingHandler(http.server.SimpleHTTPRequestHandler):
    """Reads until the client gives up, answers nothing."""

    def handle(self) -> None:
        """Hold the connection open until the client closes it."""
        while self.connection.recv(4096):
            pass


if __name__ == "__main__":
    serve(HangingHandler)
