"""Broken on purpose: the `thread` mode serves one client at a time (the single strategy)."""

from conc_patch import load, replace, run

replace(load("httpd.cli").STRATEGIES, "thread", "httpd.strategies:SingleStrategy")

if __name__ == "__main__":
    run()
