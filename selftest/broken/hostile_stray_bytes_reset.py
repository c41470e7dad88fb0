"""Broken on purpose: closes the connection right after the response, without draining what the
client sent after its head, so the kernel resets it and the end of a large body is lost."""

from _base import Handler, main


class AbruptCloseHandler(Handler):
    """Closes at once."""

    def close(self) -> None:
        """Close with any unread input still queued (the bug: the close becomes a reset)."""
        self.conn.close()


if __name__ == "__main__":
    main(AbruptCloseHandler)
