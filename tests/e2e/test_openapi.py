"""The local API's OpenAPI description is complete, and schemathesis-generated
requests against a real node never produce a server error (5xx)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from node.config import Config
from node.provision import api_token

pytestmark = pytest.mark.slow


def test_every_route_is_described(mesh_factory: Any) -> None:
    from node.local_api import make_app
    from node.openapi import document

    mesh = mesh_factory(1)
    (a,) = mesh.nodes
    served = a.api.get("/api/v1/openapi.json")
    assert served == document()
    described = set(served["paths"])
    app = make_app(SimpleNamespace(config=Config(name="routes")))  # type: ignore[arg-type] - only the route table is read
    routes = {
        (r.resource.canonical, r.method.lower())
        for r in app.router.routes()
        if r.resource and r.method != "HEAD" and not r.resource.canonical.startswith("/ui")
    }  # /ui is the dashboard: HTML pages for people, tested in a browser (tests/browser)
    missing = {(path, method) for path, method in routes if method not in served["paths"].get(path, {})}
    assert not missing, missing
    assert described


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
