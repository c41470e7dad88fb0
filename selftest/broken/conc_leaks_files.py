"""Broken on purpose: the file behind each response is never closed (an fd leak per request)."""

from conc_patch import load, replace, run

LEAKED: list[object] = []


def keep_open(self: object) -> None:
    """Hold on to the response's file instead of closing it."""
    LEAKED.append(self.file)


replace(load("httpd.responses").Response, "close", keep_open)

if __name__ == "__main__":
    run()
