"""Broken on purpose: the `async` mode waits out -d with time.sleep, blocking its event loop."""

import time

from conc_patch import load, replace, run

aio = load("httpd.aio")


def received_then_block(self: object, outcome: object) -> None:
    """Wait the delay the way a careless handler does: the whole event loop stops meanwhile."""
    self.outcome = outcome
    time.sleep(self.settings.delay)
    self._answer()


replace(aio.HttpProtocol, "_received", received_then_block)

if __name__ == "__main__":
    run()
