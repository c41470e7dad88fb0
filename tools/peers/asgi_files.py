"""Minimal ASGI static-file app: the benchmark's uvicorn peer.

Strategy: resolve the path under BENCH_FOLDER and stream the file in 256 KiB chunks (plain
reads, as a minimal app would), else a short 404. Every response carries `Connection: close`, so
uvicorn closes after it, like the HTTP/1.0 servers it is compared with.
Run it as `BENCH_FOLDER=DIR uvicorn --app-dir tools/peers asgi_files:app`.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from static_files import CHUNK_SIZE, content_type, resolve

Send = Callable[[dict], Awaitable[None]]
Receive = Callable[[], Awaitable[dict]]
NOT_FOUND = b"<html><body><h1>404 Not Found</h1></body></html>\n"


async def app(scope: dict, receive: Receive, send: Send) -> None:
    """Serve GET requests for files under BENCH_FOLDER; answer the lifespan protocol."""
    if scope["type"] == "lifespan":
        await answer_lifespan(receive, send)
        return
    path = resolve(scope["path"]) if scope["method"] == "GET" else None
    if path is None:
        await send_response(send, 404, "text/html", NOT_FOUND)
        return
    await send_file(send, path)


async def answer_lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge startup and shutdown: the app holds no resources."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def response_start(status: int, kind: str, length: int) -> dict:
    """Return the `http.response.start` message for a body of `length` bytes."""
    headers = [
        (b"content-type", kind.encode()),
        (b"content-length", str(length).encode()),
        (b"connection", b"close"),
    ]
    return {"type": "http.response.start", "status": status, "headers": headers}


async def send_response(send: Send, status: int, kind: str, body: bytes) -> None:
    """Send a complete response whose body is in memory."""
    await send(response_start(status, kind, len(body)))
    await send({"type": "http.response.body", "body": body})


async def send_file(send: Send, path: Path) -> None:
    """Send `path` as a 200 response, one chunk at a time."""
    with path.open("rb") as file:
        await send(response_start(200, content_type(path), os.fstat(file.fileno()).st_size))
        while chunk := file.read(CHUNK_SIZE):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
