"""Broken on purpose: saves what a POST sends into the served folder (then answers 405)."""

from _base import Handler, main


class WritingHandler(Handler):
    """Writes request heads to disk."""

    def method_allowed(self, method: str) -> bool:
        """Log POSTs into the served folder (the bug), then refuse them as usual."""
        if method == "POST":
            with open(self.root / "posted.txt", "a") as log:
                log.write("a POST arrived\n")
        return super().method_allowed(method)


if __name__ == "__main__":
    main(WritingHandler)
