"""The CLI as an operator runs it, against real running nodes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from node.cli.client import ApiError
from node.devmesh import LocalNode, node_name
from node.pairing import read_invite
from protocol import NodeRecord
from tests.e2e.test_gossip import wait_until

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
    assert (
        bad_token.returncode != 0
        and "not an Amparo invite" in bad_token.stderr
        and "Traceback" not in bad_token.stderr
    )
    missing = a.amparo("alert", "show", "0" * 64, check=False)
    assert missing.returncode != 0 and "no alert" in missing.stderr
    try:  # every refusal has one shape, {"error": {"code", "message"}}: here, without the token
        urllib.request.urlopen(f"http://127.0.0.1:{a.local_port}/api/v1/status", timeout=10)
        raise AssertionError("the local API answered without its token")
    except urllib.error.HTTPError as exc:
        assert exc.code == 401
        assert json.loads(exc.read()) == {
            "error": {"code": "unauthorized", "message": "missing or wrong API token"}
        }
    for path, params, code, words in [
        (f"/api/v1/alerts/{'0' * 64}", {}, "not-found", "no alert"),  # a use case's refusal
        ("/api/v1/nowhere", {}, "not-found", "Not Found"),  # the HTTP layer's own
        ("/api/v1/alerts", {"region": "MX-OAXX"}, "invalid-input", "MX-OAX"),
    ]:
        with pytest.raises(ApiError) as refused:
            a.api.get(path, **params)
        assert refused.value.code == code and words in str(refused.value), path
    a.stop()
    down = a.amparo("status", check=False)
    assert down.returncode != 0 and "is `amparo run` running" in down.stderr


def test_names_and_ids_people_type_never_make_a_bad_url(mesh_factory: Any) -> None:
    """Spaces, accents and slashes in what people type reach the API encoded:
    a clear answer, never an InvalidURL traceback."""
    mesh = mesh_factory(1)
    (a,) = mesh.nodes
    a.amparo("responder", "add", "Ana María Ruiz", "--role", "viewer")
    removed = a.amparo("responder", "remove", "Ana María Ruiz")
    assert "Removed 'Ana María Ruiz'" in removed.stdout
    names = [r["name"] for r in json.loads(a.amparo("responder", "list", "--json").stdout)["responders"]]
    assert "Ana María Ruiz" not in names
    for odd in ("no such alert", "ñandú/../x", "a?b=c#d"):
        shown = a.amparo("alert", "show", odd, check=False)
        assert shown.returncode != 0 and shown.stderr.strip(), odd
        assert "Traceback" not in shown.stderr and "InvalidURL" not in shown.stderr, shown.stderr
    gone = a.amparo("responder", "remove", "Nadie Conocido", check=False)
    assert gone.returncode != 0 and "Traceback" not in gone.stderr and gone.stderr.strip()


def test_run_shuts_down_cleanly_on_sigterm_and_sigint(mesh_factory: Any) -> None:
    mesh = mesh_factory(2)
    a, b = mesh.nodes
    assert a.stop(signal.SIGTERM) == 0
    assert b.stop(signal.SIGINT) == 0
    assert "Traceback" not in (a.home / "node.log").read_text()
    a.start()  # and it comes back on the same database
    assert a.api.get("/healthz")["ok"]


def test_alert_update_and_cancel_from_the_cli_reach_the_peer(mesh_factory: Any) -> None:
    mesh = mesh_factory(2)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    alert_id = a.amparo(
        "alert", "send", "--region", "MX-OAX", "--severity", "severe", "--headline", "Checkpoint on the road"
    ).stdout.strip()
    mesh.wait_for(alert_id, [b], timeout=20)

    printed = a.amparo(
        "alert", "update", alert_id, "--headline", "Checkpoint moved north", "--severity", "extreme"
    ).stdout.strip()
    assert printed == (
        f"updated {alert_id}: headline 'Checkpoint on the road' → 'Checkpoint moved north'; "
        "severity 'severe' → 'extreme'"
    )  # what it did, under the incident's id
    update_id = a.api.get(f"/api/v1/alerts/{alert_id}")["timeline"][0]["id"]
    assert len(update_id) == 64 and update_id != alert_id
    wait_until(lambda: b.api.get(f"/api/v1/alerts/{alert_id}")["updates"] == 1, what="the update at B")
    cancelled = json.loads(
        a.amparo("alert", "cancel", update_id[:12], "--reason", "Road clear again", "--json").stdout
    )  # given the update's id, it cancels the incident
    assert cancelled["incident"] == alert_id and cancelled["reason"] == "Road clear again"
    cancel_id = cancelled["id"]
    wait_until(lambda: b.api.get(f"/api/v1/alerts/{alert_id}")["cancelled"], what="the cancel at B")

    shown = json.loads(b.amparo("alert", "show", alert_id, "--json").stdout)
    assert [(t["id"], t["msg_type"]) for t in shown["timeline"]] == [
        (update_id, "update"),
        (cancel_id, "cancel"),
    ]
    assert shown["timeline"][0]["headline"] == "Checkpoint moved north"
    assert (shown["headline"], shown["severity"]) == (
        "Checkpoint moved north",
        "extreme",
    )  # the current state
    assert [t["incident"] for t in shown["timeline"]] == [alert_id, alert_id]


def test_init_advertise_puts_the_address_in_the_signed_node_record(tmp_path: Path) -> None:
    node = LocalNode("Colectivo Ejemplo", tmp_path / "nodo")
    advertised = ["203.0.113.7:7170", "amparoficticioxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.onion:7170"]
    node.amparo(
        "init", "--name", node.name, "--no-passphrase", "--kdf-profile", "interactive",
        "--listen", f"127.0.0.1:{node.mesh_port}", "--local", f"127.0.0.1:{node.local_port}",
        "--advertise", advertised[0], "--advertise", advertised[1],
    )  # fmt: skip
    assert json.loads(node.amparo("id", "--json").stdout)["addresses"] == advertised
    node.start()
    try:
        token = node.api.post("/api/v1/peers/invite", {})["token"]
    finally:
        node.stop()
    record, _, _ = read_invite(token, int(time.time() * 1000))  # what a peer receives, signature checked
    assert isinstance(record.body, NodeRecord)
    assert list(record.body.addresses) == advertised


def test_amparo_demo_with_three_nodes(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"  # the demo's temporary homes go here, so we can look for leftovers
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "node.cli", "demo", "--nodes", "3", "--json"],
        capture_output=True, text=True, env=env, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert sorted(report["arrived_ms"]) == sorted(node_name(i) for i in range(3))
    assert len(report["alert"]) == 64 and all(ms >= 0 for ms in report["arrived_ms"].values())
    assert _processes_mentioning(str(scratch)) == []
    assert list(scratch.iterdir()) == []  # the homes are gone too


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\x00", b" ").decode("utf-8", "replace")
        except OSError:
            continue  # exited while we looked
        if text in args:
            found.append(f"{cmdline.parent.name}: {args}")
    return found


@pytest.mark.smoke  # in the fast lane
def test_an_unexpected_error_exits_70_with_one_line_and_the_traceback_in_the_home(tmp_path: Path) -> None:
    """A corrupted database is not an error the CLI knows: no traceback on the terminal,
    exit code 70 (EX_SOFTWARE), and one line saying what failed and where the traceback is."""
    home = tmp_path / "nodo"
    amparo = [sys.executable, "-m", "node.cli", "--home", str(home)]
    init = [*amparo, "init", "--name", "Colectivo Ejemplo", "--no-passphrase", "--kdf-profile", "interactive"]
    subprocess.run(init, capture_output=True, text=True, check=True, timeout=120)
    (home / "amparo.db").write_bytes(b"this is not a SQLite database " * 100)
    passphrase = tmp_path / "backup-passphrase"
    passphrase.write_text("a long enough backup passphrase 7\n")
    done = subprocess.run(
        [*amparo, "backup", "--passphrase-file", str(passphrase), str(tmp_path / "out.amparo")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 70, done.stderr
    assert "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: unexpected DatabaseError at node/") and "`amparo backup`" in line, line
    logs = list((home / "logs").iterdir())
    assert len(logs) == 1 and str(logs[0]) in line
    assert logs[0].stat().st_mode & 0o777 == 0o600
    written = logs[0].read_text("utf-8")
    assert written.startswith("Traceback") and "sqlite3.DatabaseError" in written
