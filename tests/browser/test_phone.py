"""The phone page of issue 16 in headless Chromium against real node processes,
one mesh for every story: B is the organization, A the ally its check-ins
alert, C a peer that relays but is not a recipient (A — B — C).

- An SOS from a 390 px phone, with the location the person agreed to share,
  reaches A as a sealed severe alert with the location and the note; C holds
  the ciphertext and cannot read it; the page says help was asked and when.
- The page works by keyboard and screen reader: labels, focus order, live status.
- A duress PIN answers the same bytes and status as the PIN, in a time that a
  Welch t-test cannot tell apart over 200 tries, and only the duress PIN
  raises an alert: exactly one.
- Offline (Playwright's offline mode): the tap is kept, the page says it is
  waiting for signal, and once online the check-in arrives dated by the tap.
- A Spanish person (or browser) reads the page in Spanish.

Screenshots go to artifacts/screenshots/ (see conftest.py)."""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.cli.client import ApiError
from node.devmesh import LocalMesh, LocalNode
from tests.e2e.conftest import LogScan
from tests.e2e.test_gossip import wait_until
from tests.welch import welch

pytestmark = pytest.mark.slow
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
OAXACA = {"latitude": 17.065432, "longitude": -96.723456, "accuracy": 30}
TRIES = 100  # of each PIN: 200 tries


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMesh]:
    scan = LogScan()
    built = LocalMesh(tmp_path_factory.mktemp("phone"), 3)
    built.init_all()
    for node in built.nodes:
        scan.watch(node)
    built.start_all()
    try:
        built.connect([(0, 1), (1, 2)])
        yield built
    finally:
        built.stop_all()
    scan.check()


def url(node: LocalNode, path: str) -> str:
    return f"http://127.0.0.1:{node.local_port}{path}"


def start(b: LocalNode, *args: str) -> str:
    """A check-in at B; its phone link's path."""
    doc = json.loads(b.amparo("checkin", "start", "--region", "MX-OAX", *args, "--json").stdout)
    return str(urllib.parse.urlparse(doc["link"]).path)


def alerts(node: LocalNode, headline_start: str) -> list[dict[str, Any]]:
    return [
        x
        for x in node.api.get("/api/v1/alerts")["alerts"]
        if x.get("headline", "").startswith(headline_start)
    ]


def held(node: LocalNode, alert_id: str) -> dict[str, Any] | None:
    """What ``node`` shows of an alert it stores (readable or not), None before it has it."""
    try:
        doc: dict[str, Any] = node.api.get(f"/api/v1/alerts/{alert_id}")
    except ApiError:  # 404: not there yet
        return None
    return doc


def post(node: LocalNode, path: str, fields: dict[str, str], **headers: str) -> tuple[int, bytes, float]:
    """A tap as the page sends it: status, body and the seconds it took."""
    request = urllib.request.Request(
        url(node, path), data=urllib.parse.urlencode(fields).encode(), method="POST", headers=headers
    )
    began = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    return status, body, time.perf_counter() - began


def test_sos_with_location_reaches_the_ally_sealed(browser: Any, mesh: LocalMesh, shots: Path) -> None:
    a, b, c = mesh.nodes
    link = start(
        b, "--who", "Lucía", "--every", "1h", "--to", a.name, "--pin", "4821", "--duress-pin", "9153"
    )
    context = browser.new_context(**PHONE, geolocation=OAXACA, permissions=["geolocation"])
    phone = context.new_page()
    phone.goto(url(b, link))
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    for button in (phone.locator("button.safe"), phone.locator("button.help")):
        box = button.bounding_box()
        assert box and box["width"] >= 300 and box["height"] >= 60  # easy to hit with a thumb
    phone.screenshot(path=str(shots / "phone-sos.png"), full_page=True)
    phone.fill("#note", "Two cars follow us")
    phone.check("#share")
    phone.locator("button.help").tap()  # not confirmed: the browser refuses the form, nothing is sent
    assert phone.evaluate("document.getElementById('confirm').validity.valueMissing")
    assert phone.locator("#help-asked").count() == 0
    phone.check("#confirm")
    phone.locator("button.help").tap()
    phone.locator("#help-asked").wait_for()
    assert "Help was asked for at" in phone.locator("#status").inner_text()
    phone.screenshot(path=str(shots / "phone-sos-sent.png"), full_page=True)

    wait_until(lambda: alerts(a, "SOS"), timeout=30, what="the SOS at the ally")
    (alert,) = alerts(a, "SOS")
    assert alert["headline"] == "SOS: Lucía asks for help" and alert["severity"] == "severe"
    assert alert["sealed"] and alert["description"] == "Two cars follow us"
    assert alert["areas"][0]["circle"] == [17_065_432, -96_723_456, 30]
    wait_until(lambda: held(c, alert["id"]), timeout=30, what="the ciphertext at C")
    shown = json.dumps(held(c, alert["id"]))
    assert not alerts(c, "SOS") and "Lucía" not in shown and "Two cars" not in shown  # C cannot read it
    assert "17065432" not in shown and "17.06" not in shown
    assert "Two cars" not in (b.home / "node.log").read_text()
    context.close()


