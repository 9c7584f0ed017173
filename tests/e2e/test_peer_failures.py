"""``amparo status`` and ``amparo peer list`` show each peer's last failed call and
whose side failed (issue 12): an operator whose alerts do not reach an ally learns
from one command whether to fix this node or to call the ally. The failure text
carries the peer's own error body, so it is escaped like every other text a peer
supplies and stays on its own line."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import ScriptedPeer
from tests.e2e.test_gossip import wait_until
from tests.e2e.test_text_from_others import ErrorBodyListener

pytestmark = pytest.mark.slow


def closed_port() -> int:
    """A port nothing listens on: bound once for a free number, then closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _failure(node: Any, name: str) -> dict[str, Any] | None:
    peers = node.api.get("/api/v1/status")["peers"]
    return next(p for p in peers if p["name"] == name)["last_failure"]


def test_status_shows_a_peers_last_failure_and_whose_side(mesh_factory: Any, tmp_path: Path) -> None:
    (node,) = mesh_factory(1).nodes
    gone = ScriptedPeer("Nodo Apagado", addresses=(f"127.0.0.1:{closed_port()}",))
    gone.pair_with(node)  # the node dials it back at once (reconcile), and fails
    with ErrorBodyListener(tmp_path / "hostil") as listener:
        hostile = ScriptedPeer(
            "Nodo Hostil Ficticio", addresses=(f"127.0.0.1:{listener.port}",), tls_fp=listener.fingerprint
        )
        hostile.pair_with(node)
        node.send(headline="An alert neither peer will take")
        wait_until(
            lambda: _failure(node, gone.name) is not None, timeout=30, what="the closed port's failure"
        )
        wait_until(lambda: _failure(node, hostile.name) is not None, timeout=30, what="the hostile failure")

        failure = _failure(node, gone.name)
        assert failure is not None and failure["at"] > 0
        assert (
            " peer failed (remote side): " in failure["text"] and "Connect call failed" in failure["text"]
        ), failure
        for command in (("status",), ("peer", "list")):
            shown = node.amparo(*command).stdout.splitlines()  # the listener still answers: its body last
            (row,) = [i for i, line in enumerate(shown) if gone.name in line]
            assert "last failure" not in shown[row] and "(remote side)" in shown[row + 1], (command, shown)
            assert shown[row + 1].lstrip().startswith("last failure "), (command, shown)
            # The hostile body (newline, ANSI, U+2028, U+202E) is one escaped line, never a row of its own.
            forged = [line for line in shown if "FORGED" in line]
            assert len(forged) == 1 and forged[0].lstrip().startswith("last failure "), (command, forged)
            assert "FORGED-TAIL" in forged[0] and "(remote side)" in forged[0], forged
            assert not any(c in "\n".join(shown) for c in "\x1b\x07\r\u2028\u202e"), (command, shown)
            as_json = json.loads(node.amparo(*command, "--json").stdout)["peers"]
            assert "(remote side)" in {p["name"]: p["last_failure"] for p in as_json}[gone.name]["text"]


def _peer(node: Any, name: str) -> dict[str, Any]:
    peers = json.loads(node.amparo("status", "--json").stdout)["peers"]
    found: dict[str, Any] = next(p for p in peers if p["name"] == name)
    return found


def test_a_stopped_peer_is_failing_at_once_and_up_again_when_back(mesh_factory: Any) -> None:
    """Issue 13 item 8: the push that fails turns the peer "failing" right away (not
    after the liveness window), and the next push that succeeds turns it "up"."""
    mesh = mesh_factory(2)
    a, c = mesh.nodes
    mesh.connect([(0, 1)])  # A invites, C accepts with the fingerprint confirmed
    a.send(headline="Before the outage")
    wait_until(lambda: _peer(a, c.name)["state"] == "up", timeout=30, what="C up at A")
    assert _peer(a, c.name)["up"] is True and _peer(a, c.name)["last_failure"] is None

    c.stop()
    a.send(headline="While C is stopped")
    wait_until(lambda: _peer(a, c.name)["state"] == "failing", timeout=30, what="C failing at A")
    row = _peer(a, c.name)
    assert row["up"] is False and row["last_failure"] is not None
    assert row["last_seen"] is not None  # heard from a moment ago: only the failure says it is gone
    assert a.api.get("/api/v1/status")["peers_up"] == 0
    shown = [line for line in a.amparo("status").stdout.splitlines() if c.name in line]
    assert len(shown) == 1 and " failing " in shown[0], shown

    c.start()
    wait_until(lambda: _peer(a, c.name)["state"] == "up", timeout=90, what="C up again at A after the retry")
    assert _peer(a, c.name)["up"] is True


def test_peer_list_says_whether_the_fingerprint_was_verified(mesh_factory: Any) -> None:
    """The invitee confirmed the inviter's fingerprint (devmesh accepts with it
    confirmed); the inviter never read the invitee's, so it is not verified there."""
    mesh = mesh_factory(2)
    a, c = mesh.nodes
    mesh.connect([(0, 1)])
    (at_c,) = [line for line in c.amparo("peer", "list").stdout.splitlines() if a.name in line]
    (at_a,) = [line for line in a.amparo("peer", "list").stdout.splitlines() if c.name in line]
    assert "verified yes" in at_c and "verified no" in at_a, (at_c, at_a)
    assert json.loads(c.amparo("peer", "list", "--json").stdout)["peers"][0]["verified"] is True
    assert json.loads(a.amparo("peer", "list", "--json").stdout)["peers"][0]["verified"] is False
