"""Broken on purpose: the `thread-pool` mode has a single worker thread, so delayed requests
are served one at a time."""

from conc_patch import load, replace, run

replace(load("httpd.pools"), "DEFAULT_THREADS", 1)

if __name__ == "__main__":
    run()
