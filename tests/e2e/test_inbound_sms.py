"""SMS in, against one real node process shared by the module: every reply kind
(OK with the PIN, OK with the duress PIN, SOS, SOS with the duress PIN, ACK with
a page's short code), an unknown number, a wrong code and a replay, through
``amparo inbound sms`` (gammu-smsd's hook) and through the gateway endpoint
(SMS Gateway for Android's signed webhook). The duress PIN answers word for
word like the normal one and raises exactly one silent duress alert; nothing
of the texts or PINs reaches the log."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.catalogs import translations
from node.devmesh import LocalMesh, LocalNode
from node.response import sms
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow

LUCIA, ANA, STRANGER = "+5215550001111", "+5215550002222", "+5215550009999"
PIN, DURESS = "4821", "9153"
SPANISH = translations("es").gettext
CHECKED_IN_ES = SPANISH(sms.CHECKED_IN).split("%(time)s")[0]  # "… a las ", before the time
HELP_ASKED_ES = SPANISH(sms.HELP_ASKED).split("%(time)s")[0]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNode]:
    mesh = LocalMesh(tmp_path_factory.mktemp("sms"), 1)
    (one,) = mesh.nodes
    one.init()
    one.start()
    one.amparo("person", "add", "Lucía Ficticia", "--phone", LUCIA, "--lang", "es")
    one.amparo("sos", "link", "Lucía Ficticia", "--pin", PIN, "--duress-pin", DURESS)
    one.amparo("responder", "add", "Ana Ficticia", "--phone", ANA)
    try:
        yield one
    finally:
        mesh.stop_all()
        log = (one.home / "node.log").read_text("utf-8", "replace")
        assert PIN not in log and DURESS not in log and "OK " not in log and "SOS " not in log


def inbound(node: LocalNode, sender: str, text: str, *ids: str) -> subprocess.CompletedProcess[str]:
    return node.amparo("inbound", "sms", "--from", sender, "--text", text, *ids, check=False)


def alerts(node: LocalNode, starting: str) -> list[dict[str, Any]]:
    return [a for a in node.api.get("/api/v1/alerts")["alerts"] if a.get("headline", "").startswith(starting)]


def duress_alerts(node: LocalNode) -> list[dict[str, Any]]:
    return [a for a in node.api.get("/api/v1/alerts")["alerts"] if "duress" in a.get("headline", "").lower()]


def without_time(text: str) -> str:
    """The answer with its time of day taken out (two SMS a minute apart)."""
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d \S+", "TIME", text)


def test_cli_ok_duress_sos_and_ack(node: LocalNode) -> None:
    normal = inbound(node, LUCIA, f"OK {PIN}", "IN20261207_014500_00_a.txt")
    assert normal.returncode == 0, normal.stderr
    assert normal.stdout.startswith(CHECKED_IN_ES) and CHECKED_IN_ES.strip()  # Lucía reads Spanish
    before = len(duress_alerts(node))
    forced = inbound(node, LUCIA, f"ok {DURESS}", "IN20261207_014600_00_b.txt")
    assert (forced.returncode, without_time(forced.stdout), forced.stderr) == (
        normal.returncode, without_time(normal.stdout), normal.stderr
    )
    wait_until(lambda: len(duress_alerts(node)) == before + 1, timeout=15, what="one silent duress alert")

    help_asked = inbound(node, LUCIA, "SOS", "IN20261207_014700_00_c.txt")
    assert help_asked.returncode == 0 and help_asked.stdout.startswith(HELP_ASKED_ES)
    wait_until(lambda: len(alerts(node, "SOS: ")) == 1, timeout=10, what="the SOS alert")
    (sos_alert,) = alerts(node, "SOS: ")
    assert sos_alert["severity"] == "severe" and sos_alert["scope"] == "restricted"

    code = sms.short_code(sos_alert["id"], [a["id"] for a in node.api.get("/api/v1/alerts")["alerts"]])
    acked = inbound(node, ANA, f"ACK {code.lower()}", "IN20261207_014800_00_d.txt")
    assert acked.returncode == 0, acked.stderr
    assert acked.stdout.strip() == f"Acknowledged alert {code}. Thank you."  # Ana reads English
    shown = node.api.get(f"/api/v1/alerts/{sos_alert['id']}")
    assert shown["escalation"]["state"] == "acknowledged" and shown["escalation"]["acked_by"] == "Ana Ficticia"


def test_cli_refuses_unknown_numbers_wrong_codes_and_replays(node: LocalNode) -> None:
    stranger = inbound(node, STRANGER, f"OK {PIN}")
    assert (stranger.returncode, stranger.stdout.strip()) == (1, "")  # nothing is answered to a stranger
    assert stranger.stderr.strip() == "refused: unknown number"
    wrong = inbound(node, ANA, "ACK FFFFFF")
    assert wrong.returncode == 1 and "wrong code" in wrong.stderr
    garbled = inbound(node, LUCIA, "hola, todo bien")
    assert garbled.returncode == 1 and garbled.stdout.startswith("No se entendió")
    wrong_pin = inbound(node, LUCIA, "OK 0000", "IN20261207_015000_00_e.txt")
    assert wrong_pin.returncode == 1 and wrong_pin.stdout.startswith("Ese PIN no es correcto")

    first = inbound(node, LUCIA, "OK " + PIN, "IN20261207_015100_00_f.txt")
    again = inbound(node, LUCIA, "OK " + PIN, "IN20261207_015100_00_f.txt")
    assert first.returncode == 0
    assert (again.returncode, again.stdout.strip(), again.stderr.strip()) == (1, "", "refused: replayed message")


def test_gammu_run_on_receive_environment(node: LocalNode) -> None:
    env = {**os.environ, "SMS_1_NUMBER": LUCIA, "SMS_1_TEXT": f"OK {PIN}", "SMS_MESSAGES": "1"}
    ran = subprocess.run(
        [sys.executable, "-m", "node.cli", "--home", str(node.home), "inbound", "sms", "IN20261207_015200_00_g.txt"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert ran.returncode == 0 and ran.stdout.startswith(CHECKED_IN_ES), ran.stderr


# -- the gateway endpoint -------------------------------------------------------------------
def gateway(node: LocalNode, body: dict[str, Any], *, key: str, stamp: int | None = None) -> tuple[int, dict[str, Any]]:
    raw = json.dumps(body).encode()
    stamp = int(time.time()) if stamp is None else stamp
    signature = hmac.new(key.encode(), raw + str(stamp).encode(), hashlib.sha256).hexdigest()
    return post(node, raw, {"X-Signature": signature, "X-Timestamp": str(stamp)})


def post(node: LocalNode, raw: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{node.local_port}/sms/v1/inbound", data=raw, method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def received(sender: str, text: str, message_id: str) -> dict[str, Any]:
    """SMS Gateway for Android's sms:received webhook."""
    return {
        "deviceId": "ffffffffceb0b1db0000019399", "event": "sms:received", "id": "Ey6ECgOkVVFjz3CL48B8C",
        "payload": {"messageId": message_id, "message": text, "phoneNumber": sender, "simNumber": 1,
                    "receivedAt": "2026-12-07T01:53:00.000-06:00"},
        "webhookId": "LreFUt-Z3sSq0JufY9uWB",
    }


