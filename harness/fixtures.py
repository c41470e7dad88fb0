"""The fixture tree of conformance/FORMAT.md: build a fresh copy, snapshot it, verify it."""

# Strategy: the tree is described once, as data (relative path -> bytes, plus symlinks and two
# special files: a mode-000 unreadable.txt and a 2 GiB sparse file). Every server gets a fresh
# copy under its own 0755 temp dir, so an unprivileged user can read it. A snapshot maps each
# path to (type, mode, size, content hash), or size+mtime for files of 64 MiB and more; diffing
# two snapshots says exactly what a server added, removed or changed. Servers run in the tree's
# `cwd/`, not next to the served folder: it holds decoy `404.html` and `www/404.html` pages, so a
# server that reads its error page (or anything) from its working directory is caught.

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import random
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

SECRET_MARKER = b"OUTSIDE-ROOT-SECRET-5d41402a"
PAGE_404_MARKER = b"FIXTURE-404-PAGE"
DECOY_404_MARKER = b"DECOY-404-IN-THE-WORKING-DIRECTORY"
WORKDIR = "cwd"
TREES = ("default", "no-404-page")
HASH_LIMIT = 64 * 1024 * 1024
SPARSE_NAME = "huge-sparse.bin"
SPARSE_SIZE = 2 * 1024**3
UNREADABLE_NAME = "unreadable.txt"
SIBLINGS = ("outside", "www-private")
SYMLINKS = {
    "link-inside.html": "page.html",
    "link-outside.txt": "../outside/secret.txt",
    "dir-link-outside": "../outside",
    "link-absolute.txt": "/etc/passwd",
}
_TEXT_NAMES = (
    *("sub/file.txt", "sub/deeper/file.txt", "sub/noindex/file.txt", "with space.txt"),
    *("café.txt", "plus+sign.txt", "100%.txt", "semi;colon.txt", "UPPER.TXT", "日本語.txt"),
    *(".hidden.txt", "noext", UNREADABLE_NAME),
)
_TYPE_NAMES = "html htm css js json txt xml svg png jpg jpeg gif ico pdf wasm woff2 mp4 zip"
_MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "jpg": b"\xff\xd8\xff\xe0", "gif": b"GIF89a", "pdf": b"%PDF"}
Snapshot = dict[str, tuple]


def _html(title: str, body: str) -> bytes:
    """Return a small HTML page."""
    head = f"<!DOCTYPE html>\n<html><head><title>{title}</title></head>\n"
    return f"{head}<body>{body}</body></html>\n".encode()


def _random_bytes(name: str, size: int) -> bytes:
    """Return `size` deterministic pseudo-random bytes seeded by `name`."""
    return random.Random(name).randbytes(size)


def _type_file(ext: str) -> bytes:
    """Return the content of types/a.<ext>: a magic number when the type has one, then text."""
    return _MAGIC.get(ext, b"") + f"FIXTURE types/a.{ext}\n".encode()


@functools.cache
def root_files() -> dict[str, bytes]:
    """Return every regular file of the default served root: relative path -> content.

    The 2 GiB sparse file is not listed (see SPARSE_NAME); unreadable.txt is (mode 000 on disk).
    """
    files = {
        "page.html": _html("page", '<link rel="stylesheet" href="style.css"><img src="image.jpg">'),
        "style.css": b"/* FIXTURE style.css */\nbody { color: #333; }\n",
        "image.jpg": _MAGIC["jpg"] + _random_bytes("image.jpg", 4000) + b"\xff\xd9",
        "404.html": _html("Not Found", "FIXTURE-404-PAGE: no such file"),
        "index.html": _html("index", "FIXTURE index.html"),
        "sub/index.html": _html("sub", "FIXTURE sub/index.html"),
        "all-bytes.bin": bytes(range(256)) * 16,
        "64k-minus-1.bin": _random_bytes("64k-minus-1", 65535),
        "64k.bin": _random_bytes("64k", 65536),
        "64k-plus-1.bin": _random_bytes("64k-plus-1", 65537),
        "10mb.bin": _random_bytes("10mb", 10 * 1024 * 1024),
    }
    files.update({name: f"FIXTURE {name}\n".encode() for name in _TEXT_NAMES})
    files.update({"empty.txt": b"", "one.txt": b"x"})
    files.update({f"types/a.{ext}": _type_file(ext) for ext in _TYPE_NAMES.split()})
    files["types/a.unknownext"] = b"FIXTURE a.unknownext\n"
    files["types/A.PNG"] = _type_file("PNG")
    return files


def tree_files(kind: str = "default") -> dict[str, bytes]:
    """Return the regular files of the named tree ("default" or "no-404-page")."""
    if kind not in TREES:
        raise ValueError(f"unknown fixture tree {kind!r}; expected one of {TREES}")
    files = dict(root_files())
    if kind == "no-404-page":
        del files["404.html"]
    return files


def expected_content(name: str, kind: str = "default") -> bytes:
    """Return the bytes of fixture file `name` (relative to the served root) in tree `kind`.

    Raises: KeyError when the tree has no such regular file.
    """
    return tree_files(kind)[name]


@functools.cache
def outside_markers() -> tuple[bytes, ...]:
    """Return byte strings that only files outside the served root contain."""
    markers = [SECRET_MARKER]
    try:
        first_line = Path("/etc/passwd").read_bytes().split(b"\n", 1)[0]
    except OSError:
        first_line = b""
    if len(first_line) >= 8:
        markers.append(first_line)
    return tuple(markers)


