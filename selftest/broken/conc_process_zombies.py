"""Broken on purpose: the `process` mode never reaps a finished child, which stays a zombie."""

from conc_patch import load, replace, run


def forget_child(self: object, sentinel: int) -> None:
    """Stop watching the child's exit without collecting it (no join, no waitpid)."""
    self.dispatcher.unwatch(sentinel)


replace(load("httpd.strategies").ProcessStrategy, "_reap", forget_child)

if __name__ == "__main__":
    run()
