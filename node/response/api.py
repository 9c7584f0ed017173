"""Local API routes for responders, the on-call rotation, debrief notes and drills."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from node import incidents
from node.response import drill
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
            str(doc.get("lang") or "en"),
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

    async def run_drill(request: web.Request) -> web.Response:
        """Run a scenario inside the node: ``amparo drill run`` sends its TOML
        here; the dashboard's button calls the same runner."""
        doc = await body(request)
        scenario = doc.get("scenario")
        if not isinstance(scenario, str):
            raise drill.DrillError("scenario: the scenario's TOML text")
        run = request.app[service_key].drills.start(drill.load(scenario), drill.wait_override(doc.get("wait")))
        return web.json_response(run.json(), status=202)

    async def drill_state(request: web.Request) -> web.Response:
        """A drill's progress while it runs, then its report."""
        return web.json_response(request.app[service_key].drills.find(request.match_info["id"]))

    async def drill_overview(request: web.Request) -> web.Response:
        return web.json_response(request.app[service_key].drills.overview())

    async def finish_drill(request: web.Request) -> web.Response:
        """Stop waiting for acknowledgements: every answer is in."""
        return web.json_response(request.app[service_key].drills.finish(request.match_info["id"]), status=202)

    r = app.router
    r.add_post("/api/v1/drills", run_drill)
    r.add_get("/api/v1/drills", drill_overview)
    r.add_get("/api/v1/drills/{id}", drill_state)
    r.add_post("/api/v1/drills/{id}/finish", finish_drill)
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
