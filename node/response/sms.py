"""SMS for places without data: what a reply says, and what a page by SMS adds.

Pure functions (no clock, no I/O): the SMS desk (``node.response.sms_desk``)
carries them out. A reply is one line, case and spacing free:

``OK 4821``   check in (with the PIN when the check-in has one)
``SOS``       ask for help; ``SOS 9153`` with a PIN (the duress PIN raises a silent alert)
``ACK 7F3A``  acknowledge the alert whose short code a page carried

A page sent to an SMS channel carries the alert's short code and the reply
syntax (``reply_line``). The short code is the start of the alert's id, four
hex digits, longer only when another open incident starts the same way, so it
names one open incident; ``resolve`` finds it again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import urlsplit

from node.errors import Refused
from protocol.signing import PERSON_SMS_SEEN

CODE_CHARS: Final = 4
MAX_CODE_CHARS: Final = 12
MAX_SMS_CHARS: Final = 480  # three segments; a reply is a few characters
PIN_DIGITS: Final = range(4, 9)
PHONE_DIGITS: Final = range(8, 16)  # E.164: + and 8 to 15 digits
# Apprise schemes that deliver by SMS (apprise/plugins): a page to one of these gets the reply line.
SMS_SCHEMES: Final = frozenset(
    {
        "bulksms", "bulkvs", "burstsms", "clicksend", "d7sms", "httpsms", "kavenegar", "msg91", "plivo",
        "serwersms", "seven", "sinch", "smsc", "smseagle", "smseagles", "smsmgr", "smstunnel", "sns",
        "twilio", "vonage", "nexmo",
    }
)
Kind = Literal["ok", "sos", "ack"]
_REPLY = re.compile(r"\s*(?P<word>[A-Za-z]+)(?:\s+(?P<code>[0-9A-Za-z]+))?\s*[.!]?\s*")

# What the person reads, from the catalogs in their language (node.web.labels.SMS marks them).
REPLY_LINE = "Reply by SMS: ACK %(code)s"
CHECKED_IN = "Checked in at %(time)s. Thank you — stay safe."
HELP_ASKED = "Help was asked for at %(time)s. Your contacts are being alerted."
ACKNOWLEDGED = "Acknowledged alert %(code)s. Thank you."
NOT_UNDERSTOOD = "Not understood. Reply OK, OK and your PIN, SOS, or ACK and the code of the alert."
WRONG_PIN = "That PIN is not right. Nothing was sent."
ENDED = "This check-in has ended."
MESSAGES: Final = (REPLY_LINE, CHECKED_IN, HELP_ASKED, ACKNOWLEDGED, NOT_UNDERSTOOD, WRONG_PIN, ENDED)


class SmsRefused(Refused):
    """An SMS the node does not act on; the message is one line without its text or PIN."""


@dataclass(frozen=True, slots=True)
class Reply:
    kind: Kind
    code: str = ""  # the PIN (ok, sos) or the alert's short code (ack), as typed


def parse(text: str) -> Reply:
    """A reply, or ``SmsRefused`` saying what kind of text it was not (never the text)."""
    found = _REPLY.fullmatch(text[:MAX_SMS_CHARS]) if len(text) <= MAX_SMS_CHARS else None
    word = found["word"].upper() if found else ""
    code = (found["code"] or "") if found else ""
    if word in ("OK", "SOS"):
        if code and not (code.isdigit() and len(code) in PIN_DIGITS):
            raise SmsRefused(f"{word} takes a PIN of 4 to 8 digits")
        return Reply("ok" if word == "OK" else "sos", code)
    if word == "ACK":
        if not (CODE_CHARS <= len(code) <= MAX_CODE_CHARS and all(c in "0123456789abcdefABCDEF" for c in code)):
            raise SmsRefused("ACK takes the alert's code (4 or more hex digits)")
        return Reply("ack", code.upper())
    raise SmsRefused("not a reply Amparo knows (OK, SOS, ACK)")


def phone_number(text: str) -> str:
    """``+`` and digits (spaces, dashes and dots dropped), or ``SmsRefused``."""
    number = re.sub(r"[\s\-.()]", "", text or "")
    if number.startswith("00"):
        number = "+" + number[2:]
    if not (number.startswith("+") and number[1:].isdigit() and len(number) - 1 in PHONE_DIGITS):
        raise SmsRefused("the sender is not a phone number in international form (+ and 8 to 15 digits)")
    return number


def short_code(alert_hex: str, open_alerts: Iterable[str]) -> str:
    """The shortest start of ``alert_hex`` (at least four hex digits, upper
    case) that no other open incident shares."""
    others = [a.lower() for a in open_alerts if a.lower() != alert_hex.lower()]
    length = CODE_CHARS
    while length < MAX_CODE_CHARS and any(o.startswith(alert_hex[:length].lower()) for o in others):
        length += 1
    return alert_hex[:length].upper()


def resolve(code: str, open_alerts: Iterable[str]) -> str | None:
    """The one open incident whose id starts with ``code``; None for none or several."""
    found = [a for a in open_alerts if a.lower().startswith(code.lower())]
    return found[0] if len(found) == 1 else None


def is_sms_channel(url: str) -> bool:
    try:
        return urlsplit(url).scheme.lower() in SMS_SCHEMES
    except ValueError:
        return False


def seen_key(secret: bytes, sender: str, text: str, message_id: str) -> str:
    """What makes an SMS the same SMS again (a replay, or a gateway sending it
    twice): sender, text and the gateway's id or time for it, under a keyed
    hash (``secret``: the node's own), so the store keeps neither the text nor
    the PIN, and a copied database cannot try the 10,000 PINs against it."""
    joined = "\x00".join((sender, text.strip(), message_id))
    return hashlib.blake2b(joined.encode(), key=secret[:64], digest_size=16, person=PERSON_SMS_SEEN).hexdigest()
