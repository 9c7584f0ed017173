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


def test_answers_fit_their_models(mesh_factory: Any) -> None:
    """What a node with a peer, an alert, its update and an ack answers fits each
    route's answer model, field for field (answers forbid undescribed fields), so
    the document describes what clients get and not only what they send."""
    import msgspec

    from node.local_api import api_routes

    mesh = mesh_factory(2)
    a = mesh.nodes[0]
    mesh.connect([(0, 1)])
    sent = a.send(headline="Bloqueo en la carretera federal", regions=["MX-OAX"])
    answers = {
        ("POST", "/api/v1/alerts/{id}/update"): a.api.post(
            f"/api/v1/alerts/{sent}/update", {"severity": "extreme"}
        ),
        ("POST", "/api/v1/alerts/{id}/ack"): a.api.post(
            f"/api/v1/alerts/{sent}/ack", {"state": "seen", "by": "Marta"}
        ),
        ("POST", "/api/v1/peers/invite"): a.api.post("/api/v1/peers/invite", {}),
        ("GET", "/api/v1/alerts/{id}"): a.api.get(f"/api/v1/alerts/{sent}"),
    }
    models = {(r.method, r.path): r.answer for r in api_routes()}
    plain = [
        r for r in api_routes() if r.method == "GET" and "{" not in r.path and r.media == "application/json"
    ]
    answers |= {(r.method, r.path): a.api.get(r.path) for r in plain if r.path != "/api/v1/regions"}
    answers[("GET", "/api/v1/regions")] = a.api.get("/api/v1/regions?q=Oaxaca")
    for route, answer in answers.items():
        try:
            msgspec.convert(answer, models[route])
        except msgspec.ValidationError as exc:
            raise AssertionError(f"{route}: {exc}") from None
    assert answers[("GET", "/api/v1/alerts/{id}")]["updates"] == 1
    assert answers[("GET", "/api/v1/status")]["peers"], "the peer is in the status"


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
            "not_a_server_error,response_schema_conformance",
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