@dataclass
class FixtureTree:
    """One throw-away copy of a fixture tree: `root` is served, `base` holds it and its siblings."""

    base: Path
    root: Path
    kind: str
    snapshot: Snapshot = field(default_factory=dict)
    quick: Snapshot = field(default_factory=dict)

    def changes(self) -> list[str]:
        """Return what changed since the build, comparing content hashes (slow, thorough)."""
        return diff_snapshots(self.snapshot, take_snapshot(self.base, full=True))

    def quick_changes(self) -> list[str]:
        """Return what changed since the build, comparing only stat data (fast)."""
        return diff_snapshots(self.quick, take_snapshot(self.base, full=False))

    @property
    def workdir(self) -> Path:
        """The working directory servers of this tree run in (decoy 404 pages, not served)."""
        return self.base / WORKDIR

    def remove(self) -> None:
        """Delete the whole copy, whatever the server under test did to its modes."""
        for dirpath, dirnames, _ in os.walk(self.base):
            for name in dirnames:
                _chmod_quietly(Path(dirpath, name), 0o755)
        shutil.rmtree(self.base, ignore_errors=True)


def build_tree(kind: str | Path = "default") -> FixtureTree:
    """Build a fresh copy of fixture tree `kind` ("default", "no-404-page", or a folder to copy).

    Returns: the FixtureTree, already snapshotted. Its base is a 0755 temp dir holding the served
    root `www/`, the marker siblings `outside/` and `www-private/`, and the servers' working
    directory `cwd/` with its decoy pages.
    """
    base = Path(tempfile.mkdtemp(prefix="http-suite-"))
    base.chmod(0o755)
    root = base / "www"
    for sibling in SIBLINGS:
        _write(base / sibling / "secret.txt", SECRET_MARKER + b"\n")
    for decoy in ("404.html", "www/404.html"):
        _write(base / WORKDIR / decoy, b"<html><body>" + DECOY_404_MARKER + b"</body></html>\n")
    if isinstance(kind, Path):
        shutil.copytree(kind, root, symlinks=True)
    else:
        _populate(root, kind)
    for dirpath, dirnames, _ in os.walk(base):
        for name in dirnames:
            Path(dirpath, name).chmod(0o755)
    tree = FixtureTree(base, root, str(kind))
    tree.snapshot = take_snapshot(base, full=True)
    tree.quick = take_snapshot(base, full=False)
    return tree


def working_directory(root: Path) -> Path:
    """Return where a server of served folder `root` runs: its tree's cwd/ if it has one."""
    workdir = root.parent / WORKDIR
    return workdir if workdir.is_dir() else root.parent


def _populate(root: Path, kind: str) -> None:
    """Write the files, the symlinks and the special files of tree `kind` under `root`."""
    for name, content in tree_files(kind).items():
        _write(root / name, content)
    for name, target in SYMLINKS.items():
        (root / name).symlink_to(target)
    with open(root / SPARSE_NAME, "wb") as sparse:
        sparse.truncate(SPARSE_SIZE)
    (root / SPARSE_NAME).chmod(0o644)
    (root / UNREADABLE_NAME).chmod(0)


def _write(path: Path, content: bytes) -> None:
    """Write a world-readable file, creating its parent dirs as needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(0o644)


def _chmod_quietly(path: Path, mode: int) -> None:
    """chmod, ignoring failures (used only while cleaning up)."""
    with contextlib.suppress(OSError):
        path.chmod(mode)


def take_snapshot(base: Path, full: bool = True) -> Snapshot:
    """Map every path under `base` (but logs/ and cwd/) to type, mode, size and content identity.

    Args: `full` hashes regular files under HASH_LIMIT; otherwise (and for bigger files) the
    identity is the modification time.
    """
    entries: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(base):
        if Path(dirpath) == base:
            dirnames[:] = [name for name in dirnames if name not in ("logs", WORKDIR)]
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            entries[str(path.relative_to(base))] = _entry(path, full)
    return entries


def _entry(path: Path, full: bool) -> tuple:
    """Return the snapshot entry of one path."""
    info = path.lstat()
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode):
        return ("symlink", os.readlink(path))
    if stat.S_ISDIR(info.st_mode):
        return ("dir", oct(mode))
    if not stat.S_ISREG(info.st_mode):
        return ("special", oct(mode))
    if full and info.st_size < HASH_LIMIT and os.access(path, os.R_OK):
        return ("file", oct(mode), info.st_size, _digest(path))
    return ("file", oct(mode), info.st_size, info.st_mtime_ns)


def _digest(path: Path) -> str:
    """Return a content hash of a file."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "blake2b").hexdigest()[:32]


def diff_snapshots(before: Snapshot, after: Snapshot) -> list[str]:
    """Return human lines for paths added, removed or changed between two snapshots."""
    lines = [f"added {name}" for name in sorted(after.keys() - before.keys())]
    lines += [f"removed {name}" for name in sorted(before.keys() - after.keys())]
    for name in sorted(before.keys() & after.keys()):
        if before[name] != after[name]:
            lines.append(f"changed {name}: {before[name]} -> {after[name]}")
    return lines
