"""Escalation on a real node: pages go out through real Apprise to a local HTTP
catcher; silence climbs the chain; an ack stops it.

What needs time to pass with nothing happening ("nobody else is paged after the
ack", "the deadline passes while the node is down", a restart mid-escalation)
is asserted on the in-process grid with a fake clock: tests/grid/test_escalation.py."""

from __future__ import annotations

import http.cookiejar
import json
import re
import threading
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from node.devmesh import LocalMesh, free_port
from tests.e2e.harness import LOOPBACK_TARGETS
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow


class Catcher:
    """An HTTP endpoint for Apprise's json:// notifications."""

    def __init__(self) -> None:
        self.port = free_port()
        self.pages: list[tuple[str, dict[str, Any]]] = []
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                catcher.pages.append((self.path, json.loads(body or b"{}")))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, who: str) -> str:
        return f"json://127.0.0.1:{self.port}/{who}"

    def who(self) -> list[str]:
        return [path.strip("/") for path, _ in self.pages]


PASSWORD = "correct horse battery"  # a test account on a throwaway node


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any) -> None:
        return None


def first_response(url: str) -> tuple[int, str]:
    """Status and Location of a plain GET, redirects not followed."""
    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=10) as resp:
            return resp.status, resp.headers.get("Location", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location", "")


def open_signed_in(url: str, name: str, password: str) -> str:
    """Follow a page's link as the responder does on a phone: sign in, land on it."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with opener.open(url, timeout=10) as resp:  # redirected to the sign-in form
        form = resp.read().decode()
        login = resp.url
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf, form[:500]
    nxt = urllib.parse.parse_qs(urllib.parse.urlsplit(login).query)["next"][0]
    data = urllib.parse.urlencode({"name": name, "password": password, "csrf": csrf[1], "next": nxt}).encode()
    try:
        with opener.open(urllib.request.Request(login.split("?")[0], data=data), timeout=10) as resp:
            assert urllib.parse.urlsplit(resp.url).path == urllib.parse.urlsplit(url).path
            return str(resp.read().decode())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{exc.url}: HTTP {exc.code}\n{exc.read().decode()[:2000]}") from None


def configure(home: Path, **settings: object) -> None:
    path = home / "config.toml"
    doc = tomllib.loads(path.read_text()) | settings
    path.write_text(tomli_w.dumps(doc))


@pytest.fixture
def org(tmp_path: Path) -> Any:
    mesh = LocalMesh(tmp_path, 2, settings=LOOPBACK_TARGETS)
    mesh.init_all()
    b = mesh.nodes[1]
    # "localhost" rather than the 127.0.0.1 of `local`: the links must come from public_url
    # 8 s: room for the checks and the ack between the backup's page and the next step
    # on a loaded machine; the chain's timing itself is tested on the grid's clock
    configure(b.home, watch_regions=["MX"], ack_timeout="8s", public_url=f"http://localhost:{b.local_port}/")
    mesh.start_all()
    mesh.connect([(0, 1)])
    catcher = Catcher()
    b.api.post("/api/v1/responders", {"name": "Ana", "channels": [catcher.url("Ana")], "password": PASSWORD})
    for name in ("Bruno", "Carmen"):
        b.amparo("responder", "add", name, "--channel", catcher.url(name))
    b.amparo("oncall", "schedule", "--responder", "Ana", "--backup", "Bruno", "--hours", "24")
    yield mesh, catcher
    catcher.server.shutdown()
    mesh.stop_all()


def test_silence_climbs_the_chain_and_an_ack_stops_it(org: Any) -> None:
    mesh, catcher = org
    a, b = mesh.nodes
    ignored = a.send(headline="Outside our regions", regions=["CO"])
    alert_id = a.send(headline="Defender threatened in Juchitán", regions=["MX-OAX"], instruction="Call her")
    wait_until(lambda: catcher.who() == ["Ana"], timeout=20, what="the on-call responder to be paged")
    title = catcher.pages[0][1]["title"]
    assert "SEVERE · Oaxaca (MX-OAX)" in title and "Juchitán" in title  # the one phone text (node.alerts)
    link = f"http://localhost:{b.local_port}/ui/alerts/{alert_id}"
    assert link in catcher.pages[0][1]["message"].splitlines()  # public_url, not `local`
    status, location = first_response(link)
    assert status == 303 and location.startswith("/ui/login?next=")  # a real route: sign in, not 404
    assert "Juchitán" in open_signed_in(link, "Ana", PASSWORD)
    assert first_response(link.replace("/ui/alerts/", "/alerts/"))[0] in (401, 404)  # the old link: no page
    plan = b.api.post("/api/v1/checkins", {"who": "Lucía", "region": "MX-OAX", "in": "2h"})
    assert plan["link"].startswith(f"http://localhost:{b.local_port}/checkin/") and plan["loopback"]
    b.api.post(f"/api/v1/checkins/{plan['id']}/stop")
    assert b.api.get("/api/v1/status")["escalations_paging"] == [alert_id]
    assert "Escalating:" in b.amparo("status").stdout
    wait_until(lambda: catcher.who() == ["Ana", "Bruno"], timeout=30, what="the backup after 8 s of silence")
    # the ack comes at once: the next step is 8 s away, a window one CLI call fits in on a loaded machine
    b.amparo("alert", "ack", alert_id, "--state", "responding")  # the escalation stops before this returns
    assert catcher.who() == ["Ana", "Bruno"]  # that nobody is paged later: tests/grid/test_escalation.py
    shown = b.api.get(f"/api/v1/alerts/{alert_id}")
    assert shown["escalation"]["state"] == "acknowledged"
    assert b.api.get("/api/v1/status")["escalations_paging"] == []
    texts = [n["text"] for n in shown["notes"]]
    assert any("paged backup" in t for t in texts) and any("acknowledged" in t for t in texts)
    assert b.api.get(f"/api/v1/alerts/{ignored}")["escalation"] is None
    b.amparo("alert", "note", alert_id, "Debrief: the prosecutor answered within 40 minutes")
    assert "Debrief" in b.amparo("alert", "show", alert_id).stdout
