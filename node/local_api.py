"""The local listener's JSON API (SPEC §5.1), for the CLI and later the dashboard.

Bound to 127.0.0.1 by default and protected by a bearer token stored mode 0600
in the home, so only the node's operator account can use it. Errors are JSON
``{"error": ...}`` with a 4xx status and never a traceback.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any

import nacl.exceptions
import nacl.public
from aiohttp import web

from node import metrics, openapi, pairing, stream
from node import web as dashboard
from node.alerts import (
    MAX_TTL_MS,
    AlertInputError,
    NotAuthored,
    alert_from_request,
    alert_json,
    author_or_refuse,
    make_envelope,
    open_row,
    parse_duration,
    revise,
)
from node.allies import api as allies_api
from node.allies import cap_api
from node.allies.subscriptions import SubscriptionError
from node.config import served_hosts, serves_host
from node.response import api as response_api
from node.response import checkin_api
from node.response.checkin import CheckinError
from node.response.desk import DeskError
from node.service import NodeService
from node.setup import api_token
from protocol import (
    Ack,
    Alert,
    NodeRecord,
    ProtocolError,
    Revoke,
    decode,
    fingerprint,
    regions,
    sign_envelope,
)
from protocol.keys import Identity

log = logging.getLogger("amparo.api")
SERVICE: web.AppKey[NodeService] = web.AppKey("service", NodeService)
MAX_JSON_BYTES = 256 * 1024
SERVED_HOSTS: web.AppKey[frozenset[str]] = web.AppKey("served_hosts", frozenset)
PUBLIC_PATHS = frozenset({"/healthz", "/api/v1/openapi.json", "/metrics"})


def make_app(service: NodeService) -> web.Application:
    app = web.Application(client_max_size=MAX_JSON_BYTES, middlewares=[_host_check, _errors, _auth])
    app[SERVICE] = service
    app[SERVED_HOSTS] = served_hosts(service.config)
    r = app.router
    r.add_get("/healthz", _health)
    r.add_get("/api/v1/openapi.json", _openapi)
    r.add_get("/metrics", _metrics)
    r.add_get("/api/v1/status", _status)
    r.add_get("/api/v1/id", _id)
    r.add_get("/api/v1/alerts", _list_alerts)
    r.add_post("/api/v1/alerts", _send_alert)
    r.add_get("/api/v1/alerts/{id}", _show_alert)
    r.add_post("/api/v1/alerts/{id}/update", _update_alert)
    r.add_post("/api/v1/alerts/{id}/cancel", _cancel_alert)
    r.add_post("/api/v1/alerts/{id}/ack", _ack_alert)
    r.add_get("/api/v1/stream", stream.handler(SERVICE, _names))
    r.add_post("/api/v1/keys/compromised", _declare_compromised)
    r.add_post("/api/v1/keys/rotate", _rotate_key)
    r.add_get("/api/v1/peers", _list_peers)
    r.add_post("/api/v1/peers/invite", _invite)
    r.add_post("/api/v1/peers/accept", _accept)
    r.add_delete("/api/v1/peers/{peer}", _remove_peer)
    response_api.add_routes(app, SERVICE, _body, _find_alert)
    checkin_api.add_routes(app, SERVICE, _body)
    allies_api.add_routes(app, SERVICE, _body)
    cap_api.add_routes(app, SERVICE, _body, _find_alert)
    dashboard.add_routes(app, SERVICE)
    return app


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@web.middleware
async def _host_check(request: web.Request, handler: Any) -> web.StreamResponse:
    """Serve only the configured host names (``config.served_hosts``): a page on
    another name that resolves here (DNS rebinding) gets 421 and nothing else."""
    host = request.headers.get("Host")
    if not serves_host(request.app[SERVICE].config, request.app[SERVED_HOSTS], host):
        return _json_error(
            421,
            f"this node does not serve the host name {host!r}; if people reach it by that name, "
            "add the name to allowed_hosts in config.toml",
        )
    response: web.StreamResponse = await handler(request)
    return response


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as exc:
        return _json_error(exc.status, str(exc))
    except NotAuthored as exc:
        return _json_error(409, str(exc))
    except (AlertInputError, pairing.PairingError, DeskError, CheckinError, SubscriptionError) as exc:
        return _json_error(400, str(exc))
    except web.HTTPRedirection:
        raise  # the dashboard's redirects (after a form, to sign in)
    except web.HTTPException as exc:
        return _json_error(exc.status, exc.reason or "error")
    except Exception:
        log.exception("local API request failed")
        return _json_error(500, "internal error (see the node's log)")


@web.middleware
async def _auth(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path in PUBLIC_PATHS or request.path.startswith(("/checkin/", cap_api.PUBLIC_PREFIX)) or _dashboard(request.path):
        response: web.StreamResponse = await handler(request)
        return response
    expected = "Bearer " + api_token(request.app[SERVICE].home)
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, "missing or wrong API token")
    response = await handler(request)
    return response


def _dashboard(path: str) -> bool:
    """The dashboard checks its own session cookie (node.web), not the API token."""
    return path == dashboard.PREFIX or path.startswith(dashboard.PREFIX + "/")


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        doc = await request.json()
    except ValueError:
        raise ApiError(400, "the request body must be JSON") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return doc


def _service(request: web.Request) -> NodeService:
    return request.app[SERVICE]


def _names(service: NodeService) -> dict[bytes, str]:
    return service.author_names()


async def _metrics(request: web.Request) -> web.Response:
    body = metrics.render(_service(request))
    return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi.document())


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "name": _service(request).config.name})


async def _status(request: web.Request) -> web.Response:
    s = _service(request)
    c = s.counters
    peers = [_peer_json(s, p) for p in s.store.list_peers()]
    return web.json_response(
        {
            "name": s.config.name,
            "fingerprint": fingerprint(s.key),
            "now": s.clock(),
            "uptime_s": int((s.clock() - s.started_at) / 1000),
            "envelopes_stored": s.store.count(),
            "received": c.received,
            "stored": c.stored,
            "pushed": c.pushed,
            "push_failures": c.push_failures,
            "push_deferred": c.push_deferred,
            "reconciles": c.reconciles,
            "rejected": c.rejected,
            "peers": peers,
            "peers_up": sum(1 for p in peers if p["up"]),
            "escalations_paging": [
                k for k, d in s.store.list_records("escalation") if d["state"] in ("paging", "exhausted")
            ],
            "deliveries": s.allies.summary(),
            "checkins": {
                state: sum(1 for c in s.desk.checkins.plans() if c["state"] == state)
                for state in ("active", "missed")
            },
        }
    )


async def _id(request: web.Request) -> web.Response:
    s = _service(request)
    record = s.own_record()
    return web.json_response(pairing.describe_record(record) | {"enc_key": s.identity.enc_public.hex()})


def _peer_json(service: NodeService, peer: Any) -> dict[str, Any]:
    return {
        "name": peer.name,
        "key": peer.key.hex(),
        "fingerprint": fingerprint(peer.key),
        "addresses": list(peer.addresses),
        "tls_fingerprint": peer.tls_fp.hex(),
        "last_seen": service.last_contact(peer.key, peer.last_seen),
        "up": service.peer_is_up(peer.key),
        "cut_off": service.cut_off(peer.key),
        "mark": peer.mark,
        "status": peer.status,
    }


async def _list_alerts(request: web.Request) -> web.Response:
    s = _service(request)
    q = request.query
    region = q.get("region") or None
    since = s.clock() - parse_duration(q["since"], "since") if q.get("since") else 0
    limit = min(int(q.get("limit", "100")) if q.get("limit", "100").isdigit() else 100, 1000)
    return web.json_response({"alerts": list_alert_docs(s, region=region, since=since, limit=limit)})


_UNLISTED: set[bytes] = set()  # warned about once each


def list_alert_docs(s: NodeService, *, region: str | None, since: int = 0, limit: int = 100) -> list[dict[str, Any]]:
    """Alerts (not their updates), newest first, each with its current state."""
    if region:
        try:
            regions.check(region)
        except Exception as exc:
            raise ApiError(400, str(getattr(exc, "message", exc))) from None
    names = _names(s)
    out = []
    for row in s.store.list_alerts(since_created=since, region=None, limit=limit * 4):
        try:
            item = open_row(row, s.identity)
        except ProtocolError as exc:  # stored by an earlier version, refused by today's rules (bad-text)
            if row.id not in _UNLISTED:
                _UNLISTED.add(row.id)
                log.warning("not listing stored envelope %s: %s", row.id.hex()[:12], exc)
            continue
        if not isinstance(item.body, Alert) or item.body.msg_type != "alert":
            continue  # updates and cancels are shown in their alert's timeline
        if region and not any(regions.matches(region, a.region) for a in item.body.areas):
            continue
        out.append(alert_json(item, names, s.author_of) | _state(s, item.envelope.id))
        if len(out) >= limit:
            break
    return out


def _state(s: NodeService, alert_id: bytes) -> dict[str, Any]:
    """Current state of an alert from its updates and cancels."""
    related = [open_row(r, s.identity) for r in s.related(alert_id)]
    author = _author(s, alert_id)
    family = s.mesh.trust.family(author) if author is not None else set()
    changes = [r.body for r in related if isinstance(r.body, Alert) and r.envelope.author in family]
    return {
        "cancelled": any(c.msg_type == "cancel" for c in changes),
        "updates": sum(1 for c in changes if c.msg_type == "update"),
    }


def _author(s: NodeService, alert_id: bytes) -> bytes | None:
    row = s.store.get(alert_id)
    return row.author if row else None


async def _show_alert(request: web.Request) -> web.Response:
    s = _service(request)
    return web.json_response(alert_detail(s, _find_alert(s, request.match_info["id"])))


def alert_detail(s: NodeService, row: Any) -> dict[str, Any]:
    """One alert with its timeline, responses per organization, escalation and notes."""
    names = _names(s)
    item = open_row(row, s.identity)
    timeline = [open_row(r, s.identity) for r in s.related(row.id)]
    return (
        alert_json(item, names, s.author_of)
        | _state(s, row.id)
        | {
            "timeline": [alert_json(t, names, s.author_of) for t in timeline],
            "responses": _responses(item, timeline, names, s.author_of),
            "escalation": s.desk.escalation_json(row.id.hex()),
            "notes": s.desk.timeline(row.id.hex()),
        }
    )


def _responses(
    alert: Any, timeline: list[Any], names: dict[bytes, str], author_of: Callable[[bytes], bytes]
) -> list[dict[str, Any]]:
    """Per organization: its latest acknowledgement and its time to acknowledge
    (first ack after the alert was created)."""
    by_org: dict[bytes, dict[str, Any]] = {}
    for t in timeline:
        if not isinstance(t.body, Ack):
            continue
        org = author_of(t.envelope.author)
        entry = by_org.setdefault(
            org,
            {
                "organization": names.get(org, ""),
                "key": org.hex(),
                "fingerprint": fingerprint(org),
                "first_ack": t.envelope.created,
                "time_to_ack_s": round((t.envelope.created - alert.envelope.created) / 1000, 1),
            },
        )
        entry.update({"state": t.body.state, "note": t.body.note, "at": t.envelope.created})
    return sorted(by_org.values(), key=lambda e: e["first_ack"])


def _find_alert(s: NodeService, ident: str) -> Any:
    ident = ident.strip().lower()
    try:
        raw_id = bytes.fromhex(ident) if len(ident) == 64 else None
    except ValueError:
        raw_id = None
    row = s.store.get(raw_id) if raw_id else s.store.find_by_prefix(ident) if len(ident) >= 8 else None
    if row is None or row.type != "alert":
        raise ApiError(404, f"no alert with id {ident!r}")
    return row


async def _declare_compromised(request: web.Request) -> web.Response:
    """Publish this node's self-revocation: every node refuses this key forever."""
    s = _service(request)
    doc = await _body(request)
    if doc.get("confirm") != s.config.name:
        raise ApiError(400, "confirm: give this node's exact name to confirm")
    env = sign_envelope(
        s.identity,
        Revoke(subject=s.key, compromised=True, reason=str(doc.get("reason", ""))[:500]),
        created=s.clock(),
        expires=0,
    )
    s.author(env)
    return web.json_response({"revocation": env.id.hex(), "key": s.key.hex()}, status=201)


