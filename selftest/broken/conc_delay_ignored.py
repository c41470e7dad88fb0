"""Broken on purpose: -d is accepted but the delay is zero, so overlap proves nothing."""

from conc_patch import load, replace, run

replace(load("httpd.cli"), "DELAY_SECONDS", 0.0)

if __name__ == "__main__":
    run()
