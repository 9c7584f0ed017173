"""The responders' dashboard: server-rendered pages on the local listener.

Every route checks the session cookie; every POST checks the session's CSRF
token and, except sign-out, that the role may act (viewers only read). The
pages call the same use cases as the JSON API (``node.incidents``,
``node.response``), never HTTP to themselves. No CDN, no build step: Jinja2
templates, one stylesheet, one small script, all served by the node.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from node import clock_text, incidents, stream
from node.alerts import (
    DEFAULT_TTL_MS,
    DEFAULTS,
    AlertInputError,
    alert_from_request,
    phone_text,
    split_regions,
)
from node.allies.cap_api import CAP_TYPE, render_cap
from node.allies.subscriptions import SubscriptionError
from node.config import public_base
from node.errors import Refused
from node.response import drill
from node.response.checkin_plan import CheckinError
from node.response.desk import DeskError
from node.service import NodeService
from node.store import StoredEnvelope
from node.timeline import history
from node.web import i18n, labels, region_words, wording
from node.web.sessions import COOKIE, Session, Sessions, known_key, recently_known
from protocol import CERTAINTIES, EVENTS, SEVERITIES, URGENCIES, ProtocolError, fingerprint, regions

log = logging.getLogger("amparo.web")
HERE = Path(__file__).parent
SESSIONS: web.AppKey[Sessions] = web.AppKey("web_sessions", Sessions)
LOGIN_COOKIE = "amparo_login"
LANG_COOKIE = "amparo_lang"
PREFIX = "/ui"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; media-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}
USER_ERRORS = (AlertInputError, DeskError, CheckinError, SubscriptionError, ProtocolError, drill.DrillError)
Handler = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]

_ENVS: dict[str, jinja2.Environment] = {}


def _env(language: str) -> jinja2.Environment:
    if language not in _ENVS:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            extensions=["jinja2.ext.i18n"],
        )
        env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
        env.filters["when"] = _when
        env.filters["region_name"] = lambda code: _region_name(code, language)
        t = i18n.translations(language)
        env.filters["step_text"] = lambda step: wording.step_text(step, t)
        env.filters["generated"] = lambda text: wording.generated(str(text or ""), t)
        _ENVS[language] = env
    return _ENVS[language]


@jinja2.pass_context
def _when(context: jinja2.runtime.Context, ms: int | None) -> str:
    """An instant in the reader's time zone (``zone`` of the page: the signed-in
    responder's own, else the node's), with its abbreviation."""
    return clock_text.when(ms, context.get("zone") or UTC, seconds=True)


def _region_name(code: str, language: str) -> str:
    """A region's name for a reader: a country in their language (México), a
    state by its own name (Oaxaca)."""
    return regions.label(code, language) if "-" not in code else regions.name(code)


def add_routes(app: web.Application, service_key: web.AppKey[NodeService]) -> None:
    app[SESSIONS] = Sessions()
    views = Views(service_key)
    r = app.router
    r.add_get(f"{PREFIX}/login", views.login_form)
    r.add_post(f"{PREFIX}/login", views.login)
    r.add_post(f"{PREFIX}/logout", views.wrap(views.logout, act=False))
    r.add_get(PREFIX, views.home)
    r.add_get(f"{PREFIX}/", views.home)
    r.add_get(f"{PREFIX}/alerts", views.wrap(views.alerts))
    r.add_get(f"{PREFIX}/stream", views.wrap(views.stream))
    r.add_get(f"{PREFIX}/regions", views.wrap(views.region_search))
    r.add_get(f"{PREFIX}/alerts/{{id}}", views.wrap(views.alert))
    r.add_get(f"{PREFIX}/alerts/{{id}}/responses", views.wrap(views.responses))
    r.add_get(f"{PREFIX}/alerts/{{id}}/item", views.wrap(views.item))
    r.add_get(f"{PREFIX}/alerts/{{id}}/cap", views.wrap(views.alert_cap))
    for action in ("ack", "note", "update", "cancel"):
        r.add_post(f"{PREFIX}/alerts/{{id}}/{action}", views.wrap(getattr(views, f"alert_{action}")))
    r.add_get(f"{PREFIX}/compose", views.wrap(views.compose_form))
    r.add_post(f"{PREFIX}/compose", views.wrap(views.compose))
    r.add_get(f"{PREFIX}/oncall", views.wrap(views.oncall))
    r.add_post(f"{PREFIX}/oncall/handoff", views.wrap(views.handoff))
    r.add_get(f"{PREFIX}/checkins", views.wrap(views.checkins))
    r.add_post(f"{PREFIX}/checkins", views.wrap(views.checkin_start))
    r.add_post(f"{PREFIX}/checkins/{{id}}/stop", views.wrap(views.checkin_stop))
    r.add_get(f"{PREFIX}/peers", views.wrap(views.peers))
    r.add_get(f"{PREFIX}/drills", views.wrap(views.drills))
    r.add_post(f"{PREFIX}/drills", views.wrap(views.drill_run, admin=True))
    r.add_static(f"{PREFIX}/static", HERE / "static", append_version=True)


class Views:
    def __init__(self, service_key: web.AppKey[NodeService]) -> None:
        self.key = service_key
        self._stream = stream.handler(service_key)

    # -- plumbing -------------------------------------------------------------------------
    def service(self, request: web.Request) -> NodeService:
        return request.app[self.key]

    def wrap(self, handler: Handler, *, act: bool = True, admin: bool = False) -> Any:
        async def guarded(request: web.Request) -> web.StreamResponse:
            sessions = request.app[SESSIONS]
            session = sessions.get(request.cookies.get(COOKIE))
            if session is None:
                fetched = request.path.endswith(("/stream", "/responses", "/regions", "/item"))  # by app.js
                if request.method == "GET" and not fetched:
                    raise web.HTTPSeeOther(f"{PREFIX}/login?next={request.path_qs}")
                return self._refuse(request, 401, labels.SIGN_IN_FIRST, translate=True)
            if request.method == "POST":
                given = (await request.post()).get("csrf")
                if not session.csrf_ok(given if isinstance(given, str) else None):
                    return self._refuse(request, 403, labels.CSRF_REFUSED, translate=True)
                if (act and not session.can_act) or (admin and session.role != "admin"):
                    return self._refuse(request, 403, labels.ROLE_CANNOT, translate=True, role=session.role)
            try:
                return await handler(request, session)
            except web.HTTPException:
                raise
            except Refused as exc:
                return self._refuse(request, exc.status, exc.message)
            except USER_ERRORS as exc:
                return self._refuse(request, 400, getattr(exc, "message", None) or str(exc))

        return guarded

    def _refuse(
        self, request: web.Request, status: int, message: str, *, translate: bool = False, **params: str
    ) -> web.Response:
        """The "Refused" page. Only the dashboard's own messages (``labels``) are
        translated; errors raised by the desk or the protocol stay as raised."""
        text = self.gettext(request, message, **params) if translate else message
        return self.render(request, None, "error.html", status=status, message=text)

    def gettext(self, request: web.Request, message: str, **params: str) -> str:
        """``message`` in the reader's language; ``params`` (words such as a role)
        are translated too, then filled in."""
        t = i18n.translations(self.language(request))
        text = t.gettext(message)
        return text % {k: t.gettext(v) for k, v in params.items()} if params else text

    def language(self, request: web.Request) -> str:
        return i18n.choose(request.query.get("lang") or request.cookies.get(LANG_COOKIE),
                           request.headers.get("Accept-Language", ""))

    def render(
        self, request: web.Request, session: Session | None, template: str, *, status: int = 200, **ctx: Any
    ) -> web.Response:
        language = self.language(request)
        s = self.service(request)
        html = _env(language).get_template(template).render(
            session=session, lang=language, languages=i18n.available(), node=s.config.name,
            health=_health(s) if session else None, path=request.path, static=PREFIX + "/static",
            event_labels=labels.EVENT, zone=s.desk.zone_of(session.name) if session else s.desk.zone, **ctx
        )
        response = web.Response(text=html, content_type="text/html", status=status, headers=SECURITY_HEADERS)
        if request.query.get("lang") in i18n.available():
            response.set_cookie(LANG_COOKIE, request.query["lang"], httponly=True, samesite="Strict", path="/")
        return response

    async def form(self, request: web.Request) -> dict[str, str]:
        data = await request.post()
        return {k: v for k, v in data.items() if isinstance(v, str)}

    # -- sign in and out ------------------------------------------------------------------
    async def home(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther(f"{PREFIX}/alerts")

    async def login_form(self, request: web.Request, error: str = "", status: int = 200) -> web.Response:
        token = secrets.token_urlsafe(24)
        response = self.render(request, None, "login.html", status=status, login_csrf=token, error=error,
                               next=_safe_next(request.query.get("next")))
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="Strict", path=f"{PREFIX}/login")
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await self.form(request)
        cookie = request.cookies.get(LOGIN_COOKIE, "")
        if not cookie or not secrets.compare_digest(cookie, form.get("csrf", "")):
            return await self.login_form(request, self.gettext(request, labels.LOGIN_EXPIRED), 403)
        name, password = form.get("name", "").strip()[:64], form.get("password", "")[:256]
        sessions = request.app[SESSIONS]
        address = request.remote or "?"
        store, now = self.service(request).store, self.service(request).clock()
        known = bool(name) and recently_known(store.get_record("signin", known_key(address, name)), now)
        if wait := sessions.logins.retry_after(address, name, known=known):
            return await self._login_wait(request, int(wait))
        record = store.get_responder(name) if name else None
        ok = await sessions.passwords.check(record.password if record else None, password)
        if ok is None:  # every hashing slot busy and the queue full: a flood, not a typo
            return await self._login_wait(request, 1)
        if not ok:
            sessions.logins.failed(address, name)
            log.warning("dashboard sign-in failed for %r from %s", name, address)
            return await self.login_form(request, self.gettext(request, labels.LOGIN_WRONG), 401)
        assert record is not None
        sessions.logins.succeeded(address, name)
        store.put_record("signin", known_key(address, name), {"at": now}, now)
        for key, doc in store.list_records("signin"):
            if not recently_known(doc, now):
                store.delete_record("signin", key)  # nobody keeps an exemption forever
        sid = sessions.open(name, record.role)
        response = web.HTTPSeeOther(_safe_next(form.get("next")) or f"{PREFIX}/alerts")
        response.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", path="/", secure=request.secure)
        response.del_cookie(LOGIN_COOKIE, path=f"{PREFIX}/login")
        raise response

    async def _login_wait(self, request: web.Request, seconds: int) -> web.Response:
        response = await self.login_form(request, self.gettext(request, labels.LOGIN_WAIT, seconds=str(seconds)), 429)
        response.headers["Retry-After"] = str(seconds)
        return response

    async def logout(self, request: web.Request, session: Session) -> web.StreamResponse:
        request.app[SESSIONS].close(request.cookies.get(COOKIE))
        response = web.HTTPSeeOther(f"{PREFIX}/login")
        response.del_cookie(COOKIE, path="/")
        raise response

    # -- alerts ---------------------------------------------------------------------------
    async def alerts(self, request: web.Request, session: Session) -> web.StreamResponse:
        s = self.service(request)
        q = request.query
        region, severity, status = q.get("region", "").strip(), q.get("severity", ""), q.get("status", "")
        error = ""
        try:
            listed = incidents.list_alerts(s, region=region or None, limit=200)
        except Refused as exc:
            listed, error = incidents.list_alerts(s, region=None, limit=200), exc.message
        if severity in SEVERITIES:
            listed = [a for a in listed if a.get("severity") == severity]
        if status in ("actual", "exercise"):
            listed = [a for a in listed if (a.get("status") == "actual") == (status == "actual")]
        t = i18n.translations(self.language(request))
        words = {s: t.gettext(s) for s in SEVERITIES} | {"sealed": t.gettext(labels.SEALED)}
        return self.render(request, session, "alerts.html", alerts=listed, region=region, severity=severity,
                           status_filter=status, severities=SEVERITIES, error=error, words=words)

    async def stream(self, request: web.Request, session: Session) -> web.StreamResponse:
        response: web.StreamResponse = await self._stream(request)
        return response

    async def region_search(self, request: web.Request, session: Session) -> web.StreamResponse:
        text = request.query.get("q", "")[:100]
        found = regions.search(text, limit=12) if text.strip() else []
        return web.json_response([{"code": c, "name": n} for c, n in found])

    def _row(self, request: web.Request) -> StoredEnvelope:
        return incidents.find_alert(self.service(request), request.match_info["id"])

    async def alert(self, request: web.Request, session: Session) -> web.StreamResponse:
        s = self.service(request)
        row = self._row(request)
        detail = incidents.alert_detail(s, row)
        return self.render(request, session, "alert.html", a=detail, own=row.author in s.own_keys(), history=history(detail),
                           step_labels=labels.STEP,
                           severities=SEVERITIES, notice=request.query.get("done", ""))

    async def alert_cap(self, request: web.Request, session: Session) -> web.StreamResponse:
        """The CAP 1.2 document of an alert, for a signed-in browser (the API's
        copy needs the API token). The same renderer as ``/api/v1/alerts/{id}/cap``."""
        document = render_cap(self.service(request), self._row(request))
        if document is None:
            return self._refuse(request, 404, labels.CAP_SEALED, translate=True)
        return web.Response(body=document, content_type=CAP_TYPE, charset="utf-8", headers=SECURITY_HEADERS)

    async def responses(self, request: web.Request, session: Session) -> web.StreamResponse:
        detail = incidents.alert_detail(self.service(request), self._row(request))
        return self.render(request, session, "_responses.html", a=detail)

    async def item(self, request: web.Request, session: Session) -> web.StreamResponse:
        """One alert's row of the list, as the list renders it: the live list
        (app.js) asks for it, so a row that arrives live reads like the others,
        in the reader's language."""
        detail = incidents.alert_detail(self.service(request), self._row(request))
        return self.render(request, session, "_alert_item.html", a=detail)

    async def alert_ack(self, request: web.Request, session: Session) -> web.StreamResponse:
        form = await self.form(request)
        row = self._row(request)
        incidents.acknowledge(self.service(request), row, {"state": form.get("state", "responding"),
                                                           "note": form.get("note", ""), "by": session.name})
        raise web.HTTPSeeOther(f"{PREFIX}/alerts/{row.id.hex()}?done=ack")

    async def alert_note(self, request: web.Request, session: Session) -> web.StreamResponse:
        form = await self.form(request)
        row = self._row(request)
        self.service(request).desk.note(row.id.hex(), form.get("text", ""), author=session.name)
        raise web.HTTPSeeOther(f"{PREFIX}/alerts/{row.id.hex()}?done=note")

    async def alert_update(self, request: web.Request, session: Session) -> web.StreamResponse:
        form = await self.form(request)
        row = self._row(request)
        changes = {k: form.get(k, "") for k in ("headline", "instruction", "description", "severity")}
        done = incidents.update_alert(self.service(request), row, changes)
        raise web.HTTPSeeOther(f"{PREFIX}/alerts/{done['incident']}?done=update")  # the incident, in its current state

    async def alert_cancel(self, request: web.Request, session: Session) -> web.StreamResponse:
        form = await self.form(request)
        row = self._row(request)
        done = incidents.cancel_alert(self.service(request), row, {"reason": form.get("reason", "")})
        raise web.HTTPSeeOther(f"{PREFIX}/alerts/{done['incident']}?done=cancel")

    # -- compose --------------------------------------------------------------------------
    async def compose_form(self, request: web.Request, session: Session) -> web.StreamResponse:
        if not session.can_act:
            return self._refuse(request, 403, labels.ROLE_CANNOT_SEND, translate=True, role=session.role)
        return self._compose_page(request, session, {}, None, "")

    def _compose_page(
        self, request: web.Request, session: Session, doc: dict[str, Any], preview: Any, error: str, status: int = 200
    ) -> web.Response:
        peers = [p.name for p in self.service(request).store.list_peers()]
        defaults = DEFAULTS | {"expires": f"{DEFAULT_TTL_MS // 3_600_000}h"}  # as `amparo alert send` has them
        return self.render(request, session, "compose.html", status=status, doc=doc, preview=preview, error=error,
                           severities=SEVERITIES, urgencies=URGENCIES, certainties=CERTAINTIES, events=EVENTS,
                           peers=peers, defaults=defaults)

    async def compose(self, request: web.Request, session: Session) -> web.StreamResponse:
        form = await self.form(request)
        doc: dict[str, Any] = {k: form.get(k, "") for k in (
            "headline", "severity", "urgency", "certainty", "event", "scope", "description", "instruction",
            "contact", "expires", "language")}
        doc["regions"] = split_regions(form.get("regions", ""))
        doc["exercise"] = form.get("exercise") == "on"
        doc["to"] = [p for p in (await request.post()).getall("to", []) if isinstance(p, str)]
        doc = {k: v for k, v in doc.items() if v not in ("", None)} | {"exercise": doc["exercise"]}
        if doc.get("severity") not in SEVERITIES:  # the command line asks for one too (--severity)
            said = self.gettext(request, labels.CHOOSE_SEVERITY)
            return self._compose_page(request, session, doc, None, said, 400)
        try:
            watched = tuple(self.service(request).desk.watch)  # else the reader's locale (es-MX) hints the country
            near = watched or i18n.countries_of(request.headers.get("Accept-Language", ""))
            alert = alert_from_request(doc, near=near)
            doc["regions"] = [a.region for a in alert.areas]  # as resolved: "Oaxaca" is sent as MX-OAX
        except AlertInputError as exc:
            said = region_words.region_refusal(exc.region, self.language(request)) if exc.region else str(exc)
            return self._compose_page(request, session, doc, None, said, 400)
        if form.get("action") != "send":
            link = f"{public_base(self.service(request).config)}/ui/alerts/…"
            title, body = phone_text(alert, link=link, lang=self.language(request))
            return self._compose_page(request, session, doc, {"title": title, "body": body, "alert": alert}, "")
        sent = incidents.send_alert(self.service(request), doc)
        raise web.HTTPSeeOther(f"{PREFIX}/alerts/{sent['id']}?done=sent")

    # -- on-call, check-ins, peers, drills ------------------------------------------------
    async def oncall(self, request: web.Request, session: Session) -> web.StreamResponse:
        s = self.service(request)
        return self.render(request, session, "oncall.html", oncall=s.desk.on_call_json(),
                           responders=s.desk.responders())

    async def handoff(self, request: web.Request, session: Session) -> web.StreamResponse:
        form = await self.form(request)
        self.service(request).desk.hand_over(form.get("to", ""), form.get("note", ""))
        raise web.HTTPSeeOther(f"{PREFIX}/oncall")

    async def checkins(self, request: web.Request, session: Session) -> web.StreamResponse:
        s = self.service(request)
        return self.render(request, session, "checkins.html", plans=s.desk.checkins.plans(), now=s.clock(),
                           link=request.query.get("link", ""), peers=[p.name for p in s.store.list_peers()])

    async def checkin_start(self, request: web.Request, session: Session) -> web.StreamResponse:
        from node.alerts import parse_duration

        s = self.service(request)
        form = await self.form(request)
        every = parse_duration(form["every"], "every") if form.get("every") else 0
        deadline = s.clock() + parse_duration(form["in"], "in") if form.get("in") or not every else 0
        to = [p for p in (await request.post()).getall("to", []) if isinstance(p, str)]
        _plan, token = s.desk.checkins.start(
            form.get("who", "").strip() or "someone", form.get("region", "").strip(),
            deadline=deadline, interval_ms=every, grace_ms=parse_duration(form.get("grace") or "10m", "grace"),
            note=form.get("note", "")[:2000], to=to, pin=form.get("pin", ""), duress_pin=form.get("duress_pin", ""),
        )
        raise web.HTTPSeeOther(f"{PREFIX}/checkins?link=/checkin/{token}")

    async def checkin_stop(self, request: web.Request, session: Session) -> web.StreamResponse:
        self.service(request).desk.checkins.stop(request.match_info["id"])
        raise web.HTTPSeeOther(f"{PREFIX}/checkins")

    async def peers(self, request: web.Request, session: Session) -> web.StreamResponse:
        s = self.service(request)
        listed = [s.peer_json(p) | {"depth": s.mesh.trust.depth_of(p.key)} for p in s.store.list_peers()]
        return self.render(request, session, "peers.html", peers=listed, own=fingerprint(s.key))

    async def drills(self, request: web.Request, session: Session) -> web.StreamResponse:
        """The running drill (the banner lasts as long as the run: the runner's,
        whether the dashboard or ``amparo drill run`` started it) and every
        report kept, told in the reader's language."""
        s = self.service(request)
        language = self.language(request)
        reports = [_told(d, language) for k, d in s.store.list_records("drill") if k.startswith("report-")]
        running = s.drills.running.json() if s.drills.running is not None else None
        return self.render(request, session, "drills.html", reports=sorted(reports, key=lambda d: -d["at"]),
                           active=running, example=drill.example(drill.EXAMPLE.get(language, drill.EXAMPLE["en"])))

    async def drill_run(self, request: web.Request, session: Session) -> web.StreamResponse:
        """The node's one drill runner, as ``amparo drill run`` uses it."""
        form = await self.form(request)
        self.service(request).drills.start(drill.load(form.get("scenario", "")))
        raise web.HTTPSeeOther(f"{PREFIX}/drills")


def _told(report: dict[str, Any], language: str) -> dict[str, Any]:
    """A kept drill report in ``language``: from its steps' answers when it has
    them (reports of drills that ran to their end); else its text as kept."""
    if "outcome" not in report:
        return report
    markdown, svg = drill.told(str(report.get("name", "")), report["outcome"], language, linked=False)
    return report | {"markdown": markdown, "svg": svg}


def _health(s: NodeService) -> dict[str, Any]:
    peers = s.store.list_peers()
    last = max((p.last_seen or 0 for p in peers), default=0)
    return {"peers": len(peers), "up": sum(1 for p in peers if s.peer_is_up(p.key)), "last_sync": last,
            "backlog": s.allies.backlog(), "drill": s.drills.running is not None}


def _safe_next(value: str | None) -> str:
    """Only local dashboard paths: never an open redirect."""
    if value and value.startswith(f"{PREFIX}/") and not value.startswith("//") and "\\" not in value:
        return value
    return ""
