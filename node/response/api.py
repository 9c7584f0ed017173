"""Local API routes for responders, the on-call rotation, debrief notes and drills."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from aiohttp import web

from node import clock_text, incidents
from node import contract as c
from node.response import drill
from node.response.desk import DeskError, ResponseDesk
from node.routes import Route, read_body, service


def desk(request: web.Request) -> ResponseDesk:
    return service(request).desk


async def list_responders(request: web.Request) -> web.Response:
    return web.json_response({"responders": desk(request).responders()})


async def add_responder(request: web.Request) -> web.Response:
    doc = await read_body(request, c.ResponderInput)
    made = desk(request).add_responder(
        doc.name, doc.role, doc.channels or [], doc.password or None, bool(doc.drills), doc.lang, doc.tz,
        phone=doc.phone,
    )
    return web.json_response(made, status=201)


async def remove_responder(request: web.Request) -> web.Response:
    desk(request).remove_responder(request.match_info["name"])
    return web.json_response({"removed": request.match_info["name"]})


async def oncall(request: web.Request) -> web.Response:
    return web.json_response(desk(request).on_call_json())


async def add_shift(request: web.Request) -> web.Response:
    doc = await read_body(request, c.ShiftInput)
    start = _instant(doc.start, service(request).clock(), desk(request).zone)
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


async def run_drill(request: web.Request) -> web.Response:
    """Run a scenario inside the node: ``amparo drill run`` sends its TOML
    here; the dashboard's button calls the same runner."""
    doc = await read_body(request, c.DrillRunInput)
    run = service(request).drills.start(drill.load(doc.scenario), drill.wait_override(doc.wait))
    return web.json_response(run.json(), status=202)


async def drill_state(request: web.Request) -> web.Response:
    """A drill's progress while it runs, then its report."""
    return web.json_response(service(request).drills.find(request.match_info["id"]))


async def drill_overview(request: web.Request) -> web.Response:
    return web.json_response(service(request).drills.overview())


async def finish_drill(request: web.Request) -> web.Response:
    """Stop waiting for acknowledgements: every answer is in."""
    return web.json_response(service(request).drills.finish(request.match_info["id"]), status=202)


ROUTES = (
    Route(
        "POST", "/api/v1/drills", run_drill, "Run a drill scenario inside the node (its TOML text); answers at once",
        body=c.DrillRunInput, answer=dict[str, Any], status=202,
    ),
    Route("GET", "/api/v1/drills", drill_overview, "Drills running and the reports kept", answer=dict[str, Any]),
    Route(
        "GET", "/api/v1/drills/{id}", drill_state, "A drill's progress while it runs, then its report",
        answer=dict[str, Any], path_params=c.DrillPath, refusals=(404,),
    ),
    Route(
        "POST", "/api/v1/drills/{id}/finish", finish_drill, "Stop waiting for acknowledgements: every answer is in",
        answer=dict[str, Any], status=202, path_params=c.DrillPath, refusals=(404, 409),
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


def _instant(value: object, now: int, zone: tzinfo) -> int:
    """``now``, Unix ms, or an ISO 8601 time; one without an offset is a local
    time in the node's ``zone`` (what the people scheduling read on the wall)."""
    if value in (None, "", "now"):
        return now
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    parsed = clock_text.parse(value, zone) if isinstance(value, str) else None
    if parsed is None:
        raise DeskError(
            "start: now, Unix ms, or an ISO time such as 2026-12-01T08:00 (the node's time zone) "
            "or 2026-12-01T08:00-06:00"
        )
    return parsed
