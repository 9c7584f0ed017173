"""The local listener's JSON API (SPEC §5.1), for the CLI and scripts; the
dashboard (``node.web``) is served on the same listener.

Bound to 127.0.0.1 by default and protected by a bearer token stored mode 0600
in the home, so only the node's operator account can use it. Handlers only
translate between HTTP and the use cases (``node.incidents`` for alerts, the
desks for the rest). The routes come from the route modules' tables
(``api_routes``; each row a ``node.routes.Route``), the same tables
``/api/v1/openapi.json`` is generated from. Errors are JSON ``{"error": {"code": ..., "message": ...}}``
with a 4xx status and never a traceback: every ``node.errors.Refused`` is
answered the same way, with its stable code (docs/operators.md lists them).
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
from typing import Any

import nacl.exceptions
import nacl.public
from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from node import contract as c
from node import incidents, joint_api, metrics, openapi, pairing, stream, wipe_alert
from node import web as dashboard
from node.alerts import parse_duration
from node.allies import api as allies_api
from node.allies import cap_api
from node.config import served_hosts, serves_host
from node.errors import Refused
from node.provision import api_token
from node.response import api as response_api
from node.response import checkin_routes, sms_routes
from node.routes import SERVICE, Route, given, read_body, service
from node.service import OWN_WRITES, NodeService
from protocol import NodeRecord, ProtocolError, Revoke, decode, fingerprint, sign_envelope
from protocol.bodies import MAX_REASON
from protocol.keys import Identity

log = logging.getLogger("amparo.api")
MAX_JSON_BYTES = 256 * 1024
SERVED_HOSTS: web.AppKey[frozenset[str]] = web.AppKey("served_hosts", frozenset)
PUBLIC: web.AppKey[frozenset[tuple[str, str]]] = web.AppKey("public", frozenset)


def make_app(service: NodeService) -> web.Application:
    app = web.Application(client_max_size=MAX_JSON_BYTES, middlewares=[_host_check, _errors, _durable, _auth])
    app[SERVICE] = service
    app[SERVED_HOSTS] = served_hosts(service.config)
    app[PUBLIC] = frozenset((r.method, r.path) for r in api_routes() if r.public)
    for route in api_routes():
        if route.method == "GET":
            app.router.add_get(route.path, route.handler)  # and HEAD
        else:
            app.router.add_route(route.method, route.path, route.handler)
    dashboard.add_routes(app, SERVICE)  # HTML pages for people, not part of the JSON API's description
    return app


def api_routes() -> tuple[Route, ...]:
    """Every route of the JSON API, from the route modules' tables: what is
    registered and what ``/api/v1/openapi.json`` describes."""
    return (
        *ROUTES,
        *pairing.ROUTES,
        *stream.ROUTES,
        *metrics.ROUTES,
        *response_api.ROUTES,
        *checkin_routes.ROUTES,
        *allies_api.ROUTES,
        *cap_api.ROUTES,
        *joint_api.ROUTES,
        *wipe_alert.ROUTES,
        *sms_routes.ROUTES,
    )


@functools.cache
def _document() -> bytes:
    return json.dumps(openapi.document(api_routes())).encode()


STORE_UNAVAILABLE = (
    "this node cannot write to its store now (is its disk full?): nothing was saved or sent; try again"
)
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
    except SQLAlchemyError as exc:  # a full disk: refused with one log line, nothing acknowledged
        service(request).outage.failed(f"local request {request.method} {request.path}", exc)
        return _json_error(503, "store-unavailable", STORE_UNAVAILABLE)
    except Exception:
        log.exception("local API request failed")
        return _json_error(500, "internal", "internal error (see the node's log)")


@web.middleware
async def _durable(request: web.Request, handler: Any) -> web.StreamResponse:
    """What a request published (``NodeService.publish``: pushed at once, stored
    by the group writer) is on disk before the request is answered; a failed
    write answers 503 like any store failure (``_errors``)."""
    writes: list[asyncio.Future[Any]] = []
    token = OWN_WRITES.set(writes)
    try:
        response: web.StreamResponse = await handler(request)
    finally:
        OWN_WRITES.reset(token)
    if writes:
        await asyncio.gather(*(asyncio.shield(w) for w in writes))
    return response


@web.middleware
async def _auth(request: web.Request, handler: Any) -> web.StreamResponse:
    if _public(request) or _dashboard(request.path):
        response: web.StreamResponse = await handler(request)
        return response
    expected = "Bearer " + api_token(request.app[SERVICE].home)
    presented = request.headers.get("Authorization", "")
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        raise Refused("missing or wrong API token", code="unauthorized", status=401)
    response = await handler(request)
    return response


def _public(request: web.Request) -> bool:
    """Routes their table marks public (health, this description, metrics, the
    check-in phone page, public feeds) need no token."""
    resource = request.match_info.route.resource
    method = "GET" if request.method == "HEAD" else request.method
    return resource is not None and (method, resource.canonical) in request.app[PUBLIC]


def _dashboard(path: str) -> bool:
    """The dashboard checks its own session cookie (node.web), not the API token."""
    return path == dashboard.PREFIX or path.startswith(dashboard.PREFIX + "/")


async def _openapi(request: web.Request) -> web.Response:
    return web.Response(body=_document(), content_type="application/json")


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "name": service(request).config.name})


async def _status(request: web.Request) -> web.Response:
    s = service(request)
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
    s = service(request)
    record = s.own_record()
    return web.json_response(pairing.describe_record(record) | {"enc_key": s.identity.enc_public.hex()})


async def _list_alerts(request: web.Request) -> web.Response:
    s = service(request)
    q = request.query
    region = q.get("region") or None
    since = s.clock() - parse_duration(q["since"], "since") if q.get("since") else 0
    limit = min(int(q.get("limit", "100")) if q.get("limit", "100").isdigit() else 100, 1000)
    return web.json_response({"alerts": incidents.list_alerts(s, region=region, since=since, limit=limit)})


async def _show_alert(request: web.Request) -> web.Response:
    s = service(request)
    return web.json_response(incidents.alert_detail(s, incidents.find_alert(s, request.match_info["id"])))


async def _declare_compromised(request: web.Request) -> web.Response:
    """Publish this node's self-revocation: every node refuses this key forever."""
    s = service(request)
    doc = await read_body(request, c.CompromisedInput)
    if doc.confirm != s.config.name:
        raise Refused("confirm: give this node's exact name to confirm")
    env = sign_envelope(
        s.identity,
        Revoke(subject=s.key, compromised=True, reason=(doc.reason or "")[:MAX_REASON]),
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
    s = service(request)
    incidents.refuse_if_compromised(s)
    doc = await read_body(request, c.RotateInput)
    try:
        env = decode(bytes.fromhex(doc.record), now=s.clock())
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
    new = _rotated_identity(s, doc.seed, env.author)
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
    s = service(request)
    doc = await read_body(request, c.AlertInput)
    return web.json_response(incidents.send_alert(s, given(doc)), status=201)


async def _ack_alert(request: web.Request) -> web.Response:
    s = service(request)
    row = incidents.find_alert(s, request.match_info["id"])
    doc = await read_body(request, c.AckInput)
    return web.json_response(incidents.acknowledge(s, row, given(doc)), status=201)


async def _update_alert(request: web.Request) -> web.Response:
    s = service(request)
    row = incidents.find_alert(s, request.match_info["id"])
    doc = await read_body(request, c.AlertInput)
    return web.json_response(incidents.update_alert(s, row, given(doc)), status=201)


async def _cancel_alert(request: web.Request) -> web.Response:
    s = service(request)
    row = incidents.find_alert(s, request.match_info["id"])
    doc = await read_body(request, c.CancelInput)
    return web.json_response(incidents.cancel_alert(s, row, given(doc)), status=201)


ROUTES = (
    Route("GET", "/healthz", _health, "Liveness", answer=c.Health, public=True),
    Route("GET", "/api/v1/openapi.json", _openapi, "This description", answer=dict[str, Any], public=True),
    Route("GET", "/api/v1/status", _status, "Node health for humans and monitors", answer=c.Status),
    Route("GET", "/api/v1/id", _id, "This node's name, keys and fingerprints", answer=c.NodeId),
    Route(
        "GET", "/api/v1/alerts", _list_alerts, "Alerts held by this node, newest first",
        answer=c.Alerts, query=c.AlertsQuery,
    ),
    Route(
        "POST", "/api/v1/alerts", _send_alert, "Sign and broadcast a new alert",
        body=c.AlertInput, answer=c.Sent, status=201, refusals=(409,),
    ),
    Route(
        "GET", "/api/v1/alerts/{id}", _show_alert, "One alert with its timeline",
        answer=c.AlertDetail, refusals=(404,), path_params=c.AlertPath,
    ),
    Route(
        "POST", "/api/v1/alerts/{id}/update", _update_alert, "Update an alert this node sent",
        body=c.AlertInput, answer=c.Updated, status=201, refusals=(403, 404, 409), path_params=c.AlertPath,
    ),
    Route(
        "POST", "/api/v1/alerts/{id}/cancel", _cancel_alert, "Cancel an alert this node sent",
        body=c.CancelInput, answer=c.Cancelled, status=201, refusals=(403, 404, 409), path_params=c.AlertPath,
    ),
    Route(
        "POST", "/api/v1/alerts/{id}/ack", _ack_alert,
        "Acknowledge an alert for this organization (sealed like the alert)",
        body=c.AckInput, answer=c.Acked, status=201, refusals=(404, 409), path_params=c.AlertPath,
    ),
    Route(
        "POST", "/api/v1/keys/compromised", _declare_compromised,
        "Declare this node's key compromised (irreversible)",
        body=c.CompromisedInput, answer=c.Revocation, status=201, refusals=(409,),
    ),
    Route(
        "POST", "/api/v1/keys/rotate", _rotate_key,
        "Publish a key rotation built by `amparo keys rotate` and sign with the new key at once: "
        "`record` is the new key's node record with the old key's hand-over (hex), `seed` the "
        "new signing seed sealed (SealedBox) to this node's X25519 key (hex)",
        body=c.RotateInput, answer=c.Rotated, status=201, refusals=(409,),
    ),
)
