#!/usr/bin/env python3
"""Benchmark http_server.py's concurrency modes against the servers people would otherwise use.

A thin entry point over the bench package (tools/bench/); `--help` lists the options. The report
goes to a fresh benchmark-runs/<UTC time>/ folder unless --output names a file.
"""

import sys

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
