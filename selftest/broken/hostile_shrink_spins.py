"""Broken on purpose: streams a file with os.sendfile up to the size it had when the response
began, counting a return of 0 as progress, so a file that shrinks mid-send spins for ever with
the connection open (the select-mode bug of issue 10)."""

import os
from typing import BinaryIO

from _base import Handler, main


class SpinningHandler(Handler):
    """Sends to the announced size, whatever the file does."""

    def send_content(self, handle: BinaryIO) -> None:
        """Loop os.sendfile until the offset reaches the original size (0 never ends it)."""
        self.conn.settimeout(None)
        offset, size = 0, os.fstat(handle.fileno()).st_size
        while offset < size:
            offset += os.sendfile(self.conn.fileno(), handle.fileno(), offset, size - offset)


if __name__ == "__main__":
    main(SpinningHandler)
