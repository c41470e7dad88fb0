"""Shared by the conc_* broken servers: load our server's modules, replace one thing, run it."""

# Strategy: each conc_* script is our own server with exactly one deliberate fault, made by
# replacing one attribute before `main()` runs. `replace` insists the attribute exists, so a
# rename in httpd/ breaks the self-test loudly instead of leaving a silently correct "broken" one.

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import NoReturn

# In the harness's sandbox this script runs from a copy of its folder; HTTPD_REPO then says where
# the repository (its httpd/ shown read-only) is.
REPO = Path(os.environ.get("HTTPD_REPO") or Path(__file__).resolve().parents[2])


def load(name: str) -> ModuleType:
    """Import module `name` of our server (the repository root goes first on sys.path)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    return importlib.import_module(name)


def replace(owner: object, name: str, value: object) -> None:
    """Set `owner.name` (or `owner[name]` for a dict) to `value`; it must already exist."""
    if isinstance(owner, dict):
        if name not in owner:
            raise SystemExit(f"broken server out of date: no key {name!r} to replace")
        owner[name] = value
        return
    if not hasattr(owner, name):
        raise SystemExit(f"broken server out of date: {owner!r} has no {name!r} to replace")
    setattr(owner, name, value)


def run() -> NoReturn:
    """Run our server's command line with the fault in place."""
    sys.exit(load("httpd.cli").main())
