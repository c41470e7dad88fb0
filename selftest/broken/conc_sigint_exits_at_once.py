"""Broken on purpose: the first SIGINT or SIGTERM exits at once, killing requests in flight."""

from conc_patch import load, replace, run

lifecycle = load("httpd.lifecycle")


class ImpatientSignals(lifecycle.ShutdownSignals):
    """Treats the first shutdown signal as the forcing second one."""

    def handle(self, signum: int, frame: object = None) -> None:
        """Force the exit now."""
        raise lifecycle.ForcedExit(signum)


replace(load("httpd.cli"), "ShutdownSignals", ImpatientSignals)

if __name__ == "__main__":
    run()
