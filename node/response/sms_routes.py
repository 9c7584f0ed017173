"""SMS in over HTTP: the CLI's route (``amparo inbound sms``, API token) and the
endpoint for SMS-gateway apps on a phone (``/sms/v1/inbound``, no API token:
an HMAC with the gateway key, ``amparo inbound gateway-key``).

The gateway endpoint takes the webhook of *SMS Gateway for Android*
(``sms:received``: ``payload.phoneNumber``, ``payload.message``,
``payload.messageId``, ``payload.receivedAt``) and a plain
``{"from", "text", "id"}`` from any other gateway or script. It is
authenticated either way by ``X-Signature``: hex HMAC-SHA256 of the raw body
followed by ``X-Timestamp`` (Unix seconds, at most five minutes off), which is
how that app signs; or, for apps that can only send a fixed header, by
``Authorization: Bearer <gateway key>`` (then only the SMS replay check stands
between a copied request and a second check-in; prefer the signature). Every
answer is 200 with what was done (``acted``) and the text to send back
(``reply``), so a gateway does not retry a refused SMS; a bad signature is 401.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from node import contract as c
from node.config import write_private
from node.errors import Refused
from node.response.sms_desk import SmsAnswer, SmsDesk
from node.routes import Route, read_body, service

GATEWAY_KEY_FILE: Final = "sms-gateway.key"
MAX_SKEW_S: Final = 300
MAX_BODY: Final = 16 * 1024


class GatewayRefused(Refused):
    code, status = "unauthorized", 401


def gateway_key(home: Path, *, new: bool = False) -> str:
    """The gateway key (hex), made on first use or when ``new``."""
    path = home / GATEWAY_KEY_FILE
    if new or not path.exists():
        write_private(path, secrets.token_hex(32).encode())
    return path.read_text("ascii").strip()


def _json(answer: SmsAnswer) -> web.Response:
    return web.json_response(
        {"acted": answer.acted, "reply": answer.reply, "reason": answer.reason, "kind": answer.kind}
    )


async def from_cli(request: web.Request) -> web.Response:
    doc = await read_body(request, c.InboundSms)
    return _json(SmsDesk(service(request)).receive(doc.sender, doc.text, doc.id or ""))


async def from_gateway(request: web.Request) -> web.Response:
    s = service(request)
    key_path = s.home / GATEWAY_KEY_FILE
    if not key_path.exists():
        raise GatewayRefused("no SMS gateway is set up on this node (amparo inbound gateway-key)", status=404,
                             code="not-found")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise Refused("too large", code="too-large", status=413)
    stamp = _authenticate(request, raw, key_path.read_text("ascii").strip().encode(), s.clock())
    sender, text, message_id, sent_at = _message(raw)
    return _json(SmsDesk(s).receive(sender, text, message_id or stamp, sent_at))


def _authenticate(request: web.Request, raw: bytes, key: bytes, now_ms: int) -> str:
    """The request's timestamp when signed, "" when it came with the bearer key."""
    signature, stamp = request.headers.get("X-Signature", ""), request.headers.get("X-Timestamp", "")
    if signature:
        if not stamp.isdigit() or abs(int(stamp) - now_ms // 1000) > MAX_SKEW_S:
            raise GatewayRefused("X-Timestamp: Unix seconds within five minutes of the node's clock")
        expected = hmac.new(key, raw + stamp.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.strip().lower()):
            raise GatewayRefused("X-Signature does not match (HMAC-SHA256 of the body and X-Timestamp)")
        return stamp
    bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if bearer and hmac.compare_digest(bearer.encode(), key):
        return ""
    raise GatewayRefused("sign the request (X-Signature, X-Timestamp) or send Authorization: Bearer <gateway key>")


def _message(raw: bytes) -> tuple[str, str, str, int]:
    """(sender, text, gateway message id, when the phone received it in Unix ms or 0)."""
    try:
        doc = json.loads(raw)
    except ValueError:
        raise Refused("the body must be JSON", code="bad-json") from None
    if not isinstance(doc, dict):
        raise Refused("the body must be a JSON object", code="bad-json")
    payload = doc.get("payload")
    if isinstance(payload, dict):  # SMS Gateway for Android's sms:received
        if doc.get("event") != "sms:received":
            raise Refused(f"event: only sms:received is taken, not {str(doc.get('event'))[:40]!r}")
        received = str(payload.get("receivedAt") or "")
        message_id = f"{payload.get('messageId') or ''}@{received}"
        return _text(payload, "phoneNumber"), _text(payload, "message"), message_id, _instant(received)
    return _text(doc, "from"), _text(doc, "text"), str(doc.get("id") or "")[:200], 0


def _text(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if not isinstance(value, str):
        raise Refused(f"{name}: required, as text")
    return value


def _instant(text: str) -> int:
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return 0
    return int(stamp.timestamp() * 1000) if stamp.tzinfo is not None else 0


ROUTES = (
    Route(
        "POST", "/api/v1/inbound/sms", from_cli,
        "An SMS a person sent (OK [PIN], SOS [PIN], ACK code): acted on or refused, with the reply to send back",
        body=c.InboundSms, answer=c.SmsHandled,
    ),
    Route(
        "POST", "/sms/v1/inbound", from_gateway,
        "For SMS-gateway apps: an SMS received (SMS Gateway for Android's sms:received webhook, or "
        '{"from", "text", "id"}), signed with the gateway key (X-Signature: hex HMAC-SHA256 of body + '
        "X-Timestamp) or with Authorization: Bearer <gateway key>",
        answer=c.SmsHandled, public=True, refusals=(401, 404, 413),
    ),
)