async def _rotate_key(request: web.Request) -> web.Response:
    """Publish a rotation the CLI built (it holds the passphrase, the node does
    not) and switch to the new key at once, with no restart: the new key's
    ``node`` record with the current key's hand-over signature, and the new
    signing seed sealed to this node's own X25519 key (so it never crosses the
    loopback in clear). Only someone holding the current key can make the
    hand-over, so the API token alone cannot plant a key."""
    s = _service(request)
    _refuse_if_compromised(s)
    doc = await _body(request)
    try:
        env = decode(bytes.fromhex(str(doc.get("record", ""))), now=s.clock())
    except ValueError:
        raise ApiError(400, "record: the rotation record as hex") from None
    except ProtocolError as exc:
        raise ApiError(400, f"record: {exc.message}") from None
    body = env.body
    if not isinstance(body, NodeRecord) or body.prev != s.key or env.author == s.key:
        raise ApiError(400, "record: not a hand-over from this node's current key")
    if s.mesh.trust.retired_at(s.key) is not None:
        raise ApiError(409, "this key was already handed over")
    if s.last_authored > env.created:
        raise ApiError(409, "this node signed something after the rotation record was made: rotate again")
    new = _rotated_identity(s, str(doc.get("seed", "")), env.author)
    s.author(env)
    if s.store.get(env.id) is None:
        raise ApiError(409, "the rotation record was refused; the node keeps its current key")
    s.switch_identity(new)
    s.store.set_meta("node_record_id", env.id.hex())
    log.info("rotated to key %s", env.author.hex()[:16])
    return web.json_response({"record": env.id.hex(), "key": env.author.hex(), "fingerprint": fingerprint(env.author)}, status=201)


