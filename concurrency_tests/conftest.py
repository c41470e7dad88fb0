"""Mode markers of the concurrency tests: `only_modes(...)` and `except_modes(...)`."""

# Strategy: a test about some modes only (the thread model, the sequential `single` mode) says so
# with a marker; items whose `mode` parameter it rules out are deselected, not skipped, so a
# scorecard never lists a check for a mode it says nothing about. Unmarked tests run in every
# mode the plugin selected.

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Register the two mode markers (the suite runs with --strict-markers)."""
    config.addinivalue_line("markers", "only_modes(*modes): run only in these -c modes")
    config.addinivalue_line("markers", "except_modes(*modes): run in every -c mode but these")


def applies_to(item: pytest.Item) -> bool:
    """Say whether an item's mode markers allow its `mode` parameter (True when it has none)."""
    params = getattr(item, "callspec", None)
    if params is None or "mode" not in params.params:
        return True
    mode = params.params["mode"]
    only = item.get_closest_marker("only_modes")
    excluded = item.get_closest_marker("except_modes")
    return (only is None or mode in only.args) and (excluded is None or mode not in excluded.args)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the items whose mode markers rule out their mode."""
    dropped = [item for item in items if not applies_to(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if applies_to(item)]
