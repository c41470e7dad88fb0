"""The command line of tools/benchmark.py: options, the check for psutil, main.

Strategy: only the standard library and the package's pure modules are imported at first, so
`--help` works in any environment; the measuring modules (psutil) are imported once the
options are parsed and psutil is known to be there, else one line says how to install it.
The report goes to a fresh folder, benchmark-runs/<UTC time>/, unless --output names a file:
the committed benchmark.md is only ever written on request.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .model import INSTALL_HINT, PEER_NAMES, REPO, BenchmarkError
from .parsing import parse_size
from .processes import progress

RUNS_DIR = REPO / "benchmark-runs"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="benchmark.py",
        description="Benchmark http_server.py's modes against http.server, gunicorn, uvicorn "
        "and nginx with wrk, and write a Markdown report plus a PNG chart.",
        epilog="Needs wrk (wrk2 if on PATH), curl, nginx, and the [bench] extra for gunicorn, "
        f"uvicorn, matplotlib and psutil ({INSTALL_HINT}, or tox -e bench). A missing piece "
        "is named in one line at the start, and its row or chart is left out.",
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="one 5 s run per server, a 256 MiB large file")
    add("--modes", help="comma-separated modes (default: every mode in -h; 'none' for none)")
    add("--peers", help=f"comma-separated peers (default: all of {', '.join(PEER_NAMES)})")
    add(
        "--output",
        metavar="PATH",
        type=Path,
        help="report file, the chart beside it as .png (default: a new "
        "benchmark-runs/<UTC time>/benchmark.md; name benchmark.md to replace the committed one)",
    )
    add("--duration", metavar="S", type=int, help="seconds per wrk run (30; quick 5)")
    add("--runs", metavar="N", type=int, help="wrk runs per server, best kept (3; quick 1)")
    add("--server", metavar="PATH", type=Path, default=REPO / "http_server.py", help="our server")
    add("--python", metavar="EXE", default=sys.executable, help="interpreter for the servers")
    add(
        "--large-file-size",
        metavar="SIZE",
        type=parse_size,
        help="size of the large-file download (default 1G; quick 256M; 0 skips it)",
    )
    add("--no-chart", action="store_true", help="do not draw the PNG chart")
    return parser.parse_args(argv)


def default_output() -> Path:
    """Return a fresh benchmark-runs/<UTC time>/benchmark.md path (the folder is not made)."""
    return RUNS_DIR / f"{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}" / "benchmark.md"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return 0, or 1 when it could not run or a server was not measured."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if importlib.util.find_spec("psutil") is None:
        print(
            f"benchmark.py: psutil is not installed for this Python: {INSTALL_HINT}",
            file=sys.stderr,
        )
        return 1
    from .run import run_benchmark, write_outputs

    output = args.output or default_output()
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"benchmark.py: cannot make {output.parent}: {error.strerror}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    tmp = Path(tempfile.mkdtemp(prefix="benchmark-"))
    try:
        report = run_benchmark(args, tmp)
        write_outputs(report, output)
    except BenchmarkError as error:
        print(f"benchmark.py: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("benchmark.py: interrupted; every server it started was stopped", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    progress(f"done in {report.elapsed_s / 60:.1f} min")
    return 1 if any(result.best is None for result in report.results) else 0
