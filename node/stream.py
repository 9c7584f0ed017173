"""The live alert stream: server-sent events on ``/api/v1/stream``.

Each event's id is the alert's local sequence number, so a client that lost
its connection reconnects with ``Last-Event-ID`` and gets exactly what it
missed (replayed from the store, page by page until caught up, however long it
was away) before live events resume — nothing twice, nothing lost. Filters
(``region``, ``severity``, ``exercises``) are query parameters; ``amparo watch``
and the dashboard use this stream. An update or cancel passes the filters when
its alert did, before or after it (one by another author than the alert's is
not sent), and carries ``change``
(``node.all_clear.change_json``): who made it, why, what changed, and the
incident's current headline, severity and regions.

With ``receipts=1`` the stream also sends ``receipt`` events, without an id (they
are not replayed): ``{"alerts": [id, ...]}``, the alerts of this node that a
delivery receipt just named (docs/protocol.md §6.7). The dashboard's alert page
uses them to update "reached n of m" live; clients that do not ask never see one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from node import contract as c
from node.alerts import alert_json, open_row
from node.all_clear import FOLLOW_UPS, change_json, describe, sender_name
from node.errors import Refused
from node.routes import SERVICE, Route
from node.service import NodeService
from node.store import StoredEnvelope
from protocol import SEVERITIES, Alert, ProtocolError, regions

KEEPALIVE_S = 15
REPLAY_PAGE = 500  # alerts per read while replaying; each page is one short read transaction
STREAMED_TYPES = ("alert",)  # the envelope types the stream sends (updates and cancels are alerts)
SEVERITY_RANK = {s: i for i, s in enumerate(reversed(SEVERITIES))}  # unknown 0 … extreme 4


@dataclass(frozen=True)
class StreamFilter:
    region: str | None = None
    min_severity: str | None = None
    exercises: bool = True
    receipts: bool = False  # also ``receipt`` events (delivery receipts for this node's alerts)

    @classmethod
    def from_query(cls, query: Any) -> StreamFilter:
        region = query.get("region") or None
        if region:
            try:  # as people type it (mx-oax, Oaxaca); the message carries suggestions
                region = regions.resolve(region).code
            except ProtocolError as exc:
                raise Refused(exc.message) from None
        severity = query.get("severity") or None
        if severity and severity not in SEVERITIES:
            raise Refused(f"severity must be one of {', '.join(SEVERITIES)}")
        return cls(
            region,
            severity,
            query.get("exercises", "1") not in ("0", "false", "no"),
            query.get("receipts", "0") in ("1", "true", "yes"),
        )

    def accepts(self, alert: Alert) -> bool:
        if self.region and not any(regions.matches(self.region, a.region) for a in alert.areas):
            return False
        if self.min_severity and SEVERITY_RANK[alert.severity] < SEVERITY_RANK[self.min_severity]:
            return False
        return self.exercises or not alert.is_exercise


def handler(service_key: web.AppKey[NodeService]) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def stream(request: web.Request) -> web.StreamResponse:
        service = request.app[service_key]
        wanted = StreamFilter.from_query(request.query)
        last_id = request.headers.get("Last-Event-ID", request.query.get("since", ""))
        last_seq = int(last_id) if last_id.isdigit() else None
        queue: asyncio.Queue[StoredEnvelope] = asyncio.Queue()
        service.subscribers.add(queue)  # before the replay, so nothing falls in between
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-store",
                "X-Accel-Buffering": "no",
            }
        )
        try:
            await response.prepare(request)
            await response.write(b"retry: 2000\n: connected\n\n")
            replayed: set[int] = set()
            if last_seq is not None:
                replayed = await _replay(response, service, last_seq, wanted)
            while True:
                try:
                    row = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_S)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    replayed.clear()  # what the replay sent is long delivered by now
                    continue
                # Rows reach subscribers in commit order, not seq order (the group
                # writer's commits and the synchronous ones interleave), so a live row
                # is skipped only when the replay sent it or the client had it, never
                # for being below the last seq sent: that dropped alerts from the
                # stream (bench/propagation.py, 20 nodes: stored, never streamed).
                if row.seq in replayed or (last_seq is not None and row.seq <= last_seq):
                    replayed.discard(row.seq)
                    continue
                await _send(response, service, row, wanted)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            service.subscribers.discard(queue)
        return response

    return stream


ROUTES = (
    Route(
        "GET", "/api/v1/stream", handler(SERVICE), "Server-sent events, one per alert; resume with Last-Event-ID",
        media="text/event-stream", query=c.StreamQuery, headers=c.StreamHeaders,
    ),
)


async def _replay(
    response: web.StreamResponse, service: NodeService, after: int, wanted: StreamFilter
) -> set[int]:
    """Send every stored alert after ``after``, page by page; returns the seqs sent.
    Alerts that arrive meanwhile are both in the store and in the live queue: the
    caller skips queued rows the replay sent."""
    sent: set[int] = set()
    while page := service.store.since_seq(after, REPLAY_PAGE, types=STREAMED_TYPES):
        for row in page:
            after = max(after, await _send(response, service, row, wanted))
            sent.add(row.seq)
    return sent


async def _send(
    response: web.StreamResponse, service: NodeService, row: StoredEnvelope, wanted: StreamFilter
) -> int:
    """Write one event if it passes the filter; returns the row's seq either way."""
    if row.type == "receipt" and wanted.receipts:
        await _send_receipt(response, service, row)
    if row.type != "alert":
        return row.seq
    item = open_row(row, service.identity)
    if not isinstance(item.body, Alert):
        return row.seq
    follow = describe(service, row) if item.body.msg_type in FOLLOW_UPS else None
    if follow is None and item.body.msg_type in FOLLOW_UPS and _known(service, item.body):
        return row.seq  # another author's "cancel" of an alert we hold: shown nowhere
    shown = (item.body,) if follow is None else (item.body, follow.before, follow.after)
    if any(wanted.accepts(a) for a in shown):  # whoever saw the alert sees its update and cancel
        doc = alert_json(item, service.author_names(), service.author_of)
        if follow is not None:  # who cancelled and why, what changed, the incident as it is now
            doc["change"] = change_json(follow, sender_name(service, row.author))
        data = json.dumps(doc, ensure_ascii=False)
        await response.write(f"id: {row.seq}\nevent: alert\ndata: {data}\n\n".encode())
    return row.seq


async def _send_receipt(response: web.StreamResponse, service: NodeService, row: StoredEnvelope) -> None:
    """Which of this node's alerts a receipt just named (no ``id:``: a receipt is not
    replayed, and the client's place in the alert stream stays where it was)."""
    named = service.receipts.named_by(row.id)
    if named:
        data = json.dumps({"alerts": [alert.hex() for alert in named]})
        await response.write(f"event: receipt\ndata: {data}\n\n".encode())


def _known(service: NodeService, follow_up: Alert) -> bool:
    return bool(follow_up.references) and service.store.get(follow_up.references[0]) is not None