def test_gateway_app_endpoint(node: LocalNode) -> None:
    key = json.loads(node.amparo("inbound", "gateway-key", "--json").stdout)["key"]
    assert (Path(node.home) / "sms-gateway.key").stat().st_mode & 0o777 == 0o600
    status, normal = gateway(node, received(LUCIA, f"OK {PIN}", "a1"), key=key)
    assert (status, normal["acted"], normal["kind"]) == (200, True, "checked-in")
    before = len(duress_alerts(node))
    status, forced = gateway(node, received(LUCIA, f"OK {DURESS}", "a2"), key=key)
    assert status == 200 and {**forced, "reply": ""} == {**normal, "reply": ""}
    assert without_time(forced["reply"]) == without_time(normal["reply"])
    wait_until(lambda: len(duress_alerts(node)) == before + 1, timeout=15, what="one silent duress alert")

    status, sos_doc = gateway(node, received(LUCIA, f"SOS {DURESS}", "a3"), key=key)
    assert (status, sos_doc["acted"], sos_doc["kind"]) == (200, True, "help-asked")
    wait_until(lambda: len(duress_alerts(node)) == before + 2, timeout=10, what="the SOS under duress")
    newest = duress_alerts(node)[0]
    code = sms.short_code(newest["id"], [a["id"] for a in node.api.get("/api/v1/alerts")["alerts"]])
    status, acked = gateway(node, {"from": ANA, "text": f"ACK {code}", "id": "b1"}, key=key)  # a plain gateway
    assert (status, acked["acted"], acked["kind"]) == (200, True, "ack")

    body = received(STRANGER, "SOS", "a4")
    assert gateway(node, body, key=key)[1] == {"acted": False, "reply": "", "reason": "unknown number", "kind": ""}
    status, wrong = gateway(node, {"from": ANA, "text": "ACK 0000000", "id": "b2"}, key=key)
    assert status == 200 and not wrong["acted"] and "wrong code" in wrong["reason"]
    stamp = int(time.time())
    replayed = received(LUCIA, f"OK {PIN}", "a5")
    assert gateway(node, replayed, key=key, stamp=stamp)[1]["acted"]
    assert gateway(node, replayed, key=key, stamp=stamp)[1]["reason"] == "replayed message"

    assert gateway(node, received(LUCIA, "SOS", "a6"), key="0" * 64)[0] == 401  # not signed with the key
    assert gateway(node, received(LUCIA, "SOS", "a7"), key=key, stamp=stamp - 3600)[0] == 401  # stale
    status, bearer = post(node, json.dumps(received(LUCIA, "OK " + PIN, "a8")).encode(),
                          {"Authorization": f"Bearer {key}"})
    assert status == 200 and bearer["acted"]

