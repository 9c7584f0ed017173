"""Names across the federation on real processes: in the line A — B — C, A is
two hops from C (C accepts A's alerts because B vouches for A), and C names A,
with "vouched by" B, on every channel: ``alert list`` and ``show``, ``watch``,
the dashboard, webhooks (``author_name``, ``author_trust``), CAP ``senderName``
and the Atom feed; after C restarts too (the names come from stored records)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from xml.etree import ElementTree

import feedparser
import pytest

from node.devmesh import LocalMesh, LocalNode
from tests.e2e.harness import LOOPBACK_TARGETS
from tests.e2e.test_allies import Receiver, drained, subscribe
from tests.e2e.test_cap_feeds import fetch
from tests.e2e.test_escalation import PASSWORD, open_signed_in
from tests.e2e.test_stream import watch_in_a_terminal

pytestmark = pytest.mark.slow
CAP = "urn:oasis:names:tc:emergency:cap:1.2"


def named_everywhere(c: LocalNode, alert_id: str, author: str, trust: str, ally: Receiver) -> None:
    """``alert_id`` (by ``author``) is named with ``trust`` on each of C's channels."""
    listed = next(
        x for x in json.loads(c.amparo("alert", "list", "--json").stdout)["alerts"] if x["id"] == alert_id
    )
    shown = json.loads(c.amparo("alert", "show", alert_id, "--json").stdout)
    for doc in (listed, shown):
        assert doc["author_name"] == author, doc
        assert doc["author_trust"]["text"] == trust and doc["author_trust"]["depth"] == 2, doc
    assert f"from:        {author} ({trust})" in c.amparo("alert", "show", alert_id).stdout
    assert f"— {author} ({trust})" in c.amparo("alert", "list").stdout

    count = len(c.alert_ids())
    watched = [
        json.loads(x)
        for x in c.amparo("watch", "--since", "0", "--count", str(count), "--json").stdout.splitlines()
    ]
    assert next(w for w in watched if w["id"] == alert_id)["author_name"] == author
    line = next(
        x
        for x in watch_in_a_terminal(c, "--since", "0", "--count", str(count)).splitlines()
        if alert_id[:12] in x
    )
    assert f"from {author} ({trust})" in line, line

    hooks = [h["alert"] for h in ally.alerts("hook") if h["alert"]["id"] == alert_id]
    assert len(hooks) == 1 and hooks[0]["author_name"] == author and hooks[0]["author_trust"]["text"] == trust

    cap = ElementTree.fromstring(c.amparo("alert", "show", alert_id, "--format", "cap").stdout.encode())
    assert cap.findtext(f"{{{CAP}}}info/{{{CAP}}}senderName") == author
    entries = feedparser.parse(fetch(c, "/feeds/MX.atom")[1]).entries
    assert next(e for e in entries if alert_id in e.id).author == author

    page = html.unescape(
        open_signed_in(f"http://127.0.0.1:{c.local_port}/ui/alerts/{alert_id}", "Vera", PASSWORD)
    )
    assert re.search(rf"{re.escape(author)}\s*<span class=\"trust\">\({re.escape(trust)}\)</span>", page), (
        page[:3000]
    )


def test_an_author_two_hops_away_is_named_at_c_on_every_channel_after_a_restart_too(tmp_path: Path) -> None:
    mesh = LocalMesh(tmp_path / "mesh", 3, settings=LOOPBACK_TARGETS)
    mesh.init_all()
    mesh.start_all()
    ally = Receiver()
    try:
        a, b, c = mesh.nodes
        mesh.connect(mesh.line_edges())  # A — B — C: C never pairs with A
        assert {p["name"] for p in c.api.get("/api/v1/peers")["peers"]} == {b.name}
        subscribe(c, "--region", "MX", "--webhook", ally.url("hook"))
        c.api.post("/api/v1/responders", {"name": "Vera", "role": "viewer", "password": PASSWORD})
        trust = f"vouched by {b.name}"

        first = a.send(headline="Defensora amenazada en Juchitán", scope="public")
        drained(mesh, c, [first])
        named_everywhere(c, first, a.name, trust, ally)

        c.stop()
        c.start()
        second = a.send(headline="Segunda amenaza en Juchitán", scope="public")
        drained(mesh, c, [second])
        for alert_id in (first, second):
            named_everywhere(c, alert_id, a.name, trust, ally)
        # B's own alerts are a peer's at C, and C's own are its own.
        own = c.send(headline="Alerta propia", scope="public")
        assert c.api.get(f"/api/v1/alerts/{own}")["author_trust"]["text"] == "this node"
        from_b = b.send(headline="Alerta de Norte", scope="public")
        mesh.wait_for(from_b, [c])
        assert c.api.get(f"/api/v1/alerts/{from_b}")["author_trust"]["text"] == "peer of this node"
    finally:
        if ally.server is not None:
            ally.down()
        mesh.stop_all()
