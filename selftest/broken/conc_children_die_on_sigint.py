"""Broken on purpose: forked children keep the default SIGINT action, so a Ctrl-C to the process
group kills them mid-response."""

import signal

from conc_patch import load, replace, run

strategies = load("httpd.strategies")
careful_become_worker = strategies.become_worker


def become_fragile_worker(*args: object) -> None:
    """Set up the child as usual, except that SIGINT kills it."""
    careful_become_worker(*args)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


replace(strategies, "become_worker", become_fragile_worker)

if __name__ == "__main__":
    run()
