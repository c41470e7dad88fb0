"""The servers to measure: our modes (from `-h`) and the peers, each as a launch command.

Strategy: a ServerSpec per server builds its command line for a given port; the Python
peers are the small apps in tools/peers/ (files read per request, or held in memory), nginx
runs from a filled-in template under the run's temp dir.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .model import HOST, INSTALL_HINT, MEMORY_SUFFIX, MODE_TITLES, PEERS_DIR, Launch, ServerSpec


@dataclass(frozen=True)
class Context:
    """What every launch needs: interpreter, server script, folders, worker count."""

    python: str
    server: Path
    www: Path
    tmp: Path
    workers: int
    server_has_workers: bool


def mode_spec(ctx: Context, mode: str) -> ServerSpec:
    """Our server in one mode; process-pool gets the same --workers as gunicorn sync."""
    extra = ("--workers", str(ctx.workers)) if mode == "process-pool" else ()
    extra = extra if ctx.server_has_workers else ()

    def launch(port: int) -> Launch:
        base = (ctx.python, str(ctx.server), "-p", str(port), "-f", str(ctx.www), "-c", mode)
        return Launch((*base, *extra))

    return ServerSpec(mode, MODE_TITLES.get(mode, mode.replace("-", " ").title()), True, launch)


def gunicorn_launch(ctx: Context, port: int, options: Sequence[str], module: str) -> Launch:
    """gunicorn serving tools/peers/`module`.py (wsgi_files or wsgi_memory)."""
    argv = (ctx.python, "-m", "gunicorn", "--bind", f"{HOST}:{port}", *options)
    argv += ("--log-level", "warning", "--chdir", str(PEERS_DIR), f"{module}:app")
    return Launch(argv, {"BENCH_FOLDER": str(ctx.www)})


def uvicorn_launch(ctx: Context, port: int, module: str) -> Launch:
    """uvicorn, one worker, serving tools/peers/`module`.py (asgi_files or asgi_memory)."""
    argv = (ctx.python, "-m", "uvicorn", "--host", HOST, "--port", str(port), "--workers", "1")
    argv += ("--log-level", "warning", "--no-access-log", "--app-dir", str(PEERS_DIR))
    return Launch((*argv, f"{module}:app"), {"BENCH_FOLDER": str(ctx.www)})


def nginx_launch(ctx: Context, port: int) -> Launch:
    """nginx from tools/peers/nginx.conf.template, everything it writes under a run dir."""
    run_dir = ctx.tmp / f"nginx-{port}"
    run_dir.mkdir(mode=0o755)
    template = (PEERS_DIR / "nginx.conf.template").read_text()
    filled = {"@PORT@": str(port), "@ROOT@": str(ctx.www), "@RUNDIR@": str(run_dir)}
    for key, value in filled.items():
        template = template.replace(key, value)
    (run_dir / "nginx.conf").write_text(template)
    argv = (nginx_path() or "nginx", "-p", f"{run_dir}/", "-c", str(run_dir / "nginx.conf"))
    return Launch((*argv, "-e", str(run_dir / "error.log")))


def peer_spec(ctx: Context, name: str) -> ServerSpec:
    """One peer server by name (see PEER_NAMES).

    gunicorn and uvicorn run twice: with an app that opens the file per request, as a minimal
    app would (wsgi_files, asgi_files), and with one answering from memory (the `-memory`
    peers: wsgi_memory, asgi_memory), their best case for a small file.
    """
    py, www = ctx.python, str(ctx.www)
    sync_options = ("--worker-class", "sync", "--workers", str(ctx.workers))
    gthread_options = ("--worker-class", "gthread", "--workers", "1", "--threads", "8")
    gthread_options += ("--keep-alive", "0")
    table: dict[str, tuple[str, Callable[[int], Launch]]] = {
        "http.server": (
            "python -m http.server (ThreadingHTTPServer)",
            lambda port: Launch((py, "-m", "http.server", "-b", HOST, "-d", www, str(port))),
        ),
        "forking": (
            "http.server + ForkingMixIn",
            lambda port: Launch(
                (py, str(PEERS_DIR / "forking_http_server.py"), "-b", HOST, "-d", www, str(port))
            ),
        ),
        "nginx": ("nginx (1 worker)", lambda port: nginx_launch(ctx, port)),
    }
    apps = (("", "file per request", "wsgi_files", "asgi_files"),)
    apps += ((MEMORY_SUFFIX, "from memory", "wsgi_memory", "asgi_memory"),)
    for suffix, source, wsgi, asgi in apps:
        table[f"gunicorn-sync{suffix}"] = (
            f"gunicorn sync ×{ctx.workers}, {source}",
            lambda port, app=wsgi: gunicorn_launch(ctx, port, sync_options, app),
        )
        table[f"gunicorn-gthread{suffix}"] = (
            f"gunicorn gthread 1×8, {source}",
            lambda port, app=wsgi: gunicorn_launch(ctx, port, gthread_options, app),
        )
        table[f"uvicorn{suffix}"] = (
            f"uvicorn (1 worker), {source}",
            lambda port, app=asgi: uvicorn_launch(ctx, port, app),
        )
    title, launch = table[name]
    return ServerSpec(name, title, False, launch)


def nginx_path() -> str | None:
    """Return nginx's path (PATH, then /usr/sbin, where Debian puts it), or None."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def package_versions(python: str, names: Sequence[str]) -> dict[str, str | None]:
    """Return the installed version of each package for `python` (None if missing)."""
    script = (
        "import importlib.metadata as m, json, sys\n"
        "def v(n):\n"
        "    try: return m.version(n)\n"
        "    except m.PackageNotFoundError: return None\n"
        "print(json.dumps({n: v(n) for n in sys.argv[1:]}))\n"
    )
    output = subprocess.run(
        [python, "-c", script, *names], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output)


def missing_peer_reason(name: str, versions: dict[str, str | None]) -> str | None:
    """Say why a peer cannot run here, or None when it can."""
    package = name.removesuffix(MEMORY_SUFFIX).split("-")[0]
    if package in ("gunicorn", "uvicorn") and not versions.get(package):
        return f"{package} is not installed for this Python ({INSTALL_HINT})"
    if name == "nginx" and nginx_path() is None:
        return "nginx is not installed (Debian: apt-get install nginx)"
    return None
