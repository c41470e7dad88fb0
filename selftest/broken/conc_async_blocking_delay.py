"""Broken on purpose: the `async` mode waits out -d with time.sleep, blocking its event loop."""

import asyncio
import time
from types import SimpleNamespace

from conc_patch import load, replace, run


async def blocking_sleep(seconds: float) -> None:
    """Sleep the way a careless coroutine does: the whole event loop stops meanwhile."""
    time.sleep(seconds)


replace(load("httpd.aio"), "asyncio", SimpleNamespace(**{**vars(asyncio), "sleep": blocking_sleep}))

if __name__ == "__main__":
    run()
