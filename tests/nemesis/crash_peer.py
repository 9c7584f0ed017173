"""The relaying peer of the crash-consistency run (``tests/nemesis/crash.py``).

It plays one paired peer of the node under test, in the harness's process, so
that the run can see both sides of every mesh request:

- as a **sender** it pushes envelopes to the node (alerts by a third author it
  vouches for, so the node relays what it did not write, and a few of its own)
  and records which ones the node acknowledged: a 200 answer to ``/mesh/v1/push``
  whose ``deferred`` does not name them. It keeps every acknowledged push's
  signed request so the run can replay one after a restart;
- as a **receiver** it is the node's peer listener (HTTPS, pinned certificate,
  signed replies as a real node gives them): it records the request nonce of
  every signed request the node sends it, through all the node's lives, and the
  envelopes pushed to it, so the run can prove no nonce is used twice.

A pure-Python peer next to a real node process, like ``tests/e2e/harness.py``'s
``ScriptedPeer``, which it extends: the node under test is the real thing.
"""

from __future__ import annotations

import asyncio
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from mesh import MeshError, reconcile
from node import provision
from node.devmesh import LocalNode, free_port
from protocol import Alert, Area, Envelope, Identity, ProtocolError, decode, framing, sign_envelope
from protocol.request import HEADER, parse_header, sign_request
from tests.e2e.harness import ScriptedPeer, now_ms, sign_answer
from tests.e2e.listeners import ThreadedListener

PEER_NAME = "Nodo Relevo de Prueba"
AUTHOR_NAME = "Autora Relevada de Prueba"
PUSH_TIMEOUT_S = 8.0


@dataclass(frozen=True)
class Heard:
    """One signed request the node sent us."""

    life: int  # which start of the node it came from (``RelayPeer.life`` at receipt)
    path: str
    sender: bytes
    nonce: bytes


@dataclass(frozen=True)
class Push:
    """One push we made that the node acknowledged, exactly as it went out."""

    life: int
    header: str
    body: bytes
    ids: tuple[bytes, ...]


@dataclass
class PushAnswer:
    status: int  # 0: no answer (the node was down or died mid-request)
    acknowledged: list[bytes] = field(default_factory=list)
    deferred: list[bytes] = field(default_factory=list)
    invalid: int = 0
    text: str = ""


class PeerListener(ThreadedListener):
    """The peer's side of the node's requests: answers them as a real node would and
    writes down their nonces."""

    def __init__(self, home: Path, peer: RelayPeer) -> None:
        home.mkdir(parents=True)
        provision.make_certificate(home, PEER_NAME)
        fingerprint = provision.tls_fingerprint(home)
        assert fingerprint is not None
        self.fingerprint = fingerprint
        self.peer = peer
        super().__init__(home, free_port())

    def app(self) -> web.Application:
        app = web.Application(client_max_size=framing.MAX_FRAME_BYTES + 1024)
        app.router.add_post("/mesh/v1/{what}", self._answer)
        return app

    async def _answer(self, request: web.Request) -> web.Response:
        header = request.headers.get(HEADER)
        body = await request.read()
        try:
            auth, _ = parse_header(header)
        except ProtocolError:
            return web.Response(status=401, text="unsigned")
        self.peer.heard_request(Heard(self.peer.life, request.path, auth.sender, auth.nonce))
        try:
            frame = framing.unpack(body)
            reply = self.peer.answer(request.match_info["what"], frame)
        except (ProtocolError, MeshError) as exc:
            reply, status = None, 400
            text = f"bad frame: {exc}".encode()
        if reply is not None:
            status, text = 200, framing.pack(reply)
        return web.Response(
            status=status,
            body=text,
            headers=sign_answer(self.peer.identity, request.path, header, status, text),
        )


