"""Broken on purpose: at shutdown the listening socket stays open while requests drain, so new
connections are accepted by the kernel instead of refused, and never answered."""

from conc_patch import load, replace, run


def keep_listening(*args: object) -> None:
    """Do not stop listening (the server merely stops calling accept)."""


replace(load("httpd.dispatcher"), "close_listener", keep_listening)
replace(load("httpd.lifecycle").ShutdownSignals, "refuse_connections_on", keep_listening)

if __name__ == "__main__":
    run()
