"""The demo site (www/) as a browser shows it: each page fits the window, no needless scrollbar.

Strategy: our server serves a copy of www/ (through `server_factory`), the suite's headless
Chromium loads each page at a desktop and a phone window size, and the page's scrollable size
must not exceed the window. A short page that scrolls (a margin pushing a 100vh body down, as
the first stylesheet did) fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from concurrency_tests.real_clients import chromium_path, open_browser, require_module
from harness.server import ServerFactory

WWW = Path(__file__).resolve().parent.parent / "www"
PAGES = ["page.html", "index.html", "missing.html"]
WINDOWS = [(1280, 800), (390, 844)]
OVERFLOW = (
    "[document.documentElement.scrollWidth - innerWidth,"
    " document.documentElement.scrollHeight - innerHeight]"
)


@pytest.fixture(scope="module")
def driver() -> Iterator[object]:
    """Playwright's driver for this module's browsers."""
    with require_module("playwright.sync_api").sync_playwright() as started:
        yield started


@pytest.mark.parametrize(("width", "height"), WINDOWS)
def test_demo_pages_fit_the_window(
    server_factory: ServerFactory, driver: object, tmp_path: Path, width: int, height: int
) -> None:
    server = server_factory("thread", tree=WWW)
    with open_browser(driver, chromium_path(), tmp_path / "profile") as browser:
        browser.page.set_viewport_size({"width": width, "height": height})
        for name in PAGES:
            visit = browser.visit(f"http://{server.host}:{server.port}/{name}")
            assert not visit.error, visit.describe()
            wider, taller = browser.page.evaluate(OVERFLOW)
            assert (wider, taller) == (
                0,
                0,
            ), f"{name} at {width}x{height} scrolls: {wider}px too wide, {taller}px too tall"
