"""``grid``: an empty in-process grid, closed after the test. ``any_grid``: the
same, once with the in-memory wire and once over loopback HTTPS, for tests that
hold for both (the in-memory wire checked against the real one)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.grid.grid import Grid


@pytest.fixture
async def grid(tmp_path: Path) -> AsyncIterator[Grid]:
    built = Grid(tmp_path)
    try:
        yield built
    finally:
        await built.close()


@pytest.fixture(params=["memory", "https"])
async def any_grid(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Grid]:
    built = Grid(tmp_path, https=request.param == "https")
    try:
        yield built
    finally:
        await built.close()
