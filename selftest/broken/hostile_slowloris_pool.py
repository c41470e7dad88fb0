"""Broken on purpose: a pool of 100 threads that takes a connection at its first bytes and reads
the head with a timeout per recv, not per head, so 200 slowloris connections hold every worker
(silent ones wait in the front's selector; 50 slow readers leave workers to spare)."""

from _front import serve_pool

if __name__ == "__main__":
    serve_pool(workers=100, whole_head=False)
