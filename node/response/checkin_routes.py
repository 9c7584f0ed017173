"""Check-in routes: the API for the CLI and the one-tap phone page.

``/checkin/{token}`` needs no login: the unguessable token in the link is the
credential (only its hash is stored). The page (``node.web.phone``) is plain HTML
that works on any phone browser without JavaScript: "I am safe" (with a PIN
when the check-in has one) and "I need help" (with a confirmation box, and the
location when the person agrees); its script keeps a tap made without signal
and sends it later, dated by the tap. ``/checkin/{token}`` also opens a
person's standing link (``amparo sos link``).
"""

from __future__ import annotations

from datetime import tzinfo

from aiohttp import web

from node import clock_text
from node import contract as c
from node.alerts import parse_duration
from node.config import is_loopback_url, public_base
from node.response.checkin_desk import CheckinDesk
from node.response.checkin_plan import CheckinError
from node.response.field import FieldAnswer, FieldDesk, Holder
from node.routes import Route, read_body, service
from node.web import phone as phone_page

MAX_NOTE_CHARS = 2000  # longer notes are cut, as before the typed models


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


PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "worker-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
}
STATUS = {"checked-in": 200, "help-asked": 200, "wrong-pin": 403, "locked": 429, "ended": 410, "confirm": 400}
MAX_TAP_ID = 64


async def phone(request: web.Request) -> web.Response:
    """The phone page, and a tap on it: the button (form post) or the page's
    script (``Accept: application/json``, with the tap's time and id).

    A normal and a duress PIN take the same path here and in ``FieldDesk``, and
    answer the same bytes with the same status; the duress alert leaves later,
    from a background task."""
    s = service(request)
    holder = field(request).holder_by_token(request.match_info["token"])
    lang = phone_page.language(holder.lang if holder else "", request.headers.get("Accept-Language", ""))
    if holder is None:
        return web.Response(text=phone_page.render(lang), content_type="text/html", status=404, headers=PAGE_HEADERS)
    outcome, at = "", 0
    if request.method == "POST":
        form = await request.post()
        answer = _tap(field(request), holder, {k: v for k, v in form.items() if isinstance(v, str)}, s.clock())
        if answer is None:
            outcome, at = "confirm", s.clock()
        else:
            holder, outcome, at = answer.holder, answer.outcome, answer.at
    zone = s.desk.zone_of(holder.who)
    message = (
        phone_page.answer_line(lang, outcome, at, zone)
        if outcome
        else phone_page.state_line(lang, holder.state, holder.next_deadline, zone)
    )
    status = STATUS.get(outcome, 200)
    help_text = phone_page.help_line(lang, holder.sos_at, zone)
    if "application/json" in request.headers.get("Accept", ""):
        doc = {
            "outcome": outcome, "acted": status == 200, "at": at, "time": phone_page.clock(at, zone),
            "message": message, "help": help_text,
        }
        return web.json_response(doc, status=status, headers=PAGE_HEADERS)
    page = phone_page.render(
        lang, who=holder.who, message=message, refused=status != 200, asks_pin=holder.asks_pin,
        can_check_in=holder.state != "stopped", sos_time=help_text and phone_page.clock(holder.sos_at, zone),
    )
    return web.Response(text=page, content_type="text/html", status=status, headers=PAGE_HEADERS)


def _tap(desk: FieldDesk, holder: Holder, form: dict[str, str], now: int) -> FieldAnswer | None:
    """One tap: a check-in or (confirmed) an SOS. None for an SOS whose
    confirmation box was not ticked: the button alone never calls for help."""
    tapped = _number(form.get("tap")) or now
    tap_id = form.get("tap_id", "")[:MAX_TAP_ID]
    pin = form.get("pin") or None
    if form.get("action") != "sos":
        return desk.check_in(holder, pin, tapped, tap_id=tap_id)
    if form.get("confirm") != "yes":
        return None
    lat, lon = _number(form.get("lat")), _number(form.get("lon"))
    location = (lat, lon) if form.get("lat") and form.get("lon") and lat is not None and lon is not None else None
    return desk.sos(
        holder, pin, form.get("note", ""), location, tapped, accuracy_m=_number(form.get("accuracy")) or 0,
        tap_id=tap_id,
    )


def _number(text: str | None) -> int | None:
    """An integer a form field holds (the page writes them), else None."""
    text = (text or "").strip()
    if not text or len(text) > 20 or not text.lstrip("-").isdigit():
        return None
    return int(text)


async def phone_static(request: web.Request) -> web.Response:
    """The page's script, style and service worker (no third-party code)."""
    body, media = phone_page.static(request.path)
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return web.Response(body=body, content_type=media, headers=headers)


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
        for method, summary in (
            ("GET", "The phone page: check in, or ask for help"),
            ("POST", "Check in or ask for help from the phone page (HTML, or JSON for its script)"),
        )
    ),
    *(
        Route("GET", path, phone_static, f"The phone page's {what}", media=media, public=True)
        for path, what, media in (
            ("/checkin-phone.js", "script", "text/javascript"),
            ("/checkin-phone.css", "style", "text/css"),
            ("/checkin-sw.js", "service worker (works offline, sends a tap when the signal is back)", "text/javascript"),
        )
    ),
)
