"""Local API routes for responders, the on-call rotation and debrief notes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from node import contract as c
from node import incidents
from node.response.desk import DeskError, ResponseDesk
from node.routes import Route, given, read_body, service


def desk(request: web.Request) -> ResponseDesk:
    return service(request).desk


async def list_responders(request: web.Request) -> web.Response:
    return web.json_response({"responders": desk(request).responders()})


async def add_responder(request: web.Request) -> web.Response:
    doc = await read_body(request, c.ResponderInput)
    made = desk(request).add_responder(doc.name, doc.role, doc.channels or [], doc.password or None, bool(doc.drills))
    return web.json_response(made, status=201)


async def remove_responder(request: web.Request) -> web.Response:
    desk(request).remove_responder(request.match_info["name"])
    return web.json_response({"removed": request.match_info["name"]})


async def oncall(request: web.Request) -> web.Response:
    return web.json_response(desk(request).on_call_json())


async def add_shift(request: web.Request) -> web.Response:
    doc = await read_body(request, c.ShiftInput)
    start = _instant(doc.start, service(request).clock())
    warnings = desk(request).add_shift(doc.responder, start, float(doc.hours), doc.backup or None, bool(doc.override))
    return web.json_response({"start": start, "hours": doc.hours, "warnings": warnings}, status=201)


async def hand_over(request: web.Request) -> web.Response:
    doc = await read_body(request, c.HandoffInput)
    record = desk(request).hand_over(doc.to, doc.note)
    notified = "notifying both on their channels (see amparo oncall show)"
    return web.json_response(
        {"at": record.at, "from": record.outgoing, "to": record.incoming, "note": record.note, "notified": notified},
        status=201,
    )


async def add_note(request: web.Request) -> web.Response:
    row = incidents.find_alert(service(request), request.match_info["id"])
    doc = await read_body(request, c.NoteInput)
    desk(request).note(row.id.hex(), doc.text, author=doc.author)
    return web.json_response({"alert": row.id.hex()}, status=201)


async def start_drill(request: web.Request) -> web.Response:
    doc = await read_body(request, c.DrillInput)
    until = service(request).clock() + doc.duration_ms
    desk(request).start_drill(doc.name, doc.participants, until)
    return web.json_response({"until": until}, status=201)


async def drill_alert(request: web.Request) -> web.Response:
    """Send one exercise alert of the running drill and escalate it here too."""
    doc = await read_body(request, c.AlertInput)
    return web.json_response({"id": incidents.send_drill_alert(service(request), given(doc))}, status=201)


ROUTES = (
    Route(
        "POST", "/api/v1/drills", start_drill, "Start a drill: only its participants are paged for exercises",
        body=c.DrillInput, answer=c.DrillStarted, status=201,
    ),
    Route(
        "POST", "/api/v1/drills/alerts", drill_alert, "Send one exercise alert of the running drill",
        body=c.AlertInput, answer=c.DrillAlertSent, status=201, refusals=(409,),
    ),
    Route("GET", "/api/v1/responders", list_responders, "Local responders (no secrets)", answer=c.Responders),
    Route(
        "POST", "/api/v1/responders", add_responder, "Add or replace a responder",
        body=c.ResponderInput, answer=dict[str, Any], status=201,
    ),
    Route(
        "DELETE", "/api/v1/responders/{name}", remove_responder, "Remove a responder",
        answer=c.Removed, path_params=c.NamePath, refusals=(404,),
    ),
    Route("GET", "/api/v1/oncall", oncall, "Who is on call now, upcoming shifts, gaps, hand-overs", answer=dict[str, Any]),
    Route(
        "POST", "/api/v1/oncall/shifts", add_shift, "Schedule a shift (max 24 h unless override)",
        body=c.ShiftInput, answer=c.ShiftAdded, status=201,
    ),
    Route(
        "POST", "/api/v1/oncall/handoff", hand_over,
        "Hand over the on-call role now; both people are notified on their channels"
        " (the outcome is on the hand-over record in GET /api/v1/oncall)",
        body=c.HandoffInput, answer=c.HandedOver, status=201,
    ),
    Route(
        "POST", "/api/v1/alerts/{id}/note", add_note, "Add a debrief note to an alert's timeline",
        body=c.NoteInput, answer=c.NoteAdded, status=201, path_params=c.AlertPath, refusals=(404,),
    ),
)


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
