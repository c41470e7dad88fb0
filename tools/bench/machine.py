"""Describing the machine and choosing the load generator (wrk2 if present, else wrk).

Strategy: facts come from /proc, platform, psutil and each tool's version flag; nothing is
guessed silently: a missing tool shows as 'not installed'.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import psutil

from .model import BenchmarkError, LoadGenerator
from .parsing import accepts_rate, first_line
from .processes import run_tool
from .servers import nginx_path


def detect_load_generator() -> LoadGenerator:
    """Prefer wrk2 (or a wrk that accepts -R); else fall back to closed-loop wrk.

    Raises BenchmarkError when no wrk is on PATH.
    """
    fallback = None
    for name in ("wrk2", "wrk"):
        exe = shutil.which(name)
        if exe is None:
            continue
        usage = run_tool([exe, "--help"], 10)
        version = first_line(run_tool([exe, "-v"], 10)).split(" Copyright")[0]
        if accepts_rate(usage):
            return LoadGenerator(exe, version, open_loop=True)
        fallback = fallback or LoadGenerator(exe, version, open_loop=False)
    if fallback is None:
        raise BenchmarkError("neither wrk2 nor wrk is on PATH (Debian: apt-get install wrk)")
    return fallback


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo (or platform's guess)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def tool_version(argv: Sequence[str]) -> str:
    """Return the first line a tool prints for its version flag."""
    try:
        return first_line(run_tool(argv, 10))
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


def describe_machine(
    python: str, loadgen: LoadGenerator, versions: dict[str, str | None]
) -> list[tuple[str, str]]:
    """The facts written into benchmark.md's Machine section."""
    script = "import platform; print(platform.python_implementation(), platform.python_version())"
    py_version = first_line(run_tool([python, "-c", script], 30))
    kind = "open loop, wrk2 -R" if loadgen.open_loop else "closed loop: no -R support"
    http_impl = "httptools" if versions.get("httptools") else "h11"
    loop = "uvloop" if versions.get("uvloop") else "asyncio"
    nginx = tool_version([nginx_path() or "nginx", "-v"]).replace("nginx version: ", "")
    return [
        (
            "CPU",
            f"{cpu_model()}, {os.cpu_count()} logical / "
            f"{psutil.cpu_count(logical=False)} physical cores",
        ),
        ("Memory", f"{psutil.virtual_memory().total / 1024**3:.1f} GiB"),
        ("Load average at start", " ".join(f"{load:.2f}" for load in os.getloadavg())),
        ("OS", platform.platform()),
        ("Python (servers)", f"`{python}`: {py_version}"),
        ("Load generator", f"`{loadgen.exe}`: {loadgen.version} ({kind})"),
        ("curl", " ".join(tool_version(["curl", "--version"]).split()[:2])),
        (
            "Peers",
            f"gunicorn {versions.get('gunicorn')}, uvicorn {versions.get('uvicorn')} "
            f"({http_impl}, {loop}), {nginx}",
        ),
    ]
