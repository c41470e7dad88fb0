"""Broken on purpose: the file behind each response is never closed (an fd leak per request)."""

from conc_patch import load, replace, run

LEAKED: list[object] = []


def keep_open(self: object) -> None:
    """Forget the first part of the response without closing its file."""
    LEAKED.append(self.parts.popleft())


replace(load("httpd.transfer").Transfer, "_drop_first", keep_open)

if __name__ == "__main__":
    run()
