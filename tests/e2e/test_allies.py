"""Allies' delivery on real node processes: region, severity and drill filters;
a webhook receiver that was down gets every alert exactly once, across a node
restart, with signatures that verify; real Apprise to a local catcher; a
restricted alert never reaches a non-recipient's channel or a log."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from node.allies import messages
from node.devmesh import LocalMesh, LocalNode, free_port
from tests.e2e.harness import LOOPBACK_TARGETS
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow


class Receiver:
    """A webhook receiver (and Apprise json:// catcher) that can go down: while
    down its port is closed, exactly like a crashed service."""

    def __init__(self) -> None:
        self.port = free_port()
        self.got: list[tuple[str, dict[str, str], bytes]] = []
        self.server: ThreadingHTTPServer | None = None
        self.up()

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.got.append((self.path, dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def down(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        self.server = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def alerts(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(body) for p, _, body in self.got if p == f"/{path}"]

    def headlines(self, path: str) -> list[str]:
        return [doc["alert"]["headline"] for doc in self.alerts(path)]


@pytest.fixture
def receiver() -> Any:
    r = Receiver()
    yield r
    if r.server is not None:
        r.down()


def drained(mesh: LocalMesh, node: LocalNode, alerts: list[str]) -> None:
    """Wait until ``node`` holds ``alerts`` and its outbox has nothing pending.

    A stored alert is queued for every subscription that wants it before it is
    visible, and a delivery is marked done only after the receiver answered: so
    once nothing is pending, everything that will ever be sent has been, and a
    negative ("nothing else arrived") holds without a sleep."""
    for alert_id in alerts:
        mesh.wait_for(alert_id, [node])

    def nothing_pending() -> bool:
        subs = node.api.get("/api/v1/status")["deliveries"]
        return all(s["deliveries"].get("pending", 0) == 0 for s in subs)

    wait_until(nothing_pending, timeout=30, what=f"{node.name}'s deliveries to drain")


def subscribe(node: LocalNode, *args: str) -> dict[str, Any]:
    out = node.amparo("subscribe", "add", *args, "--json")
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def test_region_severity_and_drill_filters(mesh_factory: Any, receiver: Receiver) -> None:
    mesh: LocalMesh = mesh_factory(2, **LOOPBACK_TARGETS)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    mx = subscribe(b, "--region", "MX", "--min-severity", "severe", "--webhook", receiver.url("mx"))
    subscribe(b, "--region", "CO", "--webhook", receiver.url("co"))
    drills = subscribe(b, "--region", "MX-OAX", "--exercises", "--webhook", receiver.url("drills"))

    sent = [
        a.send(headline="Minor: a flyer with threats", severity="minor"),
        a.send(headline="Drill: armed person at the march", exercise=True),
        a.send(
            headline="Defender detained in Juchitán", severity="extreme", instruction="Call the prosecutor"
        ),
    ]
    drained(mesh, b, sent)

    assert receiver.headlines("mx") == ["Defender detained in Juchitán"]
    assert receiver.headlines("co") == []
    assert sorted(receiver.headlines("drills")) == sorted(
        ["Minor: a flyer with threats", "Drill: armed person at the march", "Defender detained in Juchitán"]
    )
    drill = next(d for d in receiver.alerts("drills") if d["alert"]["status"] == "exercise")
    assert drill["drill"] is True
    for path, headers, body in receiver.got:
        secret = bytes.fromhex(mx["secret"] if path == "/mx" else drills["secret"])
        assert messages.verify(secret, headers[messages.SIGNATURE_HEADER], body, now=int(time.time()))
        assert headers[messages.DELIVERY_HEADER]
    assert "from_peer" not in receiver.alerts("mx")[0]["alert"]
    listed = json.loads(b.amparo("subscribe", "list", "--json").stdout)["subscriptions"]
    assert {s["id"]: s["deliveries"]["delivered"] for s in listed}[mx["id"]] == 1
    assert all("secret" not in s for s in listed)


def test_a_receiver_that_was_down_gets_everything_once_across_a_restart(
    mesh_factory: Any, receiver: Receiver
) -> None:
    mesh: LocalMesh = mesh_factory(2, **LOOPBACK_TARGETS)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    sub = subscribe(b, "--region", "MX", "--webhook", receiver.url("hook"))
    receiver.down()
    before = [a.send(headline=f"Before restart {i}") for i in range(3)]
    for alert_id in before:
        mesh.wait_for(alert_id, [b])
    wait_until(
        lambda: "last error" in b.amparo("status").stdout, timeout=20, what="a failed attempt in status"
    )

    b.stop()
    after = [a.send(headline=f"While B is down {i}") for i in range(2)]
    b.start()
    for alert_id in after:
        mesh.wait_for(alert_id, [b])
    receiver.up()
    wanted = {*before, *after}
    wait_until(lambda: len(receiver.got) >= len(wanted), timeout=60, what="the backlog to drain")
    drained(mesh, b, [])  # nothing left to send: a duplicate would be here by now

    ids = [doc["alert"]["id"] for doc in receiver.alerts("hook")]
    assert sorted(ids) == sorted(wanted), "every alert exactly once"
    assert len({doc["delivery"] for doc in receiver.alerts("hook")}) == len(wanted)
    secret = bytes.fromhex(sub["secret"])
    for _, headers, body in receiver.got:
        assert messages.verify(secret, headers[messages.SIGNATURE_HEADER], body, now=int(time.time()))
    counts = next(s for s in b.api.get("/api/v1/status")["deliveries"] if s["id"] == sub["id"])["deliveries"]
    assert counts["delivered"] == len(wanted) and counts["pending"] == 0


def test_real_apprise_delivery_to_a_local_catcher(mesh_factory: Any, receiver: Receiver) -> None:
    mesh: LocalMesh = mesh_factory(2, **LOOPBACK_TARGETS)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    subscribe(b, "--region", "MX", "--apprise", f"json://127.0.0.1:{receiver.port}/phone")
    a.send(headline="Community radio raided", regions=["MX-CHP"], instruction="Call the station")
    wait_until(lambda: receiver.got, timeout=30, what="the Apprise notification")
    note = json.loads(receiver.got[0][2])
    assert "Community radio raided" in note["title"] and "Chiapas (MX-CHP)" in note["title"]
    assert "ACTION: Call the station" in note["message"]
    assert f"{b.local_port}/ui/alerts/" in note["message"]


def test_restricted_alert_only_reaches_recipients_who_opted_in(mesh_factory: Any, receiver: Receiver) -> None:
    mesh: LocalMesh = mesh_factory(3, **LOOPBACK_TARGETS)
    a, b, c = mesh.nodes
    mesh.connect([(0, 1), (1, 2), (0, 2)])  # restricted goes to peers; B holds only ciphertext
    everything = ("--region", "*", "--scope", "public,members,restricted", "--exercises")
    subscribe(b, *everything, "--webhook", receiver.url("relay"))
    subscribe(c, "--region", "*", "--webhook", receiver.url("default-scopes"))
    subscribe(c, *everything, "--webhook", receiver.url("recipient"))
    secret_headline = "Safe house address for the family of the witness"
    alert_id = a.send(headline=secret_headline, scope="restricted", to=[c.name])
    public = a.send(headline="Public march tomorrow", scope="public")
    mesh.wait_for(alert_id, [c])
    wait_until(lambda: holds_ciphertext(b, alert_id), timeout=30, what="the relay to hold the ciphertext")
    drained(mesh, b, [public])
    drained(mesh, c, [public])

    assert receiver.headlines("relay") == ["Public march tomorrow"]
    assert receiver.headlines("default-scopes") == ["Public march tomorrow"]
    assert secret_headline in receiver.headlines("recipient")
    for path, _, body in receiver.got:
        if path != "/recipient":
            assert secret_headline.encode() not in body
    for node in (a, b, c):
        assert secret_headline.encode() not in (node.home / "node.log").read_bytes()


def holds_ciphertext(node: LocalNode, alert_id: str) -> bool:
    try:
        doc = node.api.get(f"/api/v1/alerts/{alert_id}")
    except Exception:
        return False
    return bool(doc["sealed"]) and not doc["readable"]


def test_subscribe_errors_are_clear(mesh_factory: Any) -> None:
    mesh: LocalMesh = mesh_factory(1)
    (a,) = mesh.nodes
    bad = a.amparo(
        "subscribe", "add", "--region", "MX-OAXX", "--webhook", "https://h.example.org/", check=False
    )
    assert bad.returncode != 0 and "MX-OAX" in bad.stderr and "Traceback" not in bad.stderr
    plain = a.amparo("subscribe", "add", "--region", "MX", "--webhook", "http://h.example.org/", check=False)
    assert plain.returncode != 0 and "https" in plain.stderr
    apprise = a.amparo("subscribe", "add", "--region", "MX", "--apprise", "nonsense://x", check=False)
    assert apprise.returncode != 0 and "Apprise" in apprise.stderr
    found = json.loads(a.amparo("regions", "search", "Oaxaca", "--json").stdout)
    assert found[0]["code"] == "MX-OAX"


@pytest.mark.smoke  # in the fast lane
def test_email_through_apprise_to_a_local_smtp_server(mesh_factory: Any) -> None:
    from email import message_from_bytes
    from email.header import decode_header, make_header

    from aiosmtpd.controller import Controller

    mails: list[bytes] = []

    class Mailbox:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            mails.append(envelope.content)
            return "250 OK"

    port = free_port()
    smtp = Controller(Mailbox(), hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        mesh: LocalMesh = mesh_factory(2, **LOOPBACK_TARGETS)
        a, b = mesh.nodes
        mesh.connect([(0, 1)])
        to = f"mailto://alertas@127.0.0.1:{port}?from=alertas@example.org&to=red-aliada@example.org&mode=insecure"
        subscribe(b, "--region", "MX", "--apprise", to, "--label", "Red Aliada (correo)")
        a.send(
            headline="Journalist detained in Oaxaca", regions=["MX-OAX"], instruction="Call the prosecutor"
        )
        wait_until(lambda: mails, timeout=30, what="the email")
        mail = message_from_bytes(mails[0])
        subject = str(make_header(decode_header(mail["Subject"])))
        assert "Journalist detained in Oaxaca" in subject and "Oaxaca (MX-OAX)" in subject
        assert mail["To"] == "red-aliada@example.org"
        text = mails[0].decode("utf-8", "replace")
        assert "Call the prosecutor" in text and "/ui/alerts/" in text
    finally:
        smtp.stop()


def test_an_update_reaches_a_webhook_as_the_current_state_linking_the_incident(
    mesh_factory: Any, receiver: Receiver
) -> None:
    """Issue 13 item 2: the update's webhook carries the incident's current state
    (a second update keeps what the first changed) and links the incident, not
    the update's own id."""
    mesh: LocalMesh = mesh_factory(2, **LOOPBACK_TARGETS)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    subscribe(b, "--region", "MX", "--webhook", receiver.url("mx"))
    alert_id = a.send(headline="Retén ficticio en Tlaxiaco", severity="moderate")
    drained(mesh, b, [alert_id])
    first = json.loads(a.amparo("alert", "update", alert_id, "--headline", "Retén retirado", "--json").stdout)
    second = json.loads(a.amparo("alert", "update", first["id"][:12], "--severity", "minor", "--json").stdout)
    assert second["incident"] == alert_id and second["changed"] == {"severity": ["moderate", "minor"]}
    wait_until(
        lambda: b.api.get(f"/api/v1/alerts/{alert_id}")["updates"] == 2, timeout=30, what="both updates at B"
    )
    drained(mesh, b, [alert_id])

    got = {doc["alert"]["id"]: doc for doc in receiver.alerts("mx")}
    latest = got[second["id"]]
    assert (latest["alert"]["headline"], latest["alert"]["severity"]) == ("Retén retirado", "minor")
    assert latest["alert"]["incident"] == alert_id
    assert {doc["link"].rsplit("/", 1)[1] for doc in got.values()} == {alert_id}
