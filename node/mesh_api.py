"""The mesh listener (SPEC §5.1): ``/mesh/v1/`` over HTTPS with TLS 1.3.

Every request must carry a valid ``Amparo-Auth`` signature addressed to this
node, from a known active peer, with a fresh timestamp and an unused nonce — all
checked before the body is parsed. The one exception is ``/mesh/v1/pair``, which
an unknown node may call with a valid one-time invite secret. The body limit is
the protocol's (one maximum envelope plus framing); aiohttp enforces it.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, NamedTuple

from aiohttp import web

import mesh
from node import wire
from node.pairing import PairingError, accept_pair_request
from node.service import NodeService
from protocol import request as signed_request
from protocol.errors import ProtocolError

log = logging.getLogger("amparo.mesh")
SERVICE: web.AppKey[NodeService] = web.AppKey("service", NodeService)
MAX_FETCH_IDS = 256


def make_app(service: NodeService) -> web.Application:
    app = web.Application(client_max_size=wire.MAX_FRAME_BYTES, middlewares=[_errors])
    app[SERVICE] = service
    app.router.add_post("/mesh/v1/push", _push)
    app.router.add_post("/mesh/v1/reconcile", _reconcile)
    app.router.add_post("/mesh/v1/fetch", _fetch)
    app.router.add_post("/mesh/v1/pair", _pair)
    return app


def _reply(frame: dict[str, Any]) -> web.Response:
    return web.Response(body=wire.pack(frame), content_type="application/x-msgpack")


def _refuse(status: int, reason: str) -> web.Response:
    return web.Response(status=status, text=reason)


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException:
        raise
    except (wire.FrameError, mesh.MeshError) as exc:
        return _refuse(400, f"bad frame: {exc}")
    except Exception:
        log.exception("mesh request failed")
        return _refuse(500, "internal error")


def _verify(request: web.Request, body: bytes, service: Any) -> signed_request.RequestAuth:
    """Requests name this node as receiver; a peer that has not yet heard of a key
    rotation still names the old key, which stays acceptable as a receiver."""
    first: ProtocolError | None = None
    for receiver in service.own_keys():
        try:
            return signed_request.verify_request(
                request.headers.get(signed_request.HEADER),
                method=request.method,
                path=request.path,
                body=body,
                receiver=receiver,
                now=service.clock(),
            )
        except ProtocolError as exc:
            first = first or exc
    assert first is not None
    raise first


class Authenticated(NamedTuple):
    sender: bytes
    body: bytes
    nonce: tuple[bytes, int]  # (nonce, expires), remembered unless the caller defers it


async def _authenticated(
    request: web.Request, *, known_peer: bool = True, defer_nonce: bool = False
) -> Authenticated:
    """Return the sender, body and nonce of a valid request, or raise an HTTP error.

    With ``defer_nonce`` the nonce is only checked unused: the caller stores it
    with the work, in one transaction, before anything is awaited (a push:
    ``NodeService.ingest``)."""
    service = request.app[SERVICE]
    body = await request.read()
    try:
        auth = _verify(request, body, service)
    except ProtocolError as exc:
        service.counters.reject(f"request-{exc.code}")
        raise web.HTTPUnauthorized(text=f"request refused: {exc.message}") from None
    if known_peer:
        peer = service.store.get_peer(auth.sender)
        if peer is None or peer.status != "active":
            service.counters.reject("request-unknown-peer")
            raise web.HTTPForbidden(text="request refused: not a peer of this node")
        if service.cut_off(auth.sender):
            raise web.HTTPTooManyRequests(text="request refused: peer cut off for sending invalid data")
    expires = auth.timestamp + 2 * signed_request.MAX_REQUEST_AGE_MS
    if defer_nonce:
        fresh = not service.store.nonce_used(auth.sender, auth.nonce)
    else:
        fresh = service.store.remember_nonce(auth.sender, auth.nonce, expires)
    if not fresh:
        service.counters.reject("request-replayed")
        raise web.HTTPConflict(text="request refused: nonce already used (replay)")
    return Authenticated(auth.sender, body, (auth.nonce, expires))


async def _push(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    sender, body, nonce = await _authenticated(request, defer_nonce=True)
    try:
        raws = wire.envelope_list(wire.unpack(body))
    except wire.FrameError:
        service.store.remember_nonce(sender, *nonce)
        raise
    outcome = service.ingest_push(raws, sender, nonce)
    # ``deferred``: ids refused for a budget, which the sender keeps and sends again.
    return _reply({"accepted": outcome.accepted, "invalid": outcome.invalid, "deferred": list(outcome.deferred)})


async def _reconcile(request: web.Request) -> web.Response:
    body = (await _authenticated(request)).body
    service = request.app[SERVICE]
    reply = mesh.reconcile.respond(service.mesh.keys(), wire.unpack(body).get("m"))
    return _reply({"m": reply})


async def _fetch(request: web.Request) -> web.Response:
    body = (await _authenticated(request)).body
    service = request.app[SERVICE]
    ids = wire.id_list(wire.unpack(body), limit=MAX_FETCH_IDS)
    return _reply({"e": [row.raw for row in service.store.get_many(ids)]})


async def _pair(request: web.Request) -> web.Response:
    sender, body, _nonce = await _authenticated(request, known_peer=False)
    service = request.app[SERVICE]
    try:
        frame = accept_pair_request(service, sender, wire.unpack(body))
    except PairingError as exc:
        digest = hashlib.blake2b(sender, digest_size=4).hexdigest()
        log.warning("pairing request from %s refused: %s", digest, exc)
        raise web.HTTPForbidden(text=f"pairing refused: {exc}") from None
    return _reply(frame)
