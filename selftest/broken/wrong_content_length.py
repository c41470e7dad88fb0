"""Broken on purpose: announces one byte more than the body it sends."""

from _base import Handler, main


class WrongLengthHandler(Handler):
    """Off-by-one Content-Length."""

    def content_length(self, size: int) -> int:
        """Return size + 1 (the bug)."""
        return size + 1


if __name__ == "__main__":
    main(WrongLengthHandler)
