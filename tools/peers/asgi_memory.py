"""ASGI static-file app answering from memory: uvicorn at its best, beside asgi_files.py.

Strategy: every file up to 1 MiB under BENCH_FOLDER is read once at import, so a GET for one is
a dict lookup and one `send` of bytes already in memory; everything else (the large download,
a 404, the lifespan protocol) goes to asgi_files.app unchanged. The gap between this app and
asgi_files.py is what reading the file per request costs uvicorn.
Run it as `BENCH_FOLDER=DIR uvicorn --app-dir tools/peers asgi_memory:app`.
"""

from __future__ import annotations

from asgi_files import Receive, Send, send_response
from asgi_files import app as file_app
from static_files import small_files

FILES = small_files()


async def app(scope: dict, receive: Receive, send: Send) -> None:
    """Answer a GET for a small file from FILES; hand everything else to asgi_files.app."""
    is_get = scope["type"] == "http" and scope["method"] == "GET"
    cached = FILES.get(scope["path"]) if is_get else None
    if cached is None:
        await file_app(scope, receive, send)
        return
    body, kind = cached
    await send_response(send, 200, kind, body)
