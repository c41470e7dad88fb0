"""Path resolution shared by the benchmark's Python peers (ASGI and WSGI apps).

Strategy: take the served folder from the BENCH_FOLDER environment variable (the benchmark sets
it), map a URL path onto a regular file inside that folder, and refuse anything that would
resolve outside it. Deliberately small: the peers should cost what a minimal app costs.
"""

from __future__ import annotations

import mimetypes
import os
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(os.environ.get("BENCH_FOLDER", ".")).resolve()
CHUNK_SIZE = 256 * 1024


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
