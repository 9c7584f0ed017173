"""Last words before a panic wipe (``amparo wipe --alert``).

The running node holds the only unlocked key, so it speaks for the wipe: it
signs a duress alert sealed to the peers the operator named (severe, so their
on-call responders are paged) and this node's own compromise declaration
(``revoke`` of its own key, SPEC §3.5), pushes each to every named peer
directly, and answers only when each peer acknowledged it (the push reply of a
peer that stored it) or the deadline passed. Then the CLI erases the keys.

Order matters: a peer refuses anything from a key it already holds as
compromised, so the alert goes first and the declaration is signed and sent
only after the alert was acknowledged (or its deadline passed). Both are also
published like anything the node signs: the declaration reaches every ally,
the sealed alert only its recipients can read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web

from node import contract as c
from node.alerts import make_envelope
from node.duress import WIPE_HEADLINE, WIPE_INSTRUCTION
from node.errors import Refused
from node.routes import Route, read_body, service
from node.service import NodeService
from node.store import PeerRow
from node.transport import TransportError
from protocol import Alert, Area, Envelope, Revoke, framing, sign_envelope
from protocol.bodies import MAX_REASON
from protocol.errors import BadFrame, ProtocolError

log = logging.getLogger("amparo.wipe")
DEFAULT_WAIT_MS = 10_000
MAX_WAIT_MS = 120_000
ALERT_TTL_MS = 24 * 3600 * 1000
RETRY_S = 0.25
COMPROMISE_REASON = "duress wipe: the node was erased under pressure"


class WipeAlertError(Refused):
    """A named peer this node does not have, or a node that can no longer sign."""


def duress_alert(s: NodeService, peers: list[PeerRow], now: int) -> Envelope:
    """Severe, restricted to the named peers: only they read who and why."""
    region = s.config.watch_regions[0] if s.config.watch_regions else "*"
    alert = Alert(
        headline=(WIPE_HEADLINE % {"node": s.config.name})[:160],
        areas=(Area(region),),
        severity="severe",
        urgency="immediate",
        certainty="likely",
        event="raid",
        scope="restricted",
        instruction=WIPE_INSTRUCTION,
    )
    return make_envelope(
        s.identity, alert, now=now, ttl_ms=ALERT_TTL_MS, recipients=[p.enc_key for p in peers]
    )


def compromise_notice(s: NodeService, now: int) -> Envelope:
    body = Revoke(subject=s.key, compromised=True, reason=COMPROMISE_REASON[:MAX_REASON])
    return sign_envelope(s.identity, body, created=now, expires=0)


async def deliver(s: NodeService, peer: PeerRow, env: Envelope, deadline: float) -> bool:
    """Push ``env`` to ``peer`` until it acknowledges (stored, not deferred, not
    invalid) or ``deadline`` (monotonic seconds) passes."""
    address = s.peer_address(peer.key)
    while address is not None:
        try:
            reply = await asyncio.wait_for(
                s.client.call(address, "/mesh/v1/push", {"e": [env.raw]}),
                timeout=max(deadline - time.monotonic(), 0.01),
            )
            if not reply.get("invalid") and env.id not in framing.deferred_ids(reply, 1):
                return True
        except (TransportError, BadFrame, ProtocolError, TimeoutError) as exc:
            log.info("wipe alert: %s did not take it yet (%s)", peer.name, type(exc).__name__)
        if time.monotonic() + RETRY_S >= deadline:
            return False
        await asyncio.sleep(RETRY_S)  # a backoff between tries, not a stand-in for a condition
    return False


async def warn_peers(s: NodeService, names: list[str], wait_ms: int) -> dict[str, Any]:
    peers = _named(s, names)
    if s.trust.is_compromised(s.key):
        raise WipeAlertError(
            "this node's key is already declared compromised: it can sign nothing more",
            code="key-compromised",
            status=409,
        )
    deadline = time.monotonic() + wait_ms / 1000
    alert = duress_alert(s, peers, s.clock())
    s.author(alert)
    alerted = await asyncio.gather(*(deliver(s, p, alert, deadline) for p in peers))
    notice = compromise_notice(s, max(s.clock(), alert.created + 1))
    s.author(notice)
    declared = await asyncio.gather(*(deliver(s, p, notice, deadline) for p in peers))
    outcome = {
        p.name: {"alert": a, "compromise": d} for p, a, d in zip(peers, alerted, declared, strict=True)
    }
    log.warning(
        "wipe alert sent to %d peers; acknowledged by %d",
        len(peers),
        sum(1 for o in outcome.values() if all(o.values())),
    )
    return {"alert": alert.id.hex(), "revocation": notice.id.hex(), "peers": outcome}


def _named(s: NodeService, names: list[str]) -> list[PeerRow]:
    peers: list[PeerRow] = []
    for name in dict.fromkeys(n.strip() for n in names if n.strip()):
        peer = s.store.find_peer(name)
        if peer is None or peer.status != "active":
            raise WipeAlertError(f"alert: no peer called {name!r} (amparo peer list)", status=404)
        peers.append(peer)
    if not peers:
        raise WipeAlertError("alert: name at least one peer")
    return peers


async def _wipe_alert(request: web.Request) -> web.Response:
    s = service(request)
    doc = await read_body(request, c.WipeAlertInput)
    if doc.confirm != s.config.name:
        raise Refused("confirm: give this node's exact name to confirm")
    wait_ms = doc.wait_ms if doc.wait_ms is not None else DEFAULT_WAIT_MS
    if not 0 < wait_ms <= MAX_WAIT_MS:
        raise Refused(f"wait_ms: between 1 and {MAX_WAIT_MS}")
    return web.json_response(await warn_peers(s, doc.peers, wait_ms), status=201)


ROUTES = (
    Route(
        "POST",
        "/api/v1/wipe/alert",
        _wipe_alert,
        "Before a panic wipe: send a sealed duress alert and this node's compromise declaration to the "
        "named peers, and answer when each acknowledged them (or the wait is over)",
        body=c.WipeAlertInput,
        answer=c.WipeAlerted,
        status=201,
        refusals=(404, 409),
    ),
)
