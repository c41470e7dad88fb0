"""Sandbox selftest server: on start-up, tries to write beside and above its served folder.

A real submission saved POST bodies to `<folder><path>`, `../` included; in the sandbox those
writes must fail (read-only filesystem), and the server logs the failure like a careful one.
"""

import argparse
import sys
from pathlib import Path

from _lab_server import serve

TARGETS = ("../escaped.txt", "../../escaped.txt")


def write_outside(args: argparse.Namespace) -> None:
    """Try each write outside the folder; log each failure on stderr."""
    for target in TARGETS:
        try:
            (Path(args.folder) / target).write_text("written from inside the sandbox\n")
        except OSError as exc:
            print(f"could not save {target}: {exc}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    serve(on_listening=write_outside)
