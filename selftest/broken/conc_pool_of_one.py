"""Broken on purpose: the `thread-pool` mode has a single worker thread, so one slow client
holds everybody up."""

from conc_patch import load, replace, run

replace(load("httpd.strategies"), "DEFAULT_THREADS", 1)

if __name__ == "__main__":
    run()
