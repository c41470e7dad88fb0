"""Pre-flight of one submission: which modes answer no request at all (run by the grader).

Strategy: a server that hangs on every request makes every test wait out its own timeout (a
minute each for the concurrency tests): an hour for one submission, for verdicts known in
advance. So before the suite, the grader runs this module inside the submission's isolation
(its network namespace and sandbox uid): each mode's server is started as the suite starts it
and sent a few plain, valid requests at once; a mode whose server answers none of them within
PROBE_TIMEOUT s is printed, and the grader hands the list to the suite (HTTP_UNRESPONSIVE_MODES),
whose conformance cases in those modes then fail at once saying why (they all need a response;
the other tests run as usual, since some pass without one). A server that answers anything, or
cannot start (the suite reports that itself), is not listed. Usage: preflight.py SCRIPT PYTHON
MODE...; prints a JSON list of the unresponsive modes.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from harness.client import Reply, exchange  # noqa: E402
from harness.server import ServerCommand, ServerError, ServerProcess, launch, retire  # noqa: E402

PROBES = (
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET /index.html HTTP/1.0\r\n\r\n",
    b"HEAD / HTTP/1.0\r\n\r\n",
)
PROBE_TIMEOUT = 10.0


def unresponsive(command: ServerCommand, mode: str) -> bool:
    """Say whether the server in `mode` started, but answered none of PROBES in time."""
    try:
        server = launch(command, mode)
    except ServerError:
        return False
    try:
        with ThreadPoolExecutor(len(PROBES)) as pool:
            replies = list(pool.map(lambda probe: ask(server, probe), PROBES))
    finally:
        retire([server], grace=1.0)
    return all(reply.outcome == "timeout" for reply in replies)


def ask(server: ServerProcess, probe: bytes) -> Reply:
    """Send one probe request; return the server's Reply."""
    return exchange(server.port, probe, timeout=PROBE_TIMEOUT, host=server.host)


def main(argv: list[str]) -> int:
    """Print the JSON list of the modes (argv[2:]) in which the server answers nothing."""
    script, python, *modes = argv
    command = ServerCommand(Path(script), python)
    with ThreadPoolExecutor(max(1, len(modes))) as pool:
        flags = list(pool.map(lambda mode: unresponsive(command, mode), modes))
    print(json.dumps([mode for mode, flag in zip(modes, flags, strict=True) if flag]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
