"""Broken on purpose: a second SIGINT does not force the exit; the server keeps draining."""

from conc_patch import load, replace, run

lifecycle = load("httpd.lifecycle")


class PatientSignals(lifecycle.ShutdownSignals):
    """Starts the graceful shutdown on the first signal and ignores every later one."""

    def handle(self, signum: int, frame: object = None) -> None:
        """Only the first signal counts."""
        if not self.received:
            super().handle(signum, frame)


replace(load("httpd.cli"), "ShutdownSignals", PatientSignals)

if __name__ == "__main__":
    run()
