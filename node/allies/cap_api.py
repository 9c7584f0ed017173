"""Routes for CAP documents, CAP import and the public Atom feeds.

``/api/v1/...`` needs the API token like the rest of the local API. ``/feeds/...``
does not: it only ever serves ``public`` alerts, so a feed reader or a website on
the organization's network can poll it; the listener still binds 127.0.0.1
unless the operator chose otherwise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from node import contract as c
from node import incidents
from node.alerts import (
    DEFAULT_TTL_MS,
    MAX_TTL_MS,
    AlertInputError,
    current_state,
    make_envelope,
    open_row,
    parse_duration,
)
from node.allies import cap, feeds
from node.config import public_base
from node.errors import Refused
from node.host import Host
from node.routes import Route, read_body, service
from node.store import StoredEnvelope
from protocol import Alert, ProtocolError, decode, regions

CAP_TYPE = "application/cap+xml"


async def alert_cap(request: web.Request) -> web.Response:
    s = service(request)
    row = incidents.find_alert(s, request.match_info["id"])
    document = render_cap(s, row)
    if document is None:
        raise Refused("this node cannot read that alert (sealed to others)", code="sealed", status=404)
    return web.Response(body=document, content_type=CAP_TYPE, charset="utf-8")


async def import_cap(request: web.Request) -> web.Response:
    s = service(request)
    doc = await read_body(request, c.CapImportInput)
    if not doc.cap.strip():
        raise AlertInputError("cap: the CAP XML document as a string")
    try:
        imported = cap.parse(
            doc.cap.encode("utf-8"),
            region=doc.region or None,
            scope=doc.scope or None,
            resolve=lambda ref: _imported_as(s, ref),
        )
    except (cap.CapError, ProtocolError) as exc:
        raise AlertInputError(f"CAP: {exc}") from None
    origin = imported.origin
    if origin is not None and (earlier := _imported_as(s, origin)) is not None:
        raise AlertInputError(f"CAP: {origin} was already imported as alert {earlier.hex()}")
    now = s.clock()
    ttl = _import_ttl(doc.expires, imported.expires, now)
    env = make_envelope(s.identity, imported.alert, now=now, ttl_ms=ttl, recipients=[])
    incidents.author_or_refuse(s, env)
    if origin is not None:
        s.store.put_record("cap-import", _import_key(origin), _import_doc(origin, env.id), now)
    made = {
        "id": env.id.hex(),
        "source": imported.source,
        "msg_type": imported.alert.msg_type,
        "references": [r.hex() for r in imported.alert.references],
    }
    return web.json_response(made, status=201)


async def feed(request: web.Request) -> web.Response:
    s = service(request)
    region = request.match_info["region"]
    region = regions.EVERYWHERE if region in ("all", "*") else region
    if not regions.is_known(region):
        hint = regions.suggest(region)
        extra = f"; did you mean {', '.join(hint)}?" if hint else ""
        raise Refused(f"unknown region {region!r}{extra}", code="not-found", status=404)
    entries = []
    names = _names(s)
    for row in s.store.list_alerts(region=region, limit=FEED_SCAN, include_sealed=False):
        env = decode(row.raw, now=s.clock(), check_time=False)
        if not isinstance(env.body, Alert) or env.body.msg_type != "alert":
            continue  # an update or cancel shows as its incident's current state
        now = current_state(env.body, incidents.changes_of(s, env.id))
        if feeds.wanted(now, region):
            entries.append(_feed_entry(s, now, row, names.get(env.author, "")))
        if len(entries) >= feeds.FEED_LENGTH:
            break
    base = public_base(s.config)  # never the request's Host: a spoofed one would end up in readers
    document = feeds.render(
        region, entries, base=base, node_key=s.key, node_name=s.config.name, now=s.clock()
    )
    return web.Response(body=document, content_type="application/atom+xml", charset="utf-8")


def _feed_entry(s: incidents.AlertHost, now: Alert, row: StoredEnvelope, author_name: str) -> feeds.FeedEntry:
    """One incident in a feed: its current state under the original's id, dated
    by its latest update or cancel (so feed readers see that it changed)."""
    changes = [r for r in s.related(row.id) if r.type == "alert" and r.author in s.trust.family(row.author)]
    phase = "cancel" if any(r.msg_type == "cancel" for r in changes) else "update" if changes else ""
    updated = max((r.created for r in changes), default=row.created)
    return feeds.FeedEntry(now, row.id.hex(), row.created, author_name, updated=updated, phase=phase)


async def public_cap(request: web.Request) -> web.Response:
    s = service(request)
    ident = request.match_info["id"]
    row = s.store.get(bytes.fromhex(ident)) if _is_hex64(ident) else None
    env = (
        decode(row.raw, now=s.clock(), check_time=False) if row is not None and row.type == "alert" else None
    )
    if (
        row is None
        or env is None
        or env.sealed
        or not isinstance(env.body, Alert)
        or env.body.scope != "public"
    ):
        raise Refused("no public alert with that id", code="not-found", status=404)
    document = render_cap(s, row)
    return web.Response(body=document, content_type=CAP_TYPE, charset="utf-8")


ROUTES = (
    Route(
        "GET",
        "/api/v1/alerts/{id}/cap",
        alert_cap,
        "The alert as an OASIS CAP 1.2 document",
        media=CAP_TYPE,
        path_params=c.AlertPath,
        refusals=(404,),
    ),
    Route(
        "POST",
        "/api/v1/alerts/import",
        import_cap,
        "Re-publish a CAP 1.2 Alert, Update or Cancel from an outside source, signed by this node"
        " (an Update or Cancel must reference a CAP message this node imported)",
        body=c.CapImportInput,
        answer=c.CapImported,
        status=201,
        refusals=(409,),
    ),
    Route(
        "GET",
        "/feeds/cap/{id}.xml",
        public_cap,
        "CAP 1.2 document of a public alert (what feed entries link to); no token needed",
        media=CAP_TYPE,
        path_params=c.PlainIdPath,
        public=True,
        refusals=(404,),
    ),
    Route(
        "GET",
        "/feeds/{region}.atom",
        feed,
        "Atom feed of public alerts for a region (all = everywhere); no token needed",
        media="application/atom+xml",
        path_params=c.FeedPath,
        public=True,
        refusals=(404,),
    ),
)


FEED_SCAN = 500


def render_cap(s: incidents.AlertHost, row: StoredEnvelope) -> bytes | None:
    item = open_row(row, s.identity)
    if not isinstance(item.body, Alert):
        return None
    names = _names(s)
    env = item.envelope

    def meta_of(ref: bytes) -> cap.CapMeta | None:
        other = s.store.get(ref)
        if other is None:
            return None
        return cap.CapMeta(ref.hex(), other.author, names.get(other.author, ""), other.created, other.expires)

    meta = cap.CapMeta(env.id.hex(), env.author, names.get(env.author, ""), env.created, env.expires)
    addresses = cap.SENDER_PREFIX + s.identity.sign_public.hex() if env.sealed else ""
    body = item.body
    if body.msg_type == "alert":  # the incident's link: its current state
        body = current_state(body, incidents.changes_of(s, row.id))
    return cap.render(body, meta, referenced=meta_of, addresses=addresses)


def _import_key(ref: cap.CapReference) -> str:
    """CAP identifiers are unique per sender; both are free text, so the key is a hash."""
    return hashlib.sha256(f"{ref.sender}\n{ref.identifier}".encode()).hexdigest()


def _import_doc(ref: cap.CapReference, envelope_id: bytes) -> dict[str, Any]:
    return {"sender": ref.sender, "identifier": ref.identifier, "sent": ref.sent, "id": envelope_id.hex()}


def _imported_as(s: Host, ref: cap.CapReference) -> bytes | None:
    """The alert this node published for the CAP message ``ref`` (matched on all
    of sender, identifier and sent), if it still has it; or, for a CAP document
    rendered from one of this node's own alerts, that alert."""
    doc = s.store.get_record("cap-import", _import_key(ref))
    if doc is not None and doc.get("sent") == ref.sent and doc.get("sender") == ref.sender:
        found = bytes.fromhex(doc["id"])
    elif ref.sender == cap.SENDER_PREFIX + s.identity.sign_public.hex() and _is_hex64(ref.identifier):
        found = bytes.fromhex(ref.identifier)
    else:
        return None
    row = s.store.get(found)
    return found if row is not None and row.type == "alert" and row.author in s.own_keys() else None


def _names(s: Host) -> Mapping[bytes, str]:
    names: Mapping[bytes, str] = s.author_names()
    return names


def _import_ttl(given: str | None, expires: int, now: int) -> int:
    """The TTL the person gave, else the CAP document's expiry, else the default."""
    if given:
        return parse_duration(given, "expires")
    if not expires:
        return DEFAULT_TTL_MS
    if expires <= now:
        raise AlertInputError("CAP: info.expires is already past; nothing to import")
    return min(expires - now, MAX_TTL_MS)


def _is_hex64(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)
