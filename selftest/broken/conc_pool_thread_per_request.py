"""Broken on purpose: the `thread-pool` mode starts a new thread per request (no pool at all)."""

from conc_patch import load, replace, run

replace(load("httpd.cli").STRATEGIES, "thread-pool", "httpd.strategies:ThreadStrategy")

if __name__ == "__main__":
    run()
