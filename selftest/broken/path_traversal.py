"""Broken on purpose: joins the target to the folder without checking, so `..` escapes it."""

import urllib.parse
from pathlib import Path

from _base import Handler, main


class TraversalHandler(Handler):
    """Resolves targets naively."""

    def resolve(self, target: str) -> Path | None:
        """Join the decoded path to the root as is (the bug)."""
        return Path(str(self.root) + urllib.parse.unquote(target.split("?", 1)[0]))


if __name__ == "__main__":
    main(TraversalHandler)
