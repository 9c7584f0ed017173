"""Check-in routes: the API for the CLI and the one-tap phone page.

``/checkin/{token}`` needs no login: the unguessable token in the link is the
credential (only its hash is stored). The page is plain HTML that works on any
phone browser without JavaScript, with one big button.
"""

from __future__ import annotations

import html
from typing import Any

from aiohttp import web

from node.alerts import parse_duration
from node.config import is_loopback_url, public_base
from node.response.checkin_desk import CheckinDesk
from node.response.checkin_plan import CheckinError
from node.service import NodeService

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

FORM = '<form method="post"><button type="submit">I am safe — check in</button></form>'


def add_routes(app: web.Application, service_key: web.AppKey[NodeService], body: Any) -> None:
    def desk(request: web.Request) -> CheckinDesk:
        return request.app[service_key].desk.checkins

    async def start(request: web.Request) -> web.Response:
        doc = await body(request)
        clock = request.app[service_key].clock
        deadline = clock() + parse_duration(doc["in"], "in") if doc.get("in") else 0
        interval = parse_duration(doc["every"], "every") if doc.get("every") else 0
        grace = parse_duration(doc.get("grace") or "10m", "grace")
        to = doc.get("to") or []
        if not isinstance(to, list):
            raise CheckinError("to: a list of peer names")
        plan, token = desk(request).start(
            str(doc.get("who", "")).strip() or "someone",
            str(doc.get("region", "")),
            deadline=deadline,
            interval_ms=interval,
            grace_ms=grace,
            note=str(doc.get("note", ""))[:2000],
            to=[str(t) for t in to],
        )
        link = f"{public_base(request.app[service_key].config)}/checkin/{token}"
        return web.json_response(
            {
                "id": plan.id,
                "next_deadline": plan.next_deadline,
                "link": link,
                "loopback": is_loopback_url(link),  # a phone cannot open it: set public_url
            },
            status=201,
        )

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
            return web.Response(
                status=404, text="This check-in link is not valid.", content_type="text/plain"
            )
        message = {
            "active": "Tap the button before your deadline.",
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

    r = app.router
    r.add_post("/api/v1/checkins", start)
    r.add_get("/api/v1/checkins", listing)
    r.add_post("/api/v1/checkins/{id}/ok", ok)
    r.add_post("/api/v1/checkins/{id}/stop", stop)
    r.add_get("/checkin/{token}", phone)
    r.add_post("/checkin/{token}", phone)
