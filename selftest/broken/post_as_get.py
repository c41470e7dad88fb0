"""Broken on purpose: serves POST like GET instead of answering 405."""

from _base import Handler, main


class PostAsGetHandler(Handler):
    """Accepts POST."""

    def method_allowed(self, method: str) -> bool:
        """Allow GET and POST (the bug)."""
        return method in ("GET", "POST")


if __name__ == "__main__":
    main(PostAsGetHandler)
