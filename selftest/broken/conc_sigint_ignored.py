"""Broken on purpose: SIGINT is ignored, so Ctrl-C never stops the server."""

import signal

from conc_patch import load, replace, run

lifecycle = load("httpd.lifecycle")


class DeafSignals(lifecycle.ShutdownSignals):
    """Installs the usual handlers, then ignores SIGINT."""

    def __init__(self) -> None:
        super().__init__()
        signal.signal(signal.SIGINT, signal.SIG_IGN)


replace(load("httpd.cli"), "ShutdownSignals", DeafSignals)

if __name__ == "__main__":
    run()
