"""Mutual pairing by one-time invite (SPEC §5.3).

``amparo peer invite`` prints a token carrying this node's signed ``node`` record
(keys, addresses, pinned TLS fingerprint) and a one-time secret. The other
operator runs ``amparo peer accept TOKEN``: their node connects to the address
in the record, pinned to its certificate, and sends its own record, its vouch
and the secret in a signed request. Both sides then store each other as peers
and vouch for each other, and the vouches gossip so allies-of-allies can trust
the pair. The fingerprints shown on both sides are for comparing out of band;
the secret is only a hash in the inviter's database and works once.
"""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

from aiohttp import web

from node import contract as c
from node import records
from node.alerts import parse_duration
from node.errors import Refused
from node.routes import Route, read_body, service
from node.service import NodeService
from node.store import PeerRow
from node.transport import PeerAddress, TransportError
from protocol import Envelope, NodeRecord, ProtocolError, Vouch, decode, fingerprint, framing
from protocol.signing import PERSON_INVITE

INVITE_TTL_MS = 24 * 3600 * 1000
SECRET_BYTES = 32
TOKEN_PREFIX = "amparo1-"


class PairingError(Refused):
    """Pairing could not complete; the message says why in an operator's words."""


# Why an inviter refuses a pair request, as the operator who accepted reads it:
# a refusal is never "could not reach" (the inviter answered).
REFUSALS = {
    "used": "this invite was already used; ask your ally for a new one",
    "expired": "this invite has expired; ask your ally for a new one",
    "unknown": "this invite is not one the inviting node knows (it may have been wiped); ask for a new one",
}
REFUSED_PREFIX = "pairing refused: "  # how the mesh listener answers a PairingError (node/mesh_api.py)


def _secret_hash(secret: bytes) -> bytes:
    return hashlib.blake2b(secret, digest_size=32, person=PERSON_INVITE).digest()


def create_invite(service: NodeService, ttl_ms: int = INVITE_TTL_MS) -> tuple[str, int]:
    now = service.clock()
    secret = os.urandom(SECRET_BYTES)
    expires = now + ttl_ms
    service.store.add_invite(_secret_hash(secret), now, expires)
    frame = {"r": service.own_record().raw, "s": secret, "x": expires}
    token = base64.urlsafe_b64encode(framing.pack(frame)).decode("ascii").rstrip("=")
    return TOKEN_PREFIX + token, expires


def read_invite(token: str, now: int) -> tuple[Envelope, bytes, int]:
    """Parse a token: (inviter's node record, secret, expiry)."""
    token = token.strip()
    if not token.startswith(TOKEN_PREFIX):
        raise PairingError("this is not an Amparo invite (an invite starts with amparo1-)")
    try:
        data = base64.urlsafe_b64decode(token[len(TOKEN_PREFIX) :] + "=" * (-len(token) % 4))
        frame = framing.unpack(data)
        record = decode(frame["r"], now=now)
    except (ValueError, ProtocolError, KeyError, TypeError):
        raise PairingError(
            "this is not an Amparo invite, or it was cut short when copied: copy the whole token again"
        ) from None
    secret, expires = frame.get("s"), frame.get("x")
    if (
        not isinstance(record.body, NodeRecord)
        or not isinstance(secret, bytes)
        or not isinstance(expires, int)
    ):
        raise PairingError("this is not an Amparo invite (it carries no node record or secret)")
    if expires < now:
        raise PairingError(REFUSALS["expired"])
    return record, secret, expires


def describe_record(record: Envelope) -> dict[str, Any]:
    body = record.body
    assert isinstance(body, NodeRecord)
    return {
        "name": body.name,
        "key": record.author.hex(),
        "fingerprint": fingerprint(record.author),
        "addresses": list(body.addresses),
        "tls_fingerprint": body.tls.hex(),
    }


def _peer_row(record: Envelope, now: int, *, verified: bool) -> PeerRow:
    return PeerRow.from_record(record, added_at=now, last_seen=now, verified=verified)


async def accept_invite(service: NodeService, token: str, *, verified: bool) -> dict[str, Any]:
    """The invitee's side: contact the inviter, exchange records and vouches."""
    now = service.clock()
    record, secret, _expires = read_invite(token, now)
    body = record.body
    assert isinstance(body, NodeRecord)
    if record.author == service.key:
        raise PairingError(
            "this invite was made by this node itself: give it to the ally you want to pair with"
        )
    my_vouch = records.vouch(service.identity, record.author, body.enc, body.name, now, verified=verified)
    frame = {"s": secret, "r": service.own_record().raw, "v": my_vouch.raw}
    address = PeerAddress(record.author, body.addresses, body.tls)
    try:
        reply = await service.client.call(address, "/mesh/v1/pair", frame)
        their_vouch = decode(reply["v"], now=now)
        their_record = decode(reply["r"], now=now)
    except TransportError as exc:
        raise PairingError(_why_not(body.name, exc)) from None
    except (KeyError, TypeError, ProtocolError) as exc:
        raise PairingError(f"{body.name} answered with an invalid pairing reply ({exc})") from None
    _check_vouch(their_vouch, author=record.author, subject=service.key)
    if their_record.author != record.author or not isinstance(their_record.body, NodeRecord):
        raise PairingError("the inviter's node record does not match the token")
    _complete(service, their_record, my_vouch, [their_record.raw, record.raw, their_vouch.raw])
    return describe_record(their_record)


