"""WSGI static-file app answering from memory: gunicorn at its best, beside wsgi_files.py.

Strategy: every file up to 1 MiB under BENCH_FOLDER is read once at import (before gunicorn
forks its workers, with --preload, or once per worker), so a GET for one returns bytes already
in memory; everything else goes to wsgi_files.app unchanged. The gap between this app and
wsgi_files.py is what opening the file per request costs gunicorn.
Run it as `BENCH_FOLDER=DIR gunicorn --chdir tools/peers wsgi_memory:app`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from static_files import small_files
from wsgi_files import app as file_app

FILES = small_files()


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Answer a GET for a small file from FILES; hand everything else to wsgi_files.app."""
    is_get = environ["REQUEST_METHOD"] == "GET"
    cached = FILES.get(environ.get("PATH_INFO", "/")) if is_get else None
    if cached is None:
        return file_app(environ, start_response)
    body, kind = cached
    start_response("200 OK", [("Content-Type", kind), ("Content-Length", str(len(body)))])
    return [body]
