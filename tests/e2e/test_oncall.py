"""On-call hand-over on a real node: through the CLI and through the API, both
people are notified on their channels (real Apprise json:// to a local
catcher), and the hand-over record says whom the notice reached."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import LOOPBACK_TARGETS
from tests.e2e.test_escalation import Catcher
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow


def test_hand_over_notifies_both_people_and_is_recorded(mesh_factory: Any) -> None:
    mesh = mesh_factory(1, **LOOPBACK_TARGETS)
    (b,) = mesh.nodes
    catcher = Catcher()
    try:
        for name in ("Ana", "Bruno"):
            b.amparo("responder", "add", name, "--channel", catcher.url(name))
        b.amparo("responder", "add", "Carmen")  # no channel
        b.amparo("oncall", "schedule", "--responder", "Ana", "--backup", "Bruno", "--hours", "24")

        out = b.amparo(
            "oncall", "handoff", "--to", "Bruno", "--note", "Ana tiene fiebre; caso Juchitán abierto"
        )
        assert "Ana handed over to Bruno" in out.stdout
        wait_until(lambda: sorted(catcher.who()) == ["Ana", "Bruno"], timeout=20, what="both to be told")
        for _, page in catcher.pages:
            assert page["title"] == "On-call hand-over: Ana → Bruno"
            assert "Bruno is on call from" in page["message"] and "(backup: Ana)" in page["message"]
            assert "Ana tiene fiebre" in page["message"] and "/ui/oncall" in page["message"]
        wait_until(
            lambda: (
                b.api.get("/api/v1/oncall")["handovers"][-1]["notified"] == {"Ana": "sent", "Bruno": "sent"}
            ),
            timeout=20,
            what="the record to say both were told",
        )
        shown = b.api.get("/api/v1/oncall")
        assert shown["now"]["responder"] == "Bruno"
        assert "[told: Ana sent, Bruno sent]" in b.amparo("oncall", "show").stdout

        made = b.api.post("/api/v1/oncall/handoff", {"to": "Carmen", "note": "relevo"})
        assert made["from"] == "Bruno" and made["to"] == "Carmen"
        wait_until(lambda: len(catcher.pages) == 3, timeout=20, what="Bruno to be told")
        assert catcher.who()[-1] == "Bruno"
        wait_until(
            lambda: (
                b.api.get("/api/v1/oncall")["handovers"][-1]["notified"]
                == {"Bruno": "sent", "Carmen": "no channel"}
            ),
            timeout=20,
            what="the record to say Carmen has no channel",
        )
        refused = b.amparo("oncall", "handoff", "--to", "Diego", check=False)
        assert refused.returncode != 0 and "no responder called 'Diego'" in refused.stderr
        assert b.api.get("/api/v1/oncall")["now"]["responder"] == "Carmen"
    finally:
        catcher.server.shutdown()
