"""CAP and Atom on real node processes: `alert show --format cap` validates
against the OASIS schema, `alert import` re-publishes an outside CAP alert that
then crosses the mesh, and a region's Atom feed carries public alerts only —
never members or restricted ones — each linking a CAP document that resolves."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import feedparser
import pytest
from lxml import etree

from node.devmesh import LocalMesh, LocalNode
from tests.allies.test_cap import AMENDMENT, ISO_GEOCODE, OUTSIDE, SCHEMA
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow


def fetch(node: LocalNode, path: str) -> tuple[int, bytes, str]:
    """A plain GET with no token, as a feed reader does."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{node.local_port}{path}", timeout=10) as resp:
            return resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("Content-Type", "")


def test_cap_show_import_and_feeds(mesh_factory: Any, tmp_path: Path) -> None:
    mesh: LocalMesh = mesh_factory(3)
    a, b, c = mesh.nodes
    mesh.connect([(0, 1), (1, 2), (0, 2)])
    public = a.send(headline="March for the disappeared, Saturday 10:00", scope="public", regions=["MX-OAX"])
    members = a.send(headline="Members: safe meeting point changed", scope="members", regions=["MX-OAX"])
    secret = "Witness relocated to the north house"
    restricted = a.send(headline=secret, scope="restricted", to=[c.name], regions=["MX-OAX"])
    elsewhere = a.send(headline="Public alert in Colombia", scope="public", regions=["CO-ANT"])
    mesh.wait_for(public, [b])
    mesh.wait_for(members, [b])
    mesh.wait_for(elsewhere, [b])

    document = b.amparo("alert", "show", public[:12], "--format", "cap").stdout.encode()
    assert SCHEMA.validate(etree.fromstring(document)), SCHEMA.error_log
    assert b"<scope>Public</scope>" in document and public.encode() in document

    status, atom, kind = fetch(b, "/feeds/MX.atom")
    assert status == 200 and kind.startswith("application/atom+xml")
    feed = feedparser.parse(atom)
    assert not feed.bozo
    titles = [e.title for e in feed.entries]
    assert titles == ["SEVERE: March for the disappeared, Saturday 10:00"]
    assert b"Members:" not in atom and secret.encode() not in atom and b"Colombia" not in atom
    assert members[:16].encode() not in atom and restricted[:16].encode() not in atom
    link = next(x.href for x in feed.entries[0].links if x.type == "application/cap+xml")
    status, linked, kind = fetch(b, link.split(str(b.local_port), 1)[1])
    assert (
        status == 200 and kind.startswith("application/cap+xml") and SCHEMA.validate(etree.fromstring(linked))
    )

    everywhere = feedparser.parse(fetch(b, "/feeds/all.atom")[1])
    assert len(everywhere.entries) == 2
    assert fetch(b, f"/feeds/cap/{members}.xml")[0] == 404
    assert fetch(b, f"/feeds/cap/{restricted}.xml")[0] == 404
    status, body, _ = fetch(b, "/feeds/MX-OAXX.atom")
    assert status == 404 and b"MX-OAX" in body
    assert fetch(b, "/api/v1/alerts")[0] == 401  # the rest still needs the token

    source = tmp_path / "proteccion-civil.xml"
    source.write_text(OUTSIDE % ISO_GEOCODE, encoding="utf-8")
    imported = b.amparo("alert", "import", str(source)).stdout.split()[0]
    mesh.wait_for(imported, [a, c])
    shown = a.api.get(f"/api/v1/alerts/{imported}")
    assert shown["headline"] == "Sismo de magnitud 6.8 en la costa de Oaxaca"
    assert shown["author_name"] == b.name and "PC-2026-0042" in shown["description"]

    bad = tmp_path / "bad.xml"
    bad.write_text("<alert>no namespace</alert>")
    refused = b.amparo("alert", "import", str(bad), check=False)
    assert refused.returncode != 0 and "root element" in refused.stderr and "Traceback" not in refused.stderr
    for node in (a, b, c):
        assert secret.encode() not in (node.home / "node.log").read_bytes()

    # the authority cancels its alert: the imported alert is cancelled, everywhere
    again = b.amparo("alert", "import", str(source), check=False)
    assert again.returncode != 0 and "already imported" in again.stderr
    cancel = tmp_path / "proteccion-civil-cancel.xml"
    cancel.write_text(AMENDMENT % "Cancel", encoding="utf-8")
    printed = b.amparo("alert", "import", str(cancel)).stdout
    assert f"(cancel of {imported[:16]}…)" in printed  # the operator sees what it answers
    cancelled = b.api.get(f"/api/v1/alerts/{printed.split()[0]}")
    assert cancelled["msg_type"] == "cancel" and cancelled["references"] == [imported]
    assert b.api.get(f"/api/v1/alerts/{imported}")["cancelled"]
    wait_until(
        lambda: a.api.get(f"/api/v1/alerts/{imported}")["cancelled"], timeout=30, what="the cancel at A"
    )
    assert cancelled["id"] not in a.alert_ids()  # a cancel of the alert, never a new alert

    orphan = tmp_path / "orphan-cancel.xml"
    orphan.write_text((AMENDMENT % "Cancel").replace("PC-2026-0042", "PC-2026-0999"), encoding="utf-8")
    refused = b.amparo("alert", "import", str(orphan), check=False)
    assert (
        refused.returncode != 0
        and "PC-2026-0999" in refused.stderr
        and "import the original" in refused.stderr
    )


