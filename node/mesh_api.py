"""The mesh listener (SPEC §5.1): ``/mesh/v1/`` over HTTPS with TLS 1.3.

What a request meets, in order (docs/protocol.md §12.3):

0. the connection's caps and deadlines (``node.listener``): 16 connections per
   address, 512 in all, the TLS handshake and the request head within 10 s each;
1. the door, before one byte of the body is read: exactly one of the five paths
   with no query string (400); no ``Content-Encoding`` and no transfer coding but
   ``chunked`` (415): bodies are never inflated, so a gzip bomb costs nothing; a
   ``Content-Length`` over the limit (413); then the request budget (``node.door``,
   429). A refusal here closes the connection without reading the body;
2. the body, read up to the protocol's limit and no further (413, connection
   closed) and within ``listener.BODY_S`` (408, connection closed): the runner's ``RUNNER_OPTIONS`` turn off aiohttp's decompression and
   its "lingering" read of whatever a refused client still sends;
3. the ``Amparo-Auth`` signature addressed to this node, from a known active peer
   with budget left, a fresh timestamp and an unused nonce, all checked before
   the body is parsed and before anything is written. The one exception is
   ``/mesh/v1/pair``, which an unknown node may call with a valid one-time invite
   secret; it writes nothing, not even its nonce, unless the secret is valid.
   A peer the mesh has cut off is refused at the door already (429), by the key
   its header names, before its body is read.

A frame that does not parse counts against its sender like an invalid envelope.
Every answer to a request whose ``Amparo-Auth`` header parses is signed with this
node's identity key (``Amparo-Reply``, ``protocol.reply``), binding the request's
nonce, so a listener holding only a copy of the TLS key cannot answer in its place.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import Any, Final, NamedTuple, TypeVar

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from sqlalchemy.exc import SQLAlchemyError

import mesh
from node import listener
from node.door import RequestBudget
from node.pairing import PairingError, accept_pair_request
from node.service import RECOVER_PATH, NodeService
from node.verifier import VerifierUnavailable
from protocol import framing
from protocol import reply as signed_reply
from protocol import request as signed_request
from protocol.errors import BadFrame, ProtocolError

log = logging.getLogger("amparo.mesh")
SERVICE: web.AppKey[NodeService] = web.AppKey("service", NodeService)
BUDGET: web.AppKey[RequestBudget] = web.AppKey("budget", RequestBudget)
CLAIMED = web.RequestKey("amparo.claimed_peer", bytes)  # the active peer a request's header names
PATHS: Final = frozenset(
    {"/mesh/v1/push", "/mesh/v1/reconcile", "/mesh/v1/fetch", "/mesh/v1/tree", "/mesh/v1/pair", RECOVER_PATH}
)
# For the AppRunner: never inflate a body, never drain one after answering, and
# close an idle kept-alive connection after listener.KEEPALIVE_S (aiohttp: an hour).
RUNNER_OPTIONS: Final[dict[str, Any]] = {
    "auto_decompress": False,
    "lingering_time": 0,
    "keepalive_timeout": listener.KEEPALIVE_S,
}
T = TypeVar("T")


def make_app(service: NodeService, budget: RequestBudget | None = None) -> web.Application:
    app = web.Application(client_max_size=framing.MAX_FRAME_BYTES, middlewares=[_signed, _door, _errors])
    app[SERVICE] = service
    app[BUDGET] = budget or RequestBudget()
    app.router.add_post("/mesh/v1/push", _push)
    app.router.add_post("/mesh/v1/reconcile", _reconcile)
    app.router.add_post("/mesh/v1/fetch", _fetch)
    app.router.add_post("/mesh/v1/tree", _tree)
    app.router.add_post("/mesh/v1/pair", _pair)
    app.router.add_post(RECOVER_PATH, _recover)
    return app


def _reply(frame: dict[str, Any]) -> web.Response:
    return web.Response(body=framing.pack(frame), content_type="application/x-msgpack")


def _refuse(status: int, reason: str) -> web.Response:
    return web.Response(status=status, text=reason)


class Refused(Exception):
    """A refusal at the door: answered at once, and the connection is closed
    without reading what the client may still be sending."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# -- middlewares, outermost first -------------------------------------------------------
