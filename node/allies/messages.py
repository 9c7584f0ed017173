"""What allies receive: the webhook JSON and its signature, and the short text
for phone channels (email, Signal, SMS…) sent through Apprise.

Pure functions of the alert; the delivery desk does the sending. Drills are
labelled DRILL in every channel so nobody mistakes one for an attack.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from protocol import Alert, regions

SIGNATURE_HEADER = "Amparo-Signature"
DELIVERY_HEADER = "Amparo-Delivery"
EVENT_HEADER = "Amparo-Event"
TITLE_CHARS = 120
BODY_CHARS = 480  # three SMS segments; a phone lock screen shows the start
_LABEL = {"exercise": "[DRILL] ", "test": "[TEST] "}
_VERB = {"update": "UPDATE: ", "cancel": "CANCELLED: "}


def webhook_body(alert_doc: dict[str, Any], *, delivery: str, subscription: str, link: str) -> bytes:
    """The JSON a webhook receives: the alert as the local API shows it, plus
    the delivery id (receivers deduplicate on it) and a dashboard link."""
    doc = {
        "event": "alert",
        "delivery": delivery,
        "subscription": subscription,
        "drill": alert_doc.get("status") != "actual",
        "link": link,
        "alert": alert_doc,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``.

    The timestamp is inside the MAC so a receiver can refuse replays older than
    a few minutes; see docs/allies.md for the receiver side.
    """
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: bytes | str, header: str, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """The receiver's check, shipped so receivers written in Python can reuse it.
    ``secret`` as ``amparo subscribe add`` prints it (hex text) or as bytes."""
    if isinstance(secret, str):
        try:
            secret = bytes.fromhex(secret.strip())
        except ValueError:
            return False
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


def phone_text(alert: Alert, *, link: str) -> tuple[str, str]:
    """(title, body) that fit a phone screen: headline, region, severity,
    the requested action and the dashboard link."""
    label = _LABEL.get(alert.status, "") + _VERB.get(alert.msg_type, "")
    where = ", ".join(_place(a.region) for a in alert.areas)
    title = f"{label}{alert.severity.upper()} · {where}: {alert.headline}"
    action = f"ACTION: {alert.instruction}" if alert.instruction else ""
    tail = f"\n{link}"
    room = BODY_CHARS - len(tail)
    head = "\n".join(p for p in (action, alert.contact and f"Contact: {alert.contact}") if p)
    body = (_clip(head, room) if head else "") + tail
    return _clip(title, TITLE_CHARS), body.strip()


def _place(code: str) -> str:
    named = regions.name(code)
    return code if named == code else f"{named} ({code})"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
