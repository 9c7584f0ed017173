"""Check-ins on real nodes: a missed check-in raises a (restricted) alert after
the grace period, escalated locally; the phone link — a real HTTP request —
checks in, and after a miss it cancels the alert.

That it stays exactly one alert, and that checking in on time raises nothing
however long the plan runs, is asserted on the in-process grid with a fake
clock (tests/grid/test_checkin.py): no sleep stands in for "nothing more"."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import pytest

from tests.e2e.harness import LOOPBACK_TARGETS
from tests.e2e.test_escalation import Catcher
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow


def tap(link: str) -> str:
    """What the phone does: open the link, press the button (a form POST)."""
    with urllib.request.urlopen(link, timeout=10) as resp:
        page = resp.read().decode()
    assert 'name="viewport"' in page and "<form" in page
    with urllib.request.urlopen(urllib.request.Request(link, data=b"", method="POST"), timeout=10) as resp:
        return resp.read().decode()


def test_missed_checkin_raises_one_alert_and_the_phone_link_cancels_it(mesh_factory: Any) -> None:
    mesh = mesh_factory(3, **LOOPBACK_TARGETS)
    a, b, c = mesh.nodes
    mesh.connect([(0, 1), (1, 2)])
    catcher = Catcher()
    b.amparo("responder", "add", "Ana", "--channel", catcher.url("Ana"))
    b.amparo("oncall", "schedule", "--responder", "Ana", "--hours", "24")
    run = b.amparo(
        "checkin",
        "start",
        "--who",
        "Lucía",
        "--region",
        "MX-OAX",
        "--in",
        "2s",
        "--grace",
        "2s",
        "--note",
        "At the march, blue jacket",
        "--to",
        a.name,
        "--json",
    )
    started = json.loads(run.stdout)
    link = started["link"]
    assert "a phone cannot open" in run.stderr and "public_url" in run.stderr  # no public_url set here
    assert re.search(r"/checkin/[A-Za-z0-9_-]{30,}$", link)

    def missed_alerts(node: Any) -> list[dict[str, Any]]:
        return [x for x in node.api.get("/api/v1/alerts")["alerts"] if x.get("event") == "checkin-missed"]

    wait_until(lambda: missed_alerts(a), timeout=30, what="the missed check-in alert at the chosen ally")
    (alert,) = missed_alerts(a)
    assert alert["headline"] == "Missed check-in: Lucía" and "blue jacket" in alert["description"]
    assert alert["sealed"] and missed_alerts(b) and not missed_alerts(c)  # C relays ciphertext only
    wait_until(lambda: catcher.who() == ["Ana"], timeout=20, what="the on-call responder to be paged")

    assert "Checked in" in tap(link)
    wait_until(
        lambda: a.api.get(f"/api/v1/alerts/{alert['id']}")["cancelled"], timeout=20, what="the cancel at A"
    )
    assert b.api.get(f"/api/v1/alerts/{alert['id']}")["escalation"]["state"] == "cancelled"
    assert "blue jacket" not in (b.home / "node.log").read_text()
    with pytest.raises(urllib.error.HTTPError):  # a link with a wrong token opens nothing
        urllib.request.urlopen(link[:-4] + "xxxx", timeout=10)
