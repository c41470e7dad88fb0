"""The benchmark behind tools/benchmark.py: our modes against the servers people would use.

Strategy: build a throw-away folder (page.html, a large file), then start each of our modes and
each peer in turn on a free loopback port in its own session; warm it up, drive it with wrk
(wrk2's open-loop -R10000 when installed, else closed-loop wrk) several times and keep the best
run, then download the large file with curl while sampling the server's RSS. Everything started
is stopped in a `finally` (SIGINT, SIGKILL of the group after a grace period, reap). The results
become a Markdown report and a PNG chart.

Modules, from the bottom up: model (the data), parsing (wrk, curl, sizes, -h text), targets
(the course's goals as checks), markdown and chart (the report), processes (start, wait, stop),
measure (wrk runs, downloads, RSS), servers (our modes and the peers), machine (what runs
where), folder (the served files), run (one whole run) and cli (the command line).
"""
