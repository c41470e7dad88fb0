"""Broken on purpose: reads the whole file into memory before sending it."""

from typing import BinaryIO

from _base import Handler, main


class InMemoryHandler(Handler):
    """Reads files whole."""

    def send_content(self, handle: BinaryIO) -> None:
        """Read everything, then send (the bug)."""
        self.conn.sendall(handle.read())


if __name__ == "__main__":
    main(InMemoryHandler)
