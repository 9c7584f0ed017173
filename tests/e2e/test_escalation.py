"""Escalation on a real node: pages go out through real Apprise to a local HTTP
catcher; silence climbs the chain; an ack stops it; a restart mid-escalation
neither forgets nor repeats a page."""

from __future__ import annotations

import json
import threading
import time
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from node.devmesh import LocalMesh, free_port
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


def configure(home: Path, **settings: object) -> None:
    path = home / "config.toml"
    doc = tomllib.loads(path.read_text()) | settings
    path.write_text(tomli_w.dumps(doc))


@pytest.fixture
def org(tmp_path: Path) -> Any:
    mesh = LocalMesh(tmp_path, 2)
    mesh.init_all()
    configure(mesh.nodes[1].home, watch_regions=["MX"], ack_timeout="3s")
    mesh.start_all()
    mesh.connect([(0, 1)])
    catcher = Catcher()
    b = mesh.nodes[1]
    for name in ("Ana", "Bruno", "Carmen"):
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
    assert "SEVERE MX-OAX" in title and "Juchitán" in title
    wait_until(lambda: catcher.who() == ["Ana", "Bruno"], timeout=20, what="the backup after 3 s of silence")
    assert b.api.get("/api/v1/status")["escalations_paging"] == [alert_id]
    assert "Escalating:" in b.amparo("status").stdout
    b.amparo("alert", "ack", alert_id, "--state", "responding")
    time.sleep(5)  # longer than the next deadline: nobody else may be paged
    assert catcher.who() == ["Ana", "Bruno"]
    shown = b.api.get(f"/api/v1/alerts/{alert_id}")
    assert shown["escalation"]["state"] == "acknowledged"
    assert b.api.get("/api/v1/status")["escalations_paging"] == []
    texts = [n["text"] for n in shown["notes"]]
    assert any("paged backup" in t for t in texts) and any("acknowledged" in t for t in texts)
    assert b.api.get(f"/api/v1/alerts/{ignored}")["escalation"] is None
    b.amparo("alert", "note", alert_id, "Debrief: the prosecutor answered within 40 minutes")
    assert "Debrief" in b.amparo("alert", "show", alert_id).stdout


def test_restart_mid_escalation_neither_forgets_nor_repeats(org: Any) -> None:
    mesh, catcher = org
    a, b = mesh.nodes
    a.send(headline="Community radio raided", regions=["MX-CHP"])
    wait_until(lambda: catcher.who() == ["Ana"], timeout=20, what="the first page")
    b.stop()
    time.sleep(4)  # the backup's deadline passes while the node is down
    b.start()
    wait_until(lambda: len(catcher.who()) >= 5, timeout=30, what="the rest of the chain after the restart")
    time.sleep(4)  # nothing more may come: the chain is exhausted
    # on-call, backup (fired once although its deadline passed during the downtime), then everyone
    assert catcher.who() == ["Ana", "Bruno", "Ana", "Bruno", "Carmen"]
