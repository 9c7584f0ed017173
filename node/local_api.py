"""The local listener's JSON API (SPEC §5.1), for the CLI and scripts; the
dashboard (``node.web``) is served on the same listener.

Bound to 127.0.0.1 by default and protected by a bearer token stored mode 0600
in the home, so only the node's operator account can use it. Handlers only
translate between HTTP and the use cases (``node.incidents`` for alerts, the
desks for the rest). Errors are JSON ``{"error": {"code": ..., "message": ...}}``
with a 4xx status and never a traceback: every ``node.errors.Refused`` is
answered the same way, with its stable code (docs/operators.md lists them).
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

import nacl.exceptions
import nacl.public
from aiohttp import web

from node import incidents, metrics, openapi, pairing, stream
from node import web as dashboard
from node.alerts import parse_duration
from node.allies import api as allies_api
from node.allies import cap_api
from node.config import served_hosts, serves_host
from node.errors import Refused
from node.provision import api_token
from node.response import api as response_api
from node.response import checkin_routes
from node.service import NodeService
from protocol import NodeRecord, ProtocolError, Revoke, decode, fingerprint, sign_envelope
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
    r.add_get("/api/v1/stream", stream.handler(SERVICE))
    r.add_post("/api/v1/keys/compromised", _declare_compromised)
    r.add_post("/api/v1/keys/rotate", _rotate_key)
    r.add_get("/api/v1/peers", _list_peers)
    r.add_post("/api/v1/peers/invite", _invite)
    r.add_post("/api/v1/peers/accept", _accept)
    r.add_delete("/api/v1/peers/{peer}", _remove_peer)
    response_api.add_routes(app, SERVICE, _body)
    checkin_routes.add_routes(app, SERVICE, _body)
    allies_api.add_routes(app, SERVICE, _body)
    cap_api.add_routes(app, SERVICE, _body)
    dashboard.add_routes(app, SERVICE)
    return app


HTTP_CODES = {400: "invalid-input", 401: "unauthorized", 403: "forbidden", 404: "not-found",
              405: "method-not-allowed", 413: "too-large"}  # aiohttp's own refusals, by status


def _json_error(status: int, code: str, message: str) -> web.Response:
    """The one shape of every refusal: a stable machine code and a message for a person."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@web.middleware
async def _host_check(request: web.Request, handler: Any) -> web.StreamResponse:
    """Serve only the configured host names (``config.served_hosts``): a page on
    another name that resolves here (DNS rebinding) gets 421 and nothing else."""
    host = request.headers.get("Host")
    if not serves_host(request.app[SERVICE].config, request.app[SERVED_HOSTS], host):
        return _json_error(
            421,
            "wrong-host",
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
    except Refused as exc:
        return _json_error(exc.status, exc.code, exc.message)
    except web.HTTPRedirection:
        raise  # the dashboard's redirects (after a form, to sign in)
    except web.HTTPException as exc:
        return _json_error(exc.status, HTTP_CODES.get(exc.status, f"http-{exc.status}"), exc.reason or "error")
    except Exception:
        log.exception("local API request failed")
        return _json_error(500, "internal", "internal error (see the node's log)")


@web.middleware
async def _auth(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path in PUBLIC_PATHS or request.path.startswith(("/checkin/", cap_api.PUBLIC_PREFIX)) or _dashboard(request.path):
        response: web.StreamResponse = await handler(request)
        return response
    expected = "Bearer " + api_token(request.app[SERVICE].home)
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Refused("missing or wrong API token", code="unauthorized", status=401)
    response = await handler(request)
    return response


def _dashboard(path: str) -> bool:
    """The dashboard checks its own session cookie (node.web), not the API token."""
    return path == dashboard.PREFIX or path.startswith(dashboard.PREFIX + "/")


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        doc = await request.json()
    except ValueError:
        raise Refused("the request body must be JSON", code="bad-json") from None
    if not isinstance(doc, dict):
        raise Refused("the request body must be a JSON object", code="bad-json")
    return doc


def _service(request: web.Request) -> NodeService:
    return request.app[SERVICE]


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
    peers = [s.peer_json(p) for p in s.store.list_peers()]
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
            "escalations_paging": s.store.open_escalations(),
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


async def _list_alerts(request: web.Request) -> web.Response:
    s = _service(request)
    q = request.query
    region = q.get("region") or None
    since = s.clock() - parse_duration(q["since"], "since") if q.get("since") else 0
    limit = min(int(q.get("limit", "100")) if q.get("limit", "100").isdigit() else 100, 1000)
    return web.json_response({"alerts": incidents.list_alerts(s, region=region, since=since, limit=limit)})


async def _show_alert(request: web.Request) -> web.Response:
    s = _service(request)
    return web.json_response(incidents.alert_detail(s, incidents.find_alert(s, request.match_info["id"])))


async def _declare_compromised(request: web.Request) -> web.Response:
    """Publish this node's self-revocation: every node refuses this key forever."""
    s = _service(request)
    doc = await _body(request)
    if doc.get("confirm") != s.config.name:
        raise Refused("confirm: give this node's exact name to confirm")
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
    incidents.refuse_if_compromised(s)
    doc = await _body(request)
    try:
        env = decode(bytes.fromhex(str(doc.get("record", ""))), now=s.clock())
    except ValueError:
        raise Refused("record: the rotation record as hex") from None
    except ProtocolError as exc:
        raise Refused(f"record: {exc.message}") from None
    body = env.body
    if not isinstance(body, NodeRecord) or body.prev != s.key or env.author == s.key:
        raise Refused("record: not a hand-over from this node's current key")
    if s.mesh.trust.retired_at(s.key) is not None:
        raise Refused("this key was already handed over", code="key-handed-over", status=409)
    if s.last_authored > env.created:
        raise Refused(
            "this node signed something after the rotation record was made: rotate again",
            code="rotation-stale",
            status=409,
        )
    new = _rotated_identity(s, str(doc.get("seed", "")), env.author)
    s.author(env)
    if s.store.get(env.id) is None:
        raise Refused(
            "the rotation record was refused; the node keeps its current key", code="rotation-refused", status=409
        )
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
        raise Refused("seed: the new signing key, sealed to this node's encryption key") from None
    if new.sign_public != new_key:
        raise Refused("seed: does not match the rotation record's key")
    return new


async def _send_alert(request: web.Request) -> web.Response:
    s = _service(request)
    return web.json_response(incidents.send_alert(s, await _body(request)), status=201)


async def _ack_alert(request: web.Request) -> web.Response:
    s = _service(request)
    row = incidents.find_alert(s, request.match_info["id"])
    return web.json_response(incidents.acknowledge(s, row, await _body(request)), status=201)


async def _update_alert(request: web.Request) -> web.Response:
    s = _service(request)
    row = incidents.find_alert(s, request.match_info["id"])
    return web.json_response(incidents.update_alert(s, row, await _body(request)), status=201)


async def _cancel_alert(request: web.Request) -> web.Response:
    s = _service(request)
    row = incidents.find_alert(s, request.match_info["id"])
    return web.json_response(incidents.cancel_alert(s, row, await _body(request)), status=201)


async def _list_peers(request: web.Request) -> web.Response:
    s = _service(request)
    return web.json_response({"peers": [s.peer_json(p) for p in s.store.list_peers()]})


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
        raise Refused(f"no peer {request.match_info['peer']!r}", code="not-found", status=404)
    s.remove_peer(peer.key)
    return web.json_response({"removed": peer.key.hex(), "name": peer.name})