def test_keyboard_and_screen_reader(browser: Any, mesh: LocalMesh) -> None:
    _a, b, _c = mesh.nodes
    link = start(b, "--who", "Equipo Norte", "--every", "1h", "--pin", "2468")
    phone = browser.new_context(**PHONE).new_page()
    phone.goto(url(b, link))
    for field, label in (
        ("#pin", "Your PIN"),
        ("#note", "What is happening"),
        ("#share", "Attach my location"),
        ("#confirm", "Yes, I need help now"),
    ):
        assert label in phone.locator(field).evaluate(
            "e => Array.from(e.labels).map(l => l.innerText).join()"
        )
    assert phone.locator("#status").get_attribute("role") == "status"
    assert phone.locator("#status").get_attribute("aria-live") == "polite"
    assert phone.get_by_role("button", name="I am safe — check in").count() == 1
    assert phone.get_by_role("button", name="I need help").count() == 1
    order = []
    for _ in range(6):
        phone.keyboard.press("Tab")
        order.append(phone.evaluate("document.activeElement.id || document.activeElement.className"))
    assert order == ["pin", "safe", "note", "share", "confirm", "help"]
    phone.focus("#pin")
    phone.keyboard.type("2468")
    phone.keyboard.press("Enter")
    phone.locator("#delivery.sent").wait_for()
    assert "Checked in at" in phone.locator("#status").inner_text()


def test_duress_answers_like_the_pin_and_alone_raises_one_alert(mesh: LocalMesh) -> None:
    a, b, _c = mesh.nodes
    link = start(b, "--who", "Mara", "--every", "1h", "--to", a.name, "--pin", "4821", "--duress-pin", "9153")
    tap = str(int(time.time() * 1000))  # every tap at one instant: the recorded time is the same
    page = {"action": "ok", "tap": tap}
    script = {"Accept": "application/json"}

    normal = post(b, link, {**page, "pin": "4821"})
    duress = post(b, link, {**page, "pin": "9153"})
    assert normal[:2] == duress[:2] and normal[0] == 200  # the HTML the phone shows, byte for byte
    wait_until(lambda: alerts(a, "Duress"), timeout=30, what="the duress alert at the ally")
    (alert,) = alerts(b, "Duress")  # one: the PIN raised none
    assert (
        alert["headline"] == "Duress: Mara checked in with their duress PIN" and alert["severity"] == "severe"
    )
    assert alerts(a, "Duress")[0]["sealed"] and len(alerts(a, "Duress")) == 1
    assert (
        post(b, link, {**page, "pin": "4821"}, **script)[:2]
        == post(b, link, {**page, "pin": "9153"}, **script)[:2]
    )

    kinds = ["4821"] * TRIES + ["9153"] * TRIES
    random.Random(16).shuffle(kinds)  # interleaved: a slow moment of the machine hits both
    times: dict[str, list[float]] = {"4821": [], "9153": []}
    bodies = set()
    for pin in kinds:
        status, body, took = post(
            b, link, {**page, "pin": pin, "tap_id": f"{random.random():.12f}"}, **script
        )
        assert status == 200
        bodies.add(body)
        times[pin].append(took)
    assert len(bodies) == 1
    t, df, p = welch(times["4821"], times["9153"])
    mean = {pin: 1000 * sum(v) / len(v) for pin, v in times.items()}
    print(
        f"PIN {mean['4821']:.2f} ms, duress {mean['9153']:.2f} ms over {TRIES} each: t={t:.2f} df={df:.0f} p={p:.3f}"
    )
    assert p > 0.01, f"the duress answer's time differs: t={t:.2f}, p={p:.4f} ({mean})"