class RelayPeer(ScriptedPeer):
    def __init__(self, home: Path) -> None:
        self.author = Identity.from_random(os.urandom(64))  # writes the alerts we relay
        self.listener = PeerListener(home, self)
        super().__init__(PEER_NAME, (f"127.0.0.1:{self.listener.port}",), self.listener.fingerprint)
        self.life = 0
        self.heard: list[Heard] = []
        self.received: dict[bytes, bytes] = {}  # id -> raw, what the node pushed us
        self.acknowledged: dict[bytes, Push] = {}
        self.pushes: list[Push] = []
        self.refused: list[str] = []  # pushes answered with an error (not 200, not down)
        self._keys = reconcile.KeyIndex()
        self._ours: dict[bytes, bytes] = {}  # everything we hold: what we made and what we got
        self._lock = threading.Lock()
        self._seq = 0

    # -- as a receiver ---------------------------------------------------------------

    def heard_request(self, heard: Heard) -> None:
        with self._lock:
            self.heard.append(heard)

    def answer(self, what: str, frame: dict[str, Any]) -> dict[str, Any]:
        if what == "push":
            raws = framing.envelope_list(frame)
            for raw in raws:
                self._hold(raw, received=True)
            return {"accepted": len(raws), "invalid": 0, "deferred": []}
        if what == "reconcile":
            with self._lock:
                return {"m": reconcile.respond(self._keys, frame.get("m"))}
        if what == "fetch":
            ids = framing.id_list(frame, limit=framing.MAX_FETCH_IDS)
            with self._lock:
                return {"e": [self._ours[i] for i in ids if i in self._ours]}
        return {}  # tree signals: nothing to do for a peer that only floods

    def _hold(self, raw: bytes, received: bool = False) -> Envelope | None:
        try:
            env = decode(raw, now=now_ms(), check_time=False)
        except ProtocolError:
            return None
        with self._lock:
            if env.id not in self._ours:
                self._ours[env.id] = raw
                self._keys.add((env.created, env.id))
            if received:
                self.received[env.id] = raw
        return env

    # -- as a sender ------------------------------------------------------------------

    def introduce(self, node: LocalNode) -> None:
        """Pair, then vouch for the relayed author so she is inside the node's horizon."""
        self.pair_with(node)
        vouch = self.vouch_for(self.author, AUTHOR_NAME)
        self._hold(vouch.raw)
        answer = asyncio.run(self._push_once(node, [vouch.raw]))
        if answer.status != 200 or answer.deferred or answer.invalid:
            raise RuntimeError(f"the node did not take the vouch for the relayed author: {answer}")

    def fresh(self, count: int) -> list[Envelope]:
        """New alerts, most by the vouched author (relayed), one in four by the peer itself."""
        out = []
        for _ in range(count):
            with self._lock:
                self._seq += 1
                seq = self._seq
            by = self.identity if seq % 4 == 0 else self.author
            body = Alert(
                headline=f"Relevo {seq}: retén en la carretera", areas=(Area("MX-CHP"),), severity="severe"
            )
            now = now_ms()
            env = sign_envelope(by, body, created=now, expires=now + 6 * 3600_000)
            self._hold(env.raw)
            out.append(env)
        return out

    async def send_push(
        self, session: aiohttp.ClientSession, node: LocalNode, raws: list[bytes]
    ) -> PushAnswer:
        """One signed push; what the node acknowledged is recorded (with the request)."""
        life = self.life
        body = framing.pack({"e": raws})
        path = "/mesh/v1/push"
        header = sign_request(
            self.identity.signing_key,
            method="POST",
            path=path,
            body=body,
            receiver=self.node_key,
            now=now_ms(),
            nonce=os.urandom(16),
        )
        status, text = await self._post(session, node, path, body, header)
        answer = PushAnswer(status, text=text[:200].decode("utf-8", "replace"))
        if status != 200:
            if status:
                self.refused.append(f"{status} {answer.text}")
            return answer
        try:
            frame = framing.unpack(text)
            answer.deferred = [bytes(i) for i in frame.get("deferred", [])]
            answer.invalid = int(frame.get("invalid", 0))
        except (ProtocolError, TypeError, ValueError) as exc:
            self.refused.append(f"unreadable push answer: {exc}")
            return answer
        ids = [decode(raw, now=now_ms(), check_time=False).id for raw in raws]
        answer.acknowledged = [i for i in ids if i not in set(answer.deferred)]
        push = Push(life, header, body, tuple(answer.acknowledged))
        with self._lock:
            self.pushes.append(push)
            for eid in answer.acknowledged:
                self.acknowledged.setdefault(eid, push)
        return answer

    async def replay(self, session: aiohttp.ClientSession, node: LocalNode, push: Push) -> int:
        """The very request of an earlier acknowledged push, sent again: its status."""
        status, _ = await self._post(session, node, "/mesh/v1/push", push.body, push.header)
        return status

    async def _post(
        self, session: aiohttp.ClientSession, node: LocalNode, path: str, body: bytes, header: str
    ) -> tuple[int, bytes]:
        try:
            async with session.post(
                f"https://127.0.0.1:{node.mesh_port}{path}",
                data=body,
                headers={HEADER: header, "Content-Type": "application/x-msgpack"},
                ssl=aiohttp.Fingerprint(self.node_tls),
                timeout=aiohttp.ClientTimeout(total=PUSH_TIMEOUT_S),
            ) as resp:
                return resp.status, await resp.read()
        except (TimeoutError, aiohttp.ClientError, OSError):
            return 0, b""

    async def _push_once(self, node: LocalNode, raws: list[bytes]) -> PushAnswer:
        async with aiohttp.ClientSession() as session:
            return await self.send_push(session, node, raws)

    def learn(self, node: LocalNode) -> None:
        """The node's signing key and certificate fingerprint (they never change here)."""
        info = node.api.get("/api/v1/id")
        self.node_key = bytes.fromhex(info["key"])
        self.node_tls = bytes.fromhex(info["tls_fingerprint"])

    def nonces_by_life(self) -> dict[int, int]:
        with self._lock:
            out: dict[int, int] = {}
            for h in self.heard:
                out[h.life] = out.get(h.life, 0) + 1
            return out
