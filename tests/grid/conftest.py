"""The ``grid`` fixture: an empty in-process grid, closed after the test."""

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
