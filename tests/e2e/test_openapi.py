"""A real node serves the generated OpenAPI description, and schemathesis-generated
requests against it never produce a server error (5xx)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from node.provision import api_token

pytestmark = pytest.mark.slow


def test_the_node_serves_the_generated_description(mesh_factory: Any) -> None:
    """A real node serves the document generated from its route tables; that every
    route is described (and every description served) is tests/node/test_contract.py."""
    from node.local_api import api_routes
    from node.openapi import document

    mesh = mesh_factory(1)
    (a,) = mesh.nodes
    assert a.api.get("/api/v1/openapi.json") == document(api_routes())


def test_schemathesis_finds_no_server_errors(mesh_factory: Any, tmp_path: Path) -> None:
    mesh = mesh_factory(1)
    (a,) = mesh.nodes
    base = f"http://127.0.0.1:{a.local_port}"
    cli = shutil.which("schemathesis") or str(Path(sys.executable).parent / "schemathesis")
    result = subprocess.run(
        [
            cli,
            "run",
            f"{base}/api/v1/openapi.json",
            "--url",
            base,
            "-H",
            f"Authorization: Bearer {api_token(a.home)}",
            "--checks",
            "not_a_server_error",
            "--exclude-path",
            "/api/v1/stream",
            "--max-examples",
            "25",
            "--workers",
            "1",
            "--seed",
            "7",
            "--request-timeout",
            "20",
            "--warnings",
            "off",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert a.api.get("/healthz")["ok"]
