"""Broken on purpose: a 404 has an empty body instead of an error page."""

from _base import Handler, main


class No404PageHandler(Handler):
    """Empty 404 bodies."""

    def error_body(self, status: int) -> bytes:
        """Return nothing for a 404 (the bug), the usual page otherwise."""
        return b"" if status == 404 else super().error_body(status)


if __name__ == "__main__":
    main(No404PageHandler)
