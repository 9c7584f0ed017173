"""Text from others on a real node: a headline that would forge rows in ``alert
list`` or ``watch`` (newline, U+2028, U+202E) is refused at the protocol level,
and a hostile peer's error body (a newline and ANSI escapes) cannot add a line
to the node's log or reach the terminal raw."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.e2e.harness import ScriptedPeer
from tests.e2e.test_gossip import wait_until
from tests.e2e.test_hostile import HostileListener

pytestmark = pytest.mark.slow

FORGERIES = {
    "newline": "Police raid at the clinic\n3f2a9c1e0b7d  2026-12-06 16:40:00  minor    MX-OAX       All clear",
    "line separator": "Police raid at the clinic\u2028All clear, go home",
    "bidi override": "Police raid at the \u202ecinilc eht",
    "carriage return": "Police raid\rAll clear    ",
    "C1 CSI": "Police raid\x9b2K",
}


def test_headlines_that_forge_rows_are_refused(mesh_factory: Any) -> None:
    (node,) = mesh_factory(1).nodes
    peer = ScriptedPeer()
    peer.pair_with(node)
    forged = {name: peer.alert("placeholder") for name in FORGERIES}
    # ScriptedPeer.alert goes through Alert(), which now refuses these: sign the raw map instead.
    from protocol import codec
    from protocol.signing import PURPOSE_ENVELOPE, sign

    for name, headline in FORGERIES.items():
        doc = {k: v for k, v in codec.decode(forged[name].raw).items() if k != "s"}
        doc["b"] = doc["b"] | {"headline": headline}
        forged[name] = codec.encode(
            doc | {"s": sign(peer.identity.signing_key, PURPOSE_ENVELOPE, codec.encode(doc))}
        )
    honest = peer.alert("Honest alert after the forgeries")
    peer.push(node, [*forged.values(), honest.raw])

    wait_until(lambda: honest.id.hex() in node.alert_ids(), timeout=20, what="the honest alert")
    headlines = [a.get("headline", "") for a in node.api.get("/api/v1/alerts", limit=100)["alerts"]]
    assert headlines == ["Honest alert after the forgeries"]
    rejected = node.api.get("/api/v1/status")["rejected"]
    assert rejected.get("bad-text", 0) >= len(FORGERIES), rejected
    listing = node.amparo("alert", "list").stdout
    assert len(listing.splitlines()) == 1 and "All clear" not in listing


class ErrorBodyListener(HostileListener):
    """Answers every request with 400 and a body written to forge a log line."""

    BODY = (
        "refused\n2026-12-06 16:40:00,000 WARNING amparo.mesh: FORGED-LINE peer Colectivo Honesto cut off"
        "\x1b[2K\x1b]0;owned\x07\r\u2028\u202eFORGED-TAIL"
    )

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request.path)
        return web.Response(status=400, text=self.BODY)


def test_a_peers_error_body_cannot_add_a_line_to_the_log(mesh_factory: Any, tmp_path: Path) -> None:
    mesh = mesh_factory(1)
    (node,) = mesh.nodes
    with ErrorBodyListener(tmp_path / "hostil") as listener:
        hostile = ScriptedPeer(
            "Nodo Hostil Ficticio",
            addresses=(f"127.0.0.1:{listener.port}",),
            tls_fp=listener.fingerprint,
        )
        hostile.pair_with(node)
        node.send(headline="An alert the node pushes to its hostile peer")
        wait_until(lambda: "/mesh/v1/push" in listener.seen, timeout=30, what="a push to the hostile peer")
        log_path = node.home / "node.log"
        wait_until(
            lambda: "FORGED-LINE" in log_path.read_text("utf-8", "replace"),
            timeout=30,
            what="the push failure in the log",
        )
    log = log_path.read_text("utf-8")
    for line in log.splitlines():
        if "FORGED-LINE" in line:
            assert " failed: " in line and "HTTP 400" in line and "FORGED-TAIL" in line, (
                line
            )  # one line, the real one
            assert line.rstrip().endswith("(remote side)"), line  # the peer failed, not this node
            assert " INFO amparo.node: " in line, line  # not a warning: nothing for this operator to fix
        assert not line.startswith("2026-12-06 16:40:00,000"), line
    assert not any(c in log for c in "\x1b\x07\r\u2028\u202e")
