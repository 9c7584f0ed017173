"""Check-in routes: the API for the CLI and the one-tap phone page.

``/checkin/{token}`` needs no login: the unguessable token in the link is the
credential (only its hash is stored). The page is plain HTML that works on any
phone browser without JavaScript, with one big button.
"""

from __future__ import annotations

import html
from datetime import tzinfo

from aiohttp import web

from node import clock_text
from node import contract as c
from node.alerts import parse_duration
from node.config import is_loopback_url, public_base
from node.response.checkin_desk import CheckinDesk
from node.response.checkin_plan import CheckinError
from node.response.field import FieldDesk
from node.routes import Route, read_body, service

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Amparo check-in</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0; padding: 1.5rem; background: #111; color: #f5f5f5; }}
h1 {{ font-size: 1.4rem; }}
button {{ width: 100%; min-height: 5rem; font-size: 1.6rem; font-weight: bold; border: 0;
  border-radius: .75rem; background: #1b7f3a; color: #fff; }}
p.state {{ font-size: 1.1rem; }}
</style></head>
<body><main>
<h1>Check-in for {who}</h1>
<p class="state">{state}</p>
{form}
</main></body></html>"""

MAX_NOTE_CHARS = 2000  # longer notes are cut, as before the typed models
FORM = '<form method="post"><button type="submit">I am safe — check in</button></form>'


def desk(request: web.Request) -> CheckinDesk:
    return service(request).desk.checkins


def field(request: web.Request) -> FieldDesk:
    return service(request).desk.field


async def start(request: web.Request) -> web.Response:
    doc = await read_body(request, c.CheckinInput)
    clock = service(request).clock
    deadline = clock() + parse_duration(doc.within, "in") if doc.within else 0
    if doc.at:
        if doc.within:
            raise CheckinError("give either in (a duration) or at (a time), not both")
        deadline = _deadline_at(doc.at, clock(), service(request).desk.zone)
    interval = parse_duration(doc.every, "every") if doc.every else 0
    grace = parse_duration(doc.grace or "10m", "grace")
    plan, token = desk(request).start(
        (doc.who or "").strip() or "someone",
        doc.region or "",
        deadline=deadline,
        interval_ms=interval,
        grace_ms=grace,
        note=(doc.note or "")[:MAX_NOTE_CHARS],
        to=doc.to or [],
        pin=doc.pin or "",
        duress_pin=doc.duress_pin or "",
        lang=doc.lang,
    )
    link = f"{public_base(service(request).config)}/checkin/{token}"
    return web.json_response(
        {
            "id": plan.id,
            "next_deadline": plan.next_deadline,
            "link": link,
            "loopback": is_loopback_url(link),  # a phone cannot open it: set public_url
        },
        status=201,
    )


def _deadline_at(text: str, now: int, zone: tzinfo) -> int:
    """A single deadline typed as a time; refused when it is not a time or already past."""
    deadline = clock_text.parse(text, zone)
    if deadline is None:
        raise CheckinError(f"at: not a time: {text!r} (use 2026-12-06T18:00, in the node's time zone)")
    if deadline <= now:
        raise CheckinError(
            f"at: the deadline {clock_text.when(deadline, zone)} is already past "
            f"(it is {clock_text.when(now, zone)})"
        )
    return deadline


async def add_person(request: web.Request) -> web.Response:
    doc = await read_body(request, c.PersonInput)
    row = field(request).add_person(doc.name, doc.phone, doc.lang)
    return web.json_response({"name": row.name, "phone": row.phone, "lang": row.lang}, status=201)


async def people(request: web.Request) -> web.Response:
    rows = service(request).store.list_people()
    return web.json_response({"people": [{"name": r.name, "phone": r.phone, "lang": r.lang} for r in rows]})


async def remove_person(request: web.Request) -> web.Response:
    field(request).remove_person(request.match_info["name"])
    return web.json_response({"removed": request.match_info["name"]})


async def sos_link(request: web.Request) -> web.Response:
    """A person's standing link (made on first use): the same link every time
    until it is revoked; PINs, recipients and region given replace the link's."""
    doc = await read_body(request, c.SosLinkInput)
    row, token = field(request).link(
        doc.person, pin=doc.pin or "", duress_pin=doc.duress_pin or "", to=doc.to, region=doc.region
    )
    link = f"{public_base(service(request).config)}/checkin/{token}"
    return web.json_response(
        {"person": row.person, "link": link, "region": row.region, "pins": bool(row.pin),
         "loopback": is_loopback_url(link)},
    )


async def revoke_sos_link(request: web.Request) -> web.Response:
    field(request).revoke(request.match_info["name"])
    return web.json_response({"removed": request.match_info["name"]})


async def listing(request: web.Request) -> web.Response:
    return web.json_response({"checkins": desk(request).plans()})


async def ok(request: web.Request) -> web.Response:
    plan = desk(request).ok(request.match_info["id"])
    return web.json_response({"id": plan.id, "state": plan.state, "next_deadline": plan.next_deadline})


async def stop(request: web.Request) -> web.Response:
    plan = desk(request).stop(request.match_info["id"])
    return web.json_response({"id": plan.id, "state": plan.state})


async def phone(request: web.Request) -> web.Response:
    plan = desk(request).by_token(request.match_info["token"])
    if plan is None:
        return web.Response(status=404, text="This check-in link is not valid.", content_type="text/plain")
    deadline = clock_text.when(plan.next_deadline, service(request).desk.zone)
    message = {
        "active": f"Tap the button before your deadline: {deadline}.",
        "missed": "Your check-in is overdue!",
        "stopped": "This check-in has ended. Thank you.",
    }.get(plan.state, "")
    if request.method == "POST" and plan.state in ("active", "missed"):
        plan = desk(request).ok(plan.id)
        message = "Checked in. Thank you — stay safe."
    form = FORM if plan.state in ("active", "missed") else ""
    page = PAGE.format(who=html.escape(plan.who), state=html.escape(message), form=form)
    return web.Response(
        text=page,
        content_type="text/html",
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
        },
    )


ROUTES = (
    Route(
        "POST", "/api/v1/checkins", start, "Start a check-in plan; returns the phone link once",
        body=c.CheckinInput, answer=c.CheckinStarted, status=201,
    ),
    Route("GET", "/api/v1/checkins", listing, "Check-in plans", answer=c.Checkins),
    Route(
        "POST", "/api/v1/people", add_person, "Add (or replace) a person in the field who is not a responder",
        body=c.PersonInput, answer=c.Person, status=201,
    ),
    Route("GET", "/api/v1/people", people, "People in the field (not responders)", answer=c.People),
    Route(
        "DELETE", "/api/v1/people/{name}", remove_person, "Remove a person in the field (and their standing link)",
        answer=c.Removed, path_params=c.NamePath, refusals=(404,),
    ),
    Route(
        "POST", "/api/v1/sos-links", sos_link, "A person's standing SOS/check-in link (made on first use)",
        body=c.SosLinkInput, answer=c.SosLink, refusals=(404,),
    ),
    Route(
        "DELETE", "/api/v1/sos-links/{name}", revoke_sos_link, "Revoke a person's standing link",
        answer=c.Removed, path_params=c.NamePath, refusals=(404,),
    ),
    *(
        Route(
            "POST", f"/api/v1/checkins/{{id}}/{action}", handler, summary,
            answer=c.CheckinState, path_params=c.PlainIdPath, refusals=(404,),
        )
        for action, handler, summary in (("ok", ok, "Check in"), ("stop", stop, "End a plan"))
    ),
    *(
        Route(
            method, "/checkin/{token}", phone, summary,
            media="text/html", path_params=c.TokenPath, public=True, refusals=(404,),
        )
        for method, summary in (("GET", "The one-tap phone page"), ("POST", "Check in from the phone page"))
    ),
)