IMPORTED_AREA = "<circle>16.433000,-95.019000 25.000</circle>" + ISO_GEOCODE
WITH_EFFECTIVE = OUTSIDE.replace(
    "<expires>", "<effective>2026-11-25T10:05:00-06:00</effective><expires>"
).replace("PC-2026-0042", "PC-2026-0077")


@pytest.mark.smoke  # in the fast lane
def test_update_and_cancel_keep_the_imported_areas(mesh_factory: Any, tmp_path: Path) -> None:
    """`alert update` and `alert cancel` of an alert imported from CAP keep its area
    description, circle and effective time at every node (they were dropped: the
    update was rebuilt from the region codes alone)."""
    mesh: LocalMesh = mesh_factory(2)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    source = tmp_path / "sismo.xml"
    source.write_text(WITH_EFFECTIVE % IMPORTED_AREA, encoding="utf-8")
    imported = b.amparo("alert", "import", str(source)).stdout.split()[0]
    mesh.wait_for(imported, [a])
    original = a.api.get(f"/api/v1/alerts/{imported}")
    area = {"region": "MX-OAX", "desc": "Istmo de Tehuantepec", "circle": [16_433_000, -95_019_000, 25_000]}
    assert original["areas"] == [area] and original["effective"] > 0

    update = json.loads(
        b.amparo("alert", "update", imported[:12], "--instruction", "Evacuar la costa.", "--json").stdout
    )["id"]
    cancel = json.loads(
        b.amparo("alert", "cancel", imported[:12], "--reason", "Sin daños mayores.", "--json").stdout
    )["id"]
    wait_until(
        lambda: a.api.get(f"/api/v1/alerts/{imported}")["cancelled"], timeout=30, what="the cancel at A"
    )
    changed = a.api.get(f"/api/v1/alerts/{update}")
    assert changed["msg_type"] == "update" and changed["instruction"] == "Evacuar la costa."
    assert changed["areas"] == [area] and changed["effective"] == original["effective"]
    assert changed["headline"] == original["headline"] and changed["description"] == original["description"]
    ended = a.api.get(f"/api/v1/alerts/{cancel}")
    assert ended["msg_type"] == "cancel" and ended["description"] == "Sin daños mayores."
    assert ended["areas"] == [area] and ended["effective"] == original["effective"]


def test_after_an_update_the_list_and_the_feed_show_the_new_headline(mesh_factory: Any) -> None:
    """An incident shows as its latest update (issue 13 item 2) at the node that
    received it: in `alert list`, the Atom feed and the CAP document the feed
    links, all under the original alert's id; the old headline stays in the timeline."""
    mesh: LocalMesh = mesh_factory(2)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    first = "Retén ficticio en la carretera a Tlaxiaco"
    alert_id = a.send(headline=first, scope="public", severity="moderate", regions=["MX-OAX"])
    mesh.wait_for(alert_id, [b])
    printed = a.amparo(
        "alert", "update", alert_id[:12], "--headline", "Retén retirado", "--severity", "minor"
    ).stdout
    assert (
        printed.strip()
        == f"updated {alert_id}: headline '{first}' → 'Retén retirado'; severity 'moderate' → 'minor'"
    )
    wait_until(
        lambda: b.api.get(f"/api/v1/alerts/{alert_id}")["updates"] == 1, timeout=30, what="the update at B"
    )

    listed = json.loads(b.amparo("alert", "list", "--json").stdout)["alerts"]
    assert [(x["id"], x["headline"], x["severity"]) for x in listed] == [
        (alert_id, "Retén retirado", "minor")
    ]
    assert "Retén retirado" in b.amparo("alert", "list").stdout

    feed = feedparser.parse(fetch(b, "/feeds/MX-OAX.atom")[1])
    assert not feed.bozo
    assert [(e.id, e.title) for e in feed.entries] == [
        (f"urn:amparo:alert:{alert_id}", "UPDATE: MINOR: Retén retirado")
    ]
    link = next(x.href for x in feed.entries[0].links if x.type == "application/cap+xml")
    assert link.endswith(f"/feeds/cap/{alert_id}.xml")  # the incident, not the update's own id
    status, linked, _ = fetch(b, link.split(str(b.local_port), 1)[1])
    assert status == 200 and SCHEMA.validate(etree.fromstring(linked)), SCHEMA.error_log
    cap_ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
    assert etree.fromstring(linked).xpath("//cap:info/cap:headline/text()", namespaces=cap_ns) == [
        "Retén retirado"
    ]

    shown = b.api.get(f"/api/v1/alerts/{alert_id}")
    assert [t["headline"] for t in shown["timeline"]] == ["Retén retirado"] and shown["timeline"][0][
        "incident"
    ] == alert_id