def accept_pair_request(service: NodeService, sender: bytes, frame: dict[str, Any]) -> dict[str, Any]:
    """The inviter's side, called by the mesh listener for ``/mesh/v1/pair``."""
    now = service.clock()
    secret = frame.get("s")
    if not isinstance(secret, bytes) or len(secret) != SECRET_BYTES:
        raise PairingError("missing invite secret")
    try:
        record = decode(frame["r"], now=now)
        vouch = decode(frame["v"], now=now)
    except (KeyError, TypeError, ProtocolError) as exc:
        raise PairingError(f"invalid record or vouch ({exc})") from None
    if record.author != sender or not isinstance(record.body, NodeRecord):
        raise PairingError("the node record is not the requester's")
    _check_vouch(vouch, author=sender, subject=service.key)
    if not service.store.use_invite(_secret_hash(secret), now):
        raise PairingError(
            REFUSALS.get(service.store.invite_state(_secret_hash(secret), now), REFUSALS["unknown"])
        )
    body = record.body
    my_vouch = records.vouch(service.identity, sender, body.enc, body.name, now, verified=False)
    _complete(service, record, my_vouch, [record.raw, vouch.raw])
    return {"r": service.own_record().raw, "v": my_vouch.raw}


def _why_not(name: str, exc: TransportError) -> str:
    """A refusal in the inviter's words; only a call that got no answer is "could not reach"."""
    text = str(exc)
    if exc.status == 403 and REFUSED_PREFIX in text:
        return f"{name} refused the invite: {text.split(REFUSED_PREFIX, 1)[1]}"
    if exc.status == 429:
        return f"{name} refused: too many pairing attempts from this address; wait a minute and try again"
    if exc.status:
        return f"{name} refused the pairing ({text})"
    return f"could not reach {name}: {text} ({exc.side} side)"


def _check_vouch(vouch: Envelope, *, author: bytes, subject: bytes) -> None:
    if vouch.author != author or not isinstance(vouch.body, Vouch) or vouch.body.subject != subject:
        raise PairingError("the vouch does not come from the peer or is not for this node")


def _complete(service: NodeService, record: Envelope, my_vouch: Envelope, theirs: list[bytes]) -> None:
    import mesh

    # Verified: our own vouch says so, i.e. the invitee's operator confirmed the
    # fingerprint read aloud (`peer accept` without --yes). The inviter's side never is.
    verified = isinstance(my_vouch.body, Vouch) and my_vouch.body.level == "verified"
    service.store.upsert_peer(_peer_row(record, service.clock(), verified=verified))
    service.author(my_vouch)  # our vouch first: it puts the peer inside our trust horizon
    service.handle(mesh.PeerAdded(record.author))
    service.ingest(theirs, record.author)
    service.handle(mesh.PeerUp(record.author))


# -- the local API's peer routes -------------------------------------------------------------
async def list_peers(request: web.Request) -> web.Response:
    s = service(request)
    return web.json_response({"peers": [s.peer_json(p) for p in s.store.list_peers()]})


async def invite(request: web.Request) -> web.Response:
    s = service(request)
    doc = await read_body(request, c.InviteInput)
    ttl = parse_duration(doc.expires, "expires") if doc.expires else INVITE_TTL_MS
    token, expires = create_invite(s, ttl)
    return web.json_response({"token": token, "expires": expires, "fingerprint": fingerprint(s.key)})


async def accept(request: web.Request) -> web.Response:
    s = service(request)
    doc = await read_body(request, c.AcceptInput)
    peer = await accept_invite(s, doc.token, verified=doc.verified)
    return web.json_response({"peer": peer}, status=201)


async def remove_peer(request: web.Request) -> web.Response:
    s = service(request)
    peer = s.store.find_peer(request.match_info["peer"])
    if peer is None:
        raise Refused(f"no peer {request.match_info['peer']!r}", code="not-found", status=404)
    s.remove_peer(peer.key)
    return web.json_response({"removed": peer.key.hex(), "name": peer.name})


ROUTES = (
    Route("GET", "/api/v1/peers", list_peers, "Peers with fingerprints and state", answer=c.Peers),
    Route(
        "POST",
        "/api/v1/peers/invite",
        invite,
        "Make a one-time invite token",
        body=c.InviteInput,
        answer=c.Invite,
    ),
    Route(
        "POST",
        "/api/v1/peers/accept",
        accept,
        "Pair using another node's invite token",
        body=c.AcceptInput,
        answer=c.Paired,
        status=201,
    ),
    Route(
        "DELETE",
        "/api/v1/peers/{peer}",
        remove_peer,
        "Stop peering and revoke this node's vouch",
        answer=c.PeerRemoved,
        path_params=c.PeerPath,
        refusals=(404,),
    ),
)
