"""How much the server may hold open: pool sizes, descriptors, connections.

Strategy: at start-up, before the ready line, the soft RLIMIT_NOFILE is raised to the hard limit
and the bounds are checked against it: every open connection may need two descriptors (its
socket and the file it is sent from), every process-pool worker three in the main process. A pool
or a `--max-connections` that cannot fit is a one-line error, not a crash after the ready line;
the default maximum of connections is whatever fits.
"""

from __future__ import annotations

import os
import resource

DEFAULT_THREADS = 16
DEFAULT_PROCESSES = max(4, os.cpu_count() or 1)
RESERVED_DESCRIPTORS = 32
PER_CONNECTION = 2
PER_PROCESS_WORKER = 3


def raise_descriptor_limit() -> int:
    """Raise the soft limit of open descriptors to the hard one (where allowed); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    except (ValueError, OSError):
        pass
    return soft


def connection_bound(mode: str, workers: int | None, wanted: int | None, limit: int) -> int:
    """Return the maximum of open connections for `mode` under a descriptor `limit`.

    Args:
        mode: the `-c` mode (process-pool workers cost descriptors in the main process).
        workers: the `--workers` value, or None for the default pool size.
        wanted: the `--max-connections` value, or None for all that fit.
        limit: the soft RLIMIT_NOFILE.

    Raises:
        ValueError: the pool, or the wanted maximum, does not fit under `limit` (the message says
            what does).
    """
    pool = (workers or DEFAULT_PROCESSES) if mode == "process-pool" else 0
    free = limit - RESERVED_DESCRIPTORS - PER_PROCESS_WORKER * pool
    fits = free // PER_CONNECTION
    if fits < 1:
        most = (limit - RESERVED_DESCRIPTORS - PER_CONNECTION) // PER_PROCESS_WORKER
        raise ValueError(
            f"--workers {pool} needs more than the {limit} open files allowed "
            f"(ulimit -n); at most {max(most, 0)} fit"
        )
    if wanted is not None and wanted > fits:
        raise ValueError(
            f"--max-connections {wanted} needs more than the {limit} open files allowed "
            f"(ulimit -n); at most {fits} fit"
        )
    return wanted or fits
