"""The honest traffic: alerts, updates, acks and check-ins from every node, each
recorded with what the authoring node answered.

An operation is *acknowledged* when the node answered 201 with an envelope id:
that id is a promise, and the checker holds every node to it. A refusal or no
answer (the node was killed, hung, or cut off from its disk) promises nothing.
"""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import dataclass, field

from tests.nemesis.cluster import NetNode, Refused, Unanswered

REGIONS = ("MX-OAX", "MX-CHP", "MX-GRO", "CO-ANT", "GT")


@dataclass
class Op:
    kind: str  # alert, update, ack, checkin
    node: int
    started: float
    ended: float = 0.0
    outcome: str = ""  # ok, refused:<code>, unanswered
    id: str = ""  # the envelope id the node answered with
    detail: str = ""  # the node's explanation of a refusal


@dataclass
class Workload:
    nodes: list[NetNode]
    rng: random.Random
    workers: int = 3
    pause_s: float = 0.15
    ops: list[Op] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _seq: int = 0

    def acknowledged(self) -> dict[bytes, Op]:
        with self._lock:
            return {bytes.fromhex(o.id): o for o in self.ops if o.outcome == "ok" and o.id}

    def start(self) -> None:
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._run, args=(random.Random(self.rng.random()),), daemon=True)
            for _ in range(self.workers)
        ]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def _run(self, rng: random.Random) -> None:
        while not self._stop.is_set():
            node = rng.choice(self.nodes)
            roll = rng.random()
            kind = (
                "alert" if roll < 0.65 else "update" if roll < 0.78 else "ack" if roll < 0.95 else "checkin"
            )
            self.one(node, kind, rng)
            self._stop.wait(self.pause_s * rng.uniform(0.5, 1.5))

    def one(self, node: NetNode, kind: str, rng: random.Random) -> Op:
        with self._lock:
            self._seq += 1
            seq = self._seq
            mine = [
                o.id for o in self.ops if o.outcome == "ok" and o.kind == "alert" and o.node == node.index
            ]
            others = [
                o.id for o in self.ops if o.outcome == "ok" and o.kind == "alert" and o.node != node.index
            ]
        if (kind == "update" and not mine) or (kind == "ack" and not others):
            kind = "alert"
        op = Op(kind, node.index, time.monotonic())
        try:
            op.id = self._do(node, kind, seq, rng, mine, others)
            op.outcome = "ok"
        except Refused as exc:
            op.outcome, op.detail = f"refused:{exc.code}", re.sub("[0-9a-f]{64}", "ID", exc.message)
        except Unanswered:
            op.outcome = "unanswered"
        op.ended = time.monotonic()
        with self._lock:
            self.ops.append(op)
        return op

    def _do(
        self, node: NetNode, kind: str, seq: int, rng: random.Random, mine: list[str], others: list[str]
    ) -> str:
        if kind == "alert":
            doc = {
                "regions": [rng.choice(REGIONS)],
                "severity": rng.choice(["minor", "moderate", "severe", "extreme"]),
                "headline": f"Prueba de resistencia {seq}: retén en la carretera",
                "expires": "6h",
            }
            return str(node.call("POST", "/api/v1/alerts", doc)["id"])
        if kind == "update":
            doc = {"headline": f"Prueba de resistencia {seq}: actualización"}
            return str(node.call("POST", f"/api/v1/alerts/{rng.choice(mine[-20:])}/update", doc)["id"])
        if kind == "ack":
            target = rng.choice(others[-20:])
            return str(node.call("POST", f"/api/v1/alerts/{target}/ack", {"state": "seen"})["id"])
        answer = node.call(
            "POST",
            "/api/v1/checkins",
            {"who": f"Acompañante {seq}", "region": rng.choice(REGIONS), "in": "2h"},
        )
        node.call("POST", f"/api/v1/checkins/{answer['id']}/ok")
        return ""  # a check-in is local to its node: no envelope to hold anyone to