def _rotated_identity(s: NodeService, sealed_hex: str, new_key: bytes) -> Identity:
    """Open the new signing seed (sealed to this node) and check it is the record's key."""
    try:
        seed = nacl.public.SealedBox(s.identity.enc_private).decrypt(bytes.fromhex(sealed_hex))
        new = Identity(sign_seed=seed, enc_secret=s.identity.enc_secret)
    except (ValueError, TypeError, nacl.exceptions.CryptoError):
        raise ApiError(400, "seed: the new signing key, sealed to this node's encryption key") from None
    if new.sign_public != new_key:
        raise ApiError(400, "seed: does not match the rotation record's key")
    return new


def _refuse_if_compromised(s: NodeService) -> None:
    if s.mesh.trust.is_compromised(s.key):
        raise ApiError(
            409, "this node's key is declared compromised: create a new node (amparo init) and pair again"
        )


async def _send_alert(request: web.Request) -> web.Response:
    s = _service(request)
    return web.json_response(send_alert(s, await _body(request)), status=201)


def send_alert(s: NodeService, doc: dict[str, Any]) -> dict[str, Any]:
    _refuse_if_compromised(s)
    return _publish(s, alert_from_request(doc), doc)


def _publish(s: NodeService, body: Alert, doc: dict[str, Any]) -> dict[str, Any]:
    recipients = _recipients(s, doc.get("to") or [])
    ttl = parse_duration(doc["expires"], "expires") if doc.get("expires") else 6 * 3600 * 1000
    env = make_envelope(s.identity, body, now=s.clock(), ttl_ms=ttl, recipients=recipients)
    author_or_refuse(s, env)
    return {"id": env.id.hex(), "created": env.created, "sealed": env.sealed}