def test_offline_tap_is_kept_and_arrives_dated_by_the_tap(browser: Any, mesh: LocalMesh, shots: Path) -> None:
    _a, b, _c = mesh.nodes
    link = start(b, "--who", "Brigada Sur", "--every", "1h")
    context = browser.new_context(**PHONE)
    phone = context.new_page()
    phone.goto(url(b, link))
    phone.wait_for_function(  # the service worker runs and keeps a copy: the page opens offline too
        "navigator.serviceWorker.ready.then(() => caches.open('amparo-pages-v1'))"
        ".then(c => c.match(location.pathname)).then(r => !!r)"
    )
    context.set_offline(True)
    phone.locator("button.safe").tap()
    phone.locator("#delivery.waiting").wait_for()
    assert "Waiting for signal" in phone.locator("#delivery").inner_text()
    kept = phone.evaluate(
        "caches.open('amparo-taps').then(c => c.match('/checkin-pending' + location.pathname)).then(r => r.json())"
    )
    tapped = int(dict(kept["fields"])["tap"])
    phone.screenshot(path=str(shots / "phone-offline.png"), full_page=True)
    phone.reload()  # the page comes back without signal (the service worker's copy), the tap still kept
    phone.locator("#delivery.waiting").wait_for()
    # (Whether the node has it yet is not asked: Playwright's offline mode does not
    # cover the service worker, whose Background Sync may already have sent it.)
    context.set_offline(False)
    phone.locator("#delivery.sent").wait_for(timeout=30_000)
    assert phone.locator("#delivery").inner_text().startswith("Sent ")
    (plan,) = [p for p in b.api.get("/api/v1/checkins")["checkins"] if p["who"] == "Brigada Sur"]
    assert plan["last_ok"] == tapped and plan["next_deadline"] == tapped + 3_600_000
    phone.screenshot(path=str(shots / "phone-sent.png"), full_page=True)
    context.close()


def test_spanish_person_and_browser_and_the_cli(browser: Any, mesh: LocalMesh, shots: Path) -> None:
    _a, b, _c = mesh.nodes
    b.amparo("person", "add", "Rosa", "--phone", "+50255501234", "--lang", "es")
    made = json.loads(
        b.amparo("sos", "link", "Rosa", "--pin", "1234", "--duress-pin", "5678", "--json").stdout
    )
    again = json.loads(b.amparo("sos", "link", "Rosa", "--json").stdout)
    assert made["link"] == again["link"] and again["pins"]  # the same link until revoked
    standing = urllib.parse.urlparse(made["link"]).path
    english = browser.new_context(**PHONE, locale="en-US")
    phone = english.new_page()
    phone.goto(url(b, standing))  # an English phone: Rosa's own language wins
    assert phone.locator("h1").inner_text() == "Reporte de llegada de Rosa"
    assert phone.locator("label[for=pin]").inner_text() == "Tu PIN"
    phone.screenshot(path=str(shots / "phone-es.png"), full_page=True)
    phone.fill("#pin", "1234")
    phone.locator("button.safe").tap()
    phone.locator("#delivery.sent").wait_for()
    assert phone.locator("#delivery").inner_text().startswith("Enviado ")
    assert phone.locator("#status").inner_text().startswith("Reportado a las ")

    plan = start(b, "--who", "Equipo Oeste", "--in", "2h")
    spanish = browser.new_context(
        **PHONE, locale="es-MX", extra_http_headers={"Accept-Language": "es-MX,es;q=0.9"}
    )
    page = spanish.new_page()
    page.goto(url(b, plan))  # nobody's language: the browser's
    assert page.locator("h1").inner_text() == "Reporte de llegada de Equipo Oeste"
    assert page.get_by_role("button", name="Necesito ayuda").count() == 1
    assert "Toca el botón antes de tu hora límite" in page.locator("#status").inner_text()
    phone.goto(url(b, plan))
    assert phone.locator("h1").inner_text() == "Check-in for Equipo Oeste"

    refused = [
        b.amparo("person", "add", "Mara", "--phone", "5551234", check=False),
        b.amparo(
            "checkin", "start", "--who", "X", "--region", "GT", "--in", "1h", "--pin", "12", check=False
        ),
        b.amparo(
            "checkin",
            "start",
            "--who",
            "X",
            "--region",
            "GT",
            "--in",
            "1h",
            "--pin",
            "1234",
            "--duress-pin",
            "1234",
            check=False,
        ),
        b.amparo("sos", "link", "Nadie", check=False),
    ]
    assert [r.returncode for r in refused] == [1, 1, 1, 1]
    for result, says in zip(
        refused, ("phone: an E.164 number", "pin: 4 to 8 digits", "must differ", "Nadie"), strict=True
    ):
        assert (
            says in result.stderr
            and "Traceback" not in result.stderr
            and len(result.stderr.splitlines()) == 1
        )

    b.amparo("sos", "link", "Rosa", "--revoke")
    gone = spanish.new_page()
    response = gone.goto(url(b, standing))
    assert response is not None and response.status == 404
    assert gone.locator("#phone").inner_text().strip().endswith("Este enlace de reporte no es válido.")
    for context in (english, spanish):
        context.close()
