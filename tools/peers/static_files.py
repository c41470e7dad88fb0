"""Path resolution shared by the benchmark's Python peers (ASGI and WSGI apps).

Strategy: take the served folder from the BENCH_FOLDER environment variable (the benchmark sets
it), map a URL path onto a regular file inside that folder, and refuse anything that would
resolve outside it. Deliberately small: the peers should cost what a minimal app costs. The
in-memory apps also take `small_files`: every file up to MEMORY_LIMIT read once at start-up.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(os.environ.get("BENCH_FOLDER", ".")).resolve()
CHUNK_SIZE = 256 * 1024
MEMORY_LIMIT = 1024 * 1024


def resolve(url_path: str, root: Path = ROOT) -> Path | None:
    """Return the regular file under `root` that `url_path` names, or None if there is none."""
    relative = unquote(url_path.split("?", 1)[0]).lstrip("/") or "index.html"
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def content_type(path: Path) -> str:
    """Return the Content-Type for `path`, guessed from its extension."""
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def small_files(root: Path = ROOT, limit: int = MEMORY_LIMIT) -> dict[str, tuple[bytes, str]]:
    """Read every regular file under `root` of at most `limit` bytes.

    Returns: {URL path ("/page.html"): (body, Content-Type)}; larger files are left out, for
    the app to stream from disk as the file-reading apps do.
    """
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.stat().st_size <= limit:
            url = "/" + path.relative_to(root).as_posix()
            found[url] = (path.read_bytes(), content_type(path))
    return found
