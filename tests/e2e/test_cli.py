"""The CLI as an operator runs it, against real running nodes."""

from __future__ import annotations

import json
import signal
from typing import Any

import pytest

pytestmark = pytest.mark.slow


def test_operator_workflow_through_the_cli(mesh_factory: Any) -> None:
    mesh = mesh_factory(2)
    a, b = mesh.nodes
    invite = a.amparo("peer", "invite", "--json")
    token = json.loads(invite.stdout)["token"]
    accepted = b.amparo("peer", "accept", token, "--yes")
    assert f"Paired with {a.name!r}" in accepted.stdout

    drawn = a.amparo("peer", "invite", "--qr").stdout
    assert "amparo1-" in drawn and any(ch in drawn for ch in "█▀▄")

    peers = json.loads(b.amparo("peer", "list", "--json").stdout)["peers"]
    assert [p["name"] for p in peers] == [a.name]
    verify = b.amparo("peer", "verify", a.name)
    assert json.loads(a.amparo("id", "--json").stdout)["fingerprint"] in verify.stdout

    sent = a.amparo(
        "alert",
        "send",
        "--region",
        "MX-OAX",
        "--severity",
        "severe",
        "--headline",
        "Defender followed by an unmarked car",
        "--instruction",
        "Call her now",
    )
    alert_id = sent.stdout.strip()
    assert len(alert_id) == 64
    mesh.wait_for(alert_id, [b], timeout=20)
    listing = b.amparo("alert", "list", "--region", "MX")
    assert "Defender followed" in listing.stdout
    assert b.amparo("alert", "list", "--region", "CO").stdout.strip() == "No alerts."
    shown = json.loads(b.amparo("alert", "show", alert_id[:12], "--json").stdout)
    assert shown["instruction"] == "Call her now" and shown["author_name"] == a.name

    status = json.loads(b.amparo("status", "--json").stdout)
    assert status["peers"][0]["name"] == a.name and status["envelopes_stored"] >= 3
    assert "Peers:" in b.amparo("status").stdout

    restricted = a.amparo(
        "alert",
        "send",
        "--region",
        "CO-ANT",
        "--severity",
        "extreme",
        "--headline",
        "Safe house moved",
        "--scope",
        "restricted",
        "--to",
        b.name,
    ).stdout.strip()
    mesh.wait_for(restricted, [b], timeout=20)
    assert (
        json.loads(b.amparo("alert", "show", restricted, "--json").stdout)["headline"] == "Safe house moved"
    )


def test_cli_errors_are_clean(mesh_factory: Any) -> None:
    mesh = mesh_factory(1)
    (a,) = mesh.nodes
    bad_region = a.amparo(
        "alert", "send", "--region", "MX-OAXX", "--severity", "severe", "--headline", "x", check=False
    )
    assert bad_region.returncode != 0
    assert "MX-OAX" in bad_region.stderr and "Traceback" not in bad_region.stderr
    bad_token = a.amparo("peer", "accept", "amparo1-garbage", "--yes", check=False)
    assert bad_token.returncode != 0 and "damaged" in bad_token.stderr and "Traceback" not in bad_token.stderr
    missing = a.amparo("alert", "show", "0" * 64, check=False)
    assert missing.returncode != 0 and "no alert" in missing.stderr
    a.stop()
    down = a.amparo("status", check=False)
    assert down.returncode != 0 and "is `amparo run` running" in down.stderr


def test_run_shuts_down_cleanly_on_sigterm_and_sigint(mesh_factory: Any) -> None:
    mesh = mesh_factory(2)
    a, b = mesh.nodes
    assert a.stop(signal.SIGTERM) == 0
    assert b.stop(signal.SIGINT) == 0
    assert "Traceback" not in (a.home / "node.log").read_text()
    a.start()  # and it comes back on the same database
    assert a.api.get("/healthz")["ok"]
