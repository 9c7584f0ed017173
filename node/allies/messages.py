"""What allies' webhooks receive: the JSON and its signature.

Pure functions of the alert; the delivery desk does the sending. Drills are
marked (``"drill": true``) so nobody mistakes one for an attack; the short text
for phone channels is ``node.alerts.phone_text``, shared with responders' pages.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

SIGNATURE_HEADER = "Amparo-Signature"
DELIVERY_HEADER = "Amparo-Delivery"
EVENT_HEADER = "Amparo-Event"
BATCH_EVENT = "alerts"  # the Amparo-Event of a request carrying a list of deliveries


def webhook_body(
    alert_doc: dict[str, Any],
    *,
    delivery: str,
    subscription: str,
    link: str,
    change: dict[str, Any] | None = None,
    encoded: bytes | None = None,
) -> bytes:
    """The JSON a webhook receives: the alert as the local API shows it, plus
    the delivery id (receivers deduplicate on it) and a dashboard link. An
    update or cancel also carries ``change`` (``node.all_clear.change_json``):
    who made it, a cancel's reason, what an update changed, and that in words.

    ``encoded`` is ``encode(alert_doc)``, made once for all the subscriptions
    of an alert: the bytes are the same as without it (keys sorted, ``alert``
    and ``change`` first), only the per-subscription part is encoded again."""
    rest: dict[str, Any] = {
        "event": "alert",
        "delivery": delivery,
        "subscription": subscription,
        "drill": alert_doc.get("status") != "actual",
        "link": link,
    }
    head = b'{"alert":' + (encode(alert_doc) if encoded is None else encoded)
    if change is not None:
        head += b',"change":' + encode(change)
    return head + b"," + encode(rest)[1:]


def batch_body(items: list[bytes], *, subscription: str) -> bytes:
    """What a subscription with ``batch`` on receives: the queued deliveries in
    order, each exactly the body one delivery alone would have been
    (``webhook_body``), as ``{"deliveries": [...], "event": "alerts",
    "subscription": ...}`` (keys sorted, as ``encode`` would write them)."""
    return b'{"deliveries":[' + b",".join(items) + b'],"event":"alerts","subscription":' + encode(subscription) + b"}"


def encode(value: Any) -> bytes:
    """Compact JSON with sorted keys, as webhooks receive it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


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
