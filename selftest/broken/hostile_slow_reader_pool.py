"""Broken on purpose: a pool of 32 threads, each sending a whole response however slowly the
client reads (a worker waits up to 2 minutes for room to send), so 50 slow readers hold every
worker (heads are gathered by the front, so slowloris and silent connections cost no worker)."""

from _front import serve_pool

if __name__ == "__main__":
    serve_pool(workers=32, whole_head=True, patience=120.0)
