"""Shared fixtures. Hypothesis profiles: `ci` (default) and `thorough` (HYPOTHESIS_PROFILE=thorough).

The suite runs in parallel worker processes (pytest-xdist, `bash scripts/test`), so
nothing here or below may share a port, a file or a database between tests: ports
come from ``node.devmesh.free_port`` (claimed across processes), homes from
``tmp_path``, PostgreSQL tests get a schema of their own (tests/node/conftest.py).
Lanes: ``slow`` marks real processes and long property runs; ``smoke`` marks the few
real-process tests the fast lane keeps (`bash scripts/test --fast`, docs/testing.md).
"""

import os
import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", deadline=None, max_examples=5000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session", autouse=True)
def no_default_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A command run without ``--home`` lands in this worker's own temporary
    folder, never in the real ``~/.local/share/amparo`` shared by every worker
    (and by whoever runs the tests)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("AMPARO_HOME", raising=False)
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
        yield


@pytest.fixture(autouse=True)
def no_unrun_desk_work() -> Iterator[None]:
    """Work a desk test's fake node collected and never ran is closed when the
    test ends, not left for the garbage collector to warn about later."""
    yield
    if (fakes := sys.modules.get("tests.response.test_page_outcome")) is not None:
        fakes.FakeNode.close_unrun()