@web.middleware
async def _signed(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer as a plain response, signed when the request named its nonce."""
    try:
        response: web.StreamResponse = await handler(request)
    except Refused as exc:
        response = _refuse(exc.status, exc.reason)
        response.force_close()
    except web.HTTPException as exc:
        response = _refuse(exc.status, exc.text or exc.reason)
    if isinstance(response, web.Response):
        _sign(request, response)
    return response


def _sign(request: web.Request, response: web.Response) -> None:
    try:
        auth, _sig = signed_request.parse_header(request.headers.get(signed_request.HEADER))
    except ProtocolError:
        return  # no nonce to bind: the client treats an unsigned answer as none
    body = response.body
    if not isinstance(body, bytes):
        return
    response.headers[signed_reply.HEADER] = signed_reply.sign_reply(
        request.app[SERVICE].identity.signing_key,
        status=response.status,
        path=request.path,
        body=body,
        nonce=auth.nonce,
        requester=auth.sender,
    )


@web.middleware
async def _door(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Checks that need no body: shape of the request, then its budget."""
    if "?" in request.raw_path or "#" in request.raw_path:
        raise Refused(400, "request refused: mesh requests carry no query string")
    if request.raw_path not in PATHS:
        raise Refused(404, "request refused: not a mesh path")
    if hdrs.CONTENT_ENCODING in request.headers:
        raise Refused(415, "request refused: Content-Encoding is not accepted (bodies are never compressed)")
    coding = request.headers.get(hdrs.TRANSFER_ENCODING)
    if coding is not None and coding.strip().lower() != "chunked":
        raise Refused(415, "request refused: the only transfer coding accepted is chunked")
    if (request.content_length or 0) > framing.MAX_FRAME_BYTES:
        raise Refused(413, f"request refused: body over {framing.MAX_FRAME_BYTES} bytes")
    _check_budget(request)
    return await handler(request)


def _check_budget(request: web.Request) -> None:
    service, budget = request.app[SERVICE], request.app[BUDGET]
    if request.path == "/mesh/v1/pair":
        if not budget.spend_pair(request.remote):
            service.counters.reject("request-pair-budget")
            raise Refused(429, "request refused: too many pair requests from this address; wait a minute")
        return
    claimed = _claimed_sender(request)
    peer = service.store.peer_for_request(claimed) if claimed else None
    if claimed and peer is not None and peer.status == "active":
        if not budget.peer_has_budget(claimed):
            service.counters.reject("request-budget")
            raise Refused(429, "request refused: request budget spent; slow down")
        if service.cut_off(claimed):  # its body is never read (issue 15: the forger kept pushing)
            budget.spend_peer(claimed)  # and it costs its budget: past it, the door says so (audit)
            service.counters.reject("request-cut-off")
            raise Refused(429, "request refused: peer cut off for sending invalid data")
        if not budget.address_has_budget(request.remote, claimed):
            service.counters.reject("request-address-budget")
            raise Refused(429, "request refused: too many failed signatures from this address")
        request[CLAIMED] = claimed
    elif not budget.spend_address(request.remote):
        service.counters.reject("request-address-budget")
        raise Refused(429, "request refused: too many requests from this address")


def _claimed_sender(request: web.Request) -> bytes | None:
    try:
        return signed_request.parse_header(request.headers.get(signed_request.HEADER))[0].sender
    except ProtocolError:
        return None


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except (web.HTTPException, Refused):
        raise
    except BadFrame as exc:
        return _refuse(400, f"bad frame: {exc.message}")
    except mesh.MeshError as exc:
        return _refuse(400, f"bad frame: {exc}")
    except SQLAlchemyError:  # a full disk or a failing database: logged by the service, nothing acknowledged
        return _refuse(503, "store unavailable: try again later")
    except VerifierUnavailable:  # the verification workers keep dying: nothing accepted, nobody blamed
        return _refuse(503, "verification unavailable: try again later")
    except Exception:
        log.exception("mesh request failed")
        return _refuse(500, "internal error")


# -- authentication ----------------------------------------------------------------------
async def _read_body(request: web.Request) -> bytes:
    """The body, never read past the limit (a chunked body is cut there) nor
    for longer than ``listener.BODY_S``: a body that trickles is refused (408)
    and its connection closed."""
    body = bytearray()
    try:
        async with asyncio.timeout(listener.BODY_S):
            async for chunk in request.content.iter_any():
                body += chunk
                if len(body) > framing.MAX_FRAME_BYTES:
                    raise Refused(413, f"request refused: body over {framing.MAX_FRAME_BYTES} bytes")
    except TimeoutError:
        request.app[SERVICE].counters.reject("request-body-timeout")
        raise Refused(408, f"request refused: body not complete within {listener.BODY_S:.0f} s") from None
    return bytes(body)


def _verify(request: web.Request, body: bytes, service: NodeService) -> signed_request.RequestAuth:
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
    with the work, in one transaction (a push: ``NodeService.relay``, which holds
    it in memory until then, ``hold_nonce``), or not at all (a refused pair request)."""
    service, budget = request.app[SERVICE], request.app[BUDGET]
    body = await _read_body(request)
    try:
        auth = _verify(request, body, service)
    except ProtocolError as exc:
        service.counters.reject(f"request-{exc.code}")
        budget.spend_address(request.remote, request.get(CLAIMED))  # a failed signature costs its address
        raise web.HTTPUnauthorized(text=f"request refused: {exc.message}") from None
    if known_peer:
        peer = service.store.peer_for_request(auth.sender)
        if peer is None or peer.status != "active":
            service.counters.reject("request-unknown-peer")
            raise web.HTTPForbidden(text="request refused: not a peer of this node")
        if not budget.spend_peer(auth.sender):  # before the ban: a cut-off peer's requests cost it too
            service.counters.reject("request-budget")
            raise web.HTTPTooManyRequests(text="request refused: request budget spent; slow down")
        if service.cut_off(auth.sender):
            raise web.HTTPTooManyRequests(text="request refused: peer cut off for sending invalid data")
    expires = auth.timestamp + 2 * signed_request.MAX_REQUEST_AGE_MS
    if defer_nonce:
        fresh = not service.store.nonce_used(auth.sender, auth.nonce)
    else:
        fresh = service.remember_nonce(auth.sender, auth.nonce, expires)
    if not fresh:
        service.counters.reject("request-replayed")
        raise web.HTTPConflict(text="request refused: nonce already used (replay)")
    if known_peer:
        service.heard_from(auth.sender)  # it reaches us: our backed-off pushes to it go now
    return Authenticated(auth.sender, body, (auth.nonce, expires))


def _parsed(service: NodeService, sender: bytes, parse: Callable[[], T]) -> T:
    """A frame that does not parse is invalid data from its sender, scored like
    an invalid envelope (the mesh may cut the sender off)."""
    try:
        return parse()
    except (BadFrame, mesh.MeshError):
        service.counters.reject("bad-frame")
        service.handle(mesh.PeerInvalid(sender, "malformed"))
        raise


# -- the five endpoints ------------------------------------------------------------------
async def _push(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    sender, body, nonce = await _authenticated(request, defer_nonce=True)
    try:
        frame = _parsed(service, sender, lambda: framing.unpack(body))
        raws = _parsed(service, sender, lambda: framing.envelope_list(frame))
        speaks = _parsed(service, sender, lambda: framing.speaks_tree(frame))
        hops = _parsed(service, sender, lambda: framing.hop_counts(frame, len(raws)))
    except BadFrame:
        service.store.remember_nonce(sender, *nonce)
        raise
    service.tree_spoken(sender, speaks)  # before its items: a duplicate among them may prune
    if not service.hold_nonce(sender, nonce[0]):  # the same push, still under way
        service.counters.reject("request-replayed")
        raise web.HTTPConflict(text="request refused: nonce already used (replay)")
    try:
        outcome = await service.relay(raws, sender, nonce, hops)
    finally:
        service.release_nonce(sender, nonce[0])
    # ``deferred``: ids refused for a budget, which the sender keeps and sends again;
    # ``tree``: this node runs tree push (node.treepush).
    return _reply(
        {
            "accepted": outcome.accepted,
            "invalid": outcome.invalid,
            "deferred": list(outcome.deferred),
            **service.tree.push_fields(),
        }
    )


async def _reconcile(request: web.Request) -> web.Response:
    sender, body, _nonce = await _authenticated(request)
    service = request.app[SERVICE]
    reply = _parsed(
        service, sender, lambda: mesh.reconcile.respond(service.mesh.keys(), framing.unpack(body).get("m"))
    )
    return _reply({"m": reply, "ranges": True})  # ranges: this node answers range fetches


async def _fetch(request: web.Request) -> web.Response:
    sender, body, _nonce = await _authenticated(request)
    service = request.app[SERVICE]
    frame = _parsed(service, sender, lambda: framing.unpack(body))
    ids = _parsed(service, sender, lambda: framing.id_list(frame, limit=framing.MAX_FETCH_IDS))
    authors = _parsed(service, sender, lambda: framing.author_list(frame))  # their node records, after the ids
    asked = _parsed(service, sender, lambda: framing.fetch_range(frame))
    out, room = _one_frame(service, ids + service.record_ids(authors))
    if asked is None:
        return _reply({"e": out})
    more, after = _range_page(service, asked, room - RANGE_REPLY_SLACK)
    return _reply({"e": out + more, "next": None if after is None else list(after)})


async def _tree(request: web.Request) -> web.Response:
    """A tree signal (node.treepush): ids the sender holds, a graft or a prune."""
    sender, body, _nonce = await _authenticated(request)
    service = request.app[SERVICE]
    signal = _parsed(service, sender, lambda: framing.tree_signal(framing.unpack(body)))
    service.tree_signal(sender, signal)
    return _reply({})


def _one_frame(service: NodeService, ids: list[bytes]) -> tuple[list[bytes], int]:
    """The stored envelopes among ``ids``, in the order asked, as many as fit in
    one frame: the requester asks again for the ids it did not get. Also the room
    left in the frame (negative: full)."""
    room = framing.MAX_FRAME_BYTES - framing.FRAME_SLACK
    out: list[bytes] = []
    for start in range(0, len(ids), 32):
        for row in service.store.get_many(ids[start : start + 32]):
            room -= len(row.raw) + framing.ITEM_OVERHEAD
            if room < 0:
                return out, room
            out.append(row.raw)
    return out, room


def _range_page(
    service: NodeService, asked: framing.RangeAsked, room: int
) -> tuple[list[bytes], mesh.reconcile.Bound | None]:
    """A range fetch's page: the envelopes of the keys in the range, in key order,
    at most ``asked.limit`` and what fits in ``room``; and the bound the requester
    goes on from (None: this was the rest of the range). The keys come from the
    mesh's index (what reconciliation showed the peer), read with one bisection,
    so the work is that of an id fetch of ``limit`` ids."""
    keys = mesh.reconcile.page(service.mesh.keys(), asked.lower, asked.upper, asked.limit)
    served = min(len(keys), asked.limit)
    out: list[bytes] = []
    for start in range(0, served, 32):
        chunk = keys[start : min(start + 32, served)]
        rows = {row.id: row for row in service.store.get_many([key[1] for key in chunk])}
        for at, key in enumerate(chunk, start):
            row = rows.get(key[1])  # gone since (expired): skipped, the next page goes on after it
            if row is None:
                continue
            room -= len(row.raw) + framing.ITEM_OVERHEAD
            if room < 0:
                return out, mesh.reconcile.next_bound(keys, at)
            out.append(row.raw)
    return out, mesh.reconcile.next_bound(keys, served)


#: Room kept in a fetch reply for its ``next`` bound (at most 33 bytes of prefix and
#: a 64-bit created, with the key): the reply stays within one frame.
RANGE_REPLY_SLACK = 64


async def _pair(request: web.Request) -> web.Response:
    sender, body, nonce = await _authenticated(request, known_peer=False, defer_nonce=True)
    service = request.app[SERVICE]
    try:
        frame = accept_pair_request(service, sender, framing.unpack(body))
    except PairingError as exc:
        digest = hashlib.blake2b(sender, digest_size=4).hexdigest()
        log.warning("pairing request from %s refused: %s", digest, exc)
        raise web.HTTPForbidden(text=f"pairing refused: {exc}") from None
    service.store.remember_nonce(sender, *nonce)  # only now: the invite secret was valid
    return _reply(frame)


async def _recover(request: web.Request) -> web.Response:
    """A peer recovered after a raid (docs/operators.md): its committed next key,
    unknown here until now, brings the signed recovery record naming the key this
    node peers with. Stored (the mesh checks the commitment), the peering moves to
    the new key and its next requests are a peer's."""
    sender, body, _nonce = await _authenticated(request, known_peer=False)
    service = request.app[SERVICE]
    try:
        raws = framing.envelope_list(framing.unpack(body))
    except BadFrame as exc:
        raise web.HTTPBadRequest(text=f"bad frame: {exc.message}") from None
    refused = service.take_recovery(sender, raws[0] if len(raws) == 1 else b"")
    if refused is not None:
        raise web.HTTPForbidden(text=f"recovery refused: {refused}")
    return _reply({"ok": True})
