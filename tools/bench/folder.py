"""The served folder: the course's 1260-byte page.html and a large file, in a temp dir.

Strategy: real (not sparse) files, made readable for nginx's unprivileged worker.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .model import LARGE_FILE, PAGE, PAGE_SIZE, BenchmarkError
from .parsing import format_size
from .processes import progress


def page_html(size: int = PAGE_SIZE) -> bytes:
    """Return an HTML page of exactly `size` bytes (the course's page.html is 1260)."""
    head = b"<!DOCTYPE html>\n<html>\n<head><title>Benchmark page</title></head>\n<body>\n<p>"
    tail_ = b"</p>\n</body>\n</html>\n"
    filler = b"All work and no play makes a benchmark a dull page. " * (size // 40)
    return head + filler[: size - len(head) - len(tail_)] + tail_


def write_large_file(path: Path, size: int) -> None:
    """Write a real (not sparse) file of `size` bytes, repeating one random MiB."""
    block = os.urandom(1024 * 1024)
    with path.open("wb") as file:
        for _ in range(size // len(block)):
            file.write(block)
        file.write(block[: size % len(block)])


def make_site(tmp: Path, large_file_size: int) -> Path:
    """Create the served folder under `tmp`, readable by nginx's unprivileged worker."""
    tmp.chmod(0o755)
    www = tmp / "www"
    www.mkdir(mode=0o755)
    (www / PAGE).write_bytes(page_html())
    if large_file_size:
        if shutil.disk_usage(tmp).free < large_file_size + 256 * 1024**2:
            raise BenchmarkError(f"not enough space in {tmp} for the large file")
        progress(f"writing a {format_size(large_file_size)} file in {www}")
        write_large_file(www / LARGE_FILE, large_file_size)
    for path in www.iterdir():
        path.chmod(0o644)
    return www
