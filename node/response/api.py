"""Local API routes for responders, the on-call rotation and debrief notes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from node import incidents
from node.response.desk import DeskError, ResponseDesk
from node.service import NodeService


def add_routes(app: web.Application, service_key: web.AppKey[NodeService], body: Any) -> None:
    def desk(request: web.Request) -> ResponseDesk:
        return request.app[service_key].desk

    async def list_responders(request: web.Request) -> web.Response:
        return web.json_response({"responders": desk(request).responders()})

    async def add_responder(request: web.Request) -> web.Response:
        doc = await body(request)
        channels = doc.get("channels") or []
        if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
            raise DeskError("channels: a list of Apprise URLs")
        made = desk(request).add_responder(
            str(doc.get("name", "")),
            str(doc.get("role", "responder")),
            channels,
            str(doc["password"]) if doc.get("password") else None,
            bool(doc.get("drills")),
        )
        return web.json_response(made, status=201)

    async def remove_responder(request: web.Request) -> web.Response:
        desk(request).remove_responder(request.match_info["name"])
        return web.json_response({"removed": request.match_info["name"]})

    async def oncall(request: web.Request) -> web.Response:
        return web.json_response(desk(request).on_call_json())

    async def add_shift(request: web.Request) -> web.Response:
        doc = await body(request)
        start = _instant(doc.get("start"), request.app[service_key].clock())
        hours = doc.get("hours", 24)
        if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= 24 * 14:
            raise DeskError("hours: a number of hours, e.g. 24")
        warnings = desk(request).add_shift(
            str(doc.get("responder", "")),
            start,
            float(hours),
            str(doc["backup"]) if doc.get("backup") else None,
            bool(doc.get("override")),
        )
        return web.json_response({"start": start, "hours": hours, "warnings": warnings}, status=201)

    async def hand_over(request: web.Request) -> web.Response:
        doc = await body(request)
        record = desk(request).hand_over(str(doc.get("to", "")), str(doc.get("note", "")))
        notified = "notifying both on their channels (see amparo oncall show)"
        return web.json_response(
            {"at": record.at, "from": record.outgoing, "to": record.incoming, "note": record.note, "notified": notified},
            status=201,
        )

    async def add_note(request: web.Request) -> web.Response:
        row = incidents.find_alert(request.app[service_key], request.match_info["id"])
        doc = await body(request)
        desk(request).note(row.id.hex(), str(doc.get("text", "")), author=str(doc.get("author", "")))
        return web.json_response({"alert": row.id.hex()}, status=201)

    async def start_drill(request: web.Request) -> web.Response:
        doc = await body(request)
        participants = doc.get("participants") or []
        duration = doc.get("duration_ms")
        if (
            not isinstance(participants, list)
            or not isinstance(duration, int)
            or not 0 < duration <= 86_400_000
        ):
            raise DeskError("participants (list) and duration_ms (up to 24 h) are required")
        until = request.app[service_key].clock() + duration
        desk(request).start_drill(str(doc.get("name", "drill")), [str(p) for p in participants], until)
        return web.json_response({"until": until}, status=201)

    async def drill_alert(request: web.Request) -> web.Response:
        """Send one exercise alert of the running drill and escalate it here too."""
        sent = incidents.send_drill_alert(request.app[service_key], await body(request))
        return web.json_response({"id": sent}, status=201)

    r = app.router
    r.add_post("/api/v1/drills", start_drill)
    r.add_post("/api/v1/drills/alerts", drill_alert)
    r.add_get("/api/v1/responders", list_responders)
    r.add_post("/api/v1/responders", add_responder)
    r.add_delete("/api/v1/responders/{name}", remove_responder)
    r.add_get("/api/v1/oncall", oncall)
    r.add_post("/api/v1/oncall/shifts", add_shift)
    r.add_post("/api/v1/oncall/handoff", hand_over)
    r.add_post("/api/v1/alerts/{id}/note", add_note)


def _instant(value: object, now: int) -> int:
    """``now``, Unix ms, or an ISO 8601 time with an offset."""
    if value in (None, "", "now"):
        return now
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return int(parsed.timestamp() * 1000)
    raise DeskError("start: now, Unix ms, or an ISO time with offset such as 2026-12-01T08:00:00-06:00")
