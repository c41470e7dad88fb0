"""Broken on purpose: the `process` mode never reaps a finished child, which stays a zombie."""

from conc_patch import load, replace, run


def forget_child(self: object, exit_reader: int) -> None:
    """Stop watching the child's exit without collecting it (no waitpid)."""
    self.dispatcher.unwatch(exit_reader)


replace(load("httpd.strategies").ProcessStrategy, "_reap", forget_child)

if __name__ == "__main__":
    run()