def _recipients(s: NodeService, names: list[str]) -> list[bytes]:
    keys = []
    for name in names:
        peer = s.store.find_peer(str(name))
        if peer is None:
            raise ApiError(400, f"to: no peer called {name!r} (see `amparo peer list`)")
        keys.append(peer.enc_key)
    return keys


async def _ack_alert(request: web.Request) -> web.Response:
    s = _service(request)
    row = _find_alert(s, request.match_info["id"])
    return web.json_response(acknowledge(s, row, await _body(request)), status=201)


def acknowledge(s: NodeService, row: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """Acknowledge an alert for this organization; sealed like the alert it answers."""
    state = str(doc.get("state", "responding"))
    try:
        body = Ack(alert=row.id, state=state, note=str(doc.get("note", "")))
    except ProtocolError as exc:
        raise ApiError(400, exc.message) from None
    original = open_row(row, s.identity).envelope
    recipients: list[bytes] = []
    if original.sealed:  # the ack goes to the alert's author and the recipients we can name
        author_key = s.enc_keys.get(row.author)
        recipients = list(dict.fromkeys([*s.recipients_of(original), *([author_key] if author_key else [])]))
    ttl = max(row.expires - s.clock(), 3600_000) if row.expires else 24 * 3600_000
    env = make_envelope(s.identity, body, now=s.clock(), ttl_ms=min(ttl, MAX_TTL_MS), recipients=recipients)
    author_or_refuse(s, env)
    s.desk.acknowledge(row.id.hex(), by=str(doc.get("by") or "this organization"))
    return {"id": env.id.hex(), "sealed": env.sealed, "state": state}


async def _update_alert(request: web.Request) -> web.Response:
    s = _service(request)
    row = _find_alert(s, request.match_info["id"])
    return web.json_response(update_alert(s, row, await _body(request)), status=201)


async def _cancel_alert(request: web.Request) -> web.Response:
    s = _service(request)
    row = _find_alert(s, request.match_info["id"])
    return web.json_response(cancel_alert(s, row, await _body(request)), status=201)


def update_alert(s: NodeService, row: Any, doc: dict[str, Any]) -> dict[str, Any]:
    original = open_row(row, s.identity)
    if row.author not in s.own_keys() or not isinstance(original.body, Alert):
        raise ApiError(403, "only the node that sent an alert can update it")
    return _publish(s, revise(original.body, doc, msg_type="update", references=(row.id,)), doc)


def cancel_alert(s: NodeService, row: Any, doc: dict[str, Any]) -> dict[str, Any]:
    original = open_row(row, s.identity)
    if row.author not in s.own_keys() or not isinstance(original.body, Alert):
        raise ApiError(403, "only the node that sent an alert can cancel it")
    reason = {"description": doc.get("reason")}
    return _publish(s, revise(original.body, reason, msg_type="cancel", references=(row.id,)), doc)


async def _list_peers(request: web.Request) -> web.Response:
    s = _service(request)
    return web.json_response({"peers": [_peer_json(s, p) for p in s.store.list_peers()]})


async def _invite(request: web.Request) -> web.Response:
    s = _service(request)
    doc = await _body(request)
    ttl = parse_duration(doc["expires"], "expires") if doc.get("expires") else pairing.INVITE_TTL_MS
    token, expires = pairing.create_invite(s, ttl)
    return web.json_response({"token": token, "expires": expires, "fingerprint": fingerprint(s.key)})


async def _accept(request: web.Request) -> web.Response:
    s = _service(request)
    doc = await _body(request)
    peer = await pairing.accept_invite(s, str(doc.get("token", "")), verified=bool(doc.get("verified")))
    return web.json_response({"peer": peer}, status=201)


async def _remove_peer(request: web.Request) -> web.Response:
    s = _service(request)
    peer = s.store.find_peer(request.match_info["peer"])
    if peer is None:
        raise ApiError(404, f"no peer {request.match_info['peer']!r}")
    s.remove_peer(peer.key)
    return web.json_response({"removed": peer.key.hex(), "name": peer.name})
