"""Headless Debian chromium driven by Playwright (its own browser downloads are
never used), plus the real-node fixtures of the end-to-end suite."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import mesh_factory  # noqa: F401 - re-exported fixture

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is required for the dashboard tests: apt-get install -y chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture
def shots() -> Path:
    """Every run writes its screenshots to artifacts/screenshots/ at the top of
    the repository (git-ignored: collect them from there as the run's artifacts).
    docs/screenshots/ is refreshed from there by hand when the pages change;
    the tests never write into docs/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
