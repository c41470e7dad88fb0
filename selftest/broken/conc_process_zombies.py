"""Broken on purpose: the `process` mode never reaps a finished child, which stays a zombie.

multiprocessing's own list of children is replaced by one that keeps nothing, or its clean-up
would reap them at each start: the server behaves like one that forks with os.fork and never
calls waitpid.
"""

import multiprocessing.process

from conc_patch import load, replace, run


class KeepsNothing(set):
    """A set that never holds anything: multiprocessing's clean-up finds no child to reap."""

    def add(self, item: object) -> None:
        """Forget `item` at once."""


def forget_child(self: object, sentinel: int) -> None:
    """Stop watching the child's exit and forget it without collecting it (no join)."""
    self.dispatcher.unwatch(sentinel)
    del self.children[sentinel]


replace(vars(multiprocessing.process), "_children", KeepsNothing())
replace(load("httpd.strategies").ProcessStrategy, "_reap", forget_child)

if __name__ == "__main__":
    run()
