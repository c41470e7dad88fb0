"""Minimal WSGI static-file app: the benchmark's gunicorn peer (sync and gthread workers).

Strategy: resolve the path under BENCH_FOLDER, answer 200 with Content-Length and hand the open
file to the server's `wsgi.file_wrapper` (gunicorn turns it into sendfile), else a short 404.
Run it as `BENCH_FOLDER=DIR gunicorn --chdir tools/peers wsgi_files:app`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from wsgiref.util import FileWrapper

from static_files import CHUNK_SIZE, content_type, resolve

NOT_FOUND = b"<html><body><h1>404 Not Found</h1></body></html>\n"


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Serve GET requests for files under BENCH_FOLDER; everything else is a 404 or 405."""
    if environ["REQUEST_METHOD"] != "GET":
        start_response("405 Method Not Allowed", [("Allow", "GET"), ("Content-Length", "0")])
        return [b""]
    path = resolve(environ.get("PATH_INFO", "/"))
    if path is None:
        headers = [("Content-Type", "text/html"), ("Content-Length", str(len(NOT_FOUND)))]
        start_response("404 Not Found", headers)
        return [NOT_FOUND]
    file = path.open("rb")
    size = os.fstat(file.fileno()).st_size
    start_response("200 OK", [("Content-Type", content_type(path)), ("Content-Length", str(size))])
    wrapper = environ.get("wsgi.file_wrapper", FileWrapper)
    return wrapper(file, CHUNK_SIZE)
