"""SMS in: a reply from a phone becomes a check-in, a call for help or an
acknowledgement (``amparo inbound sms``, and the gateway endpoint of
``node.response.sms_routes``).

The sender's number must be a field person's or a responder's. What they can
do is the field desk's (``node.response.field``): ``OK [PIN]`` checks in,
``SOS [PIN]`` asks for help, and the duress PIN does the same with a silent
alert, so the answer to a duress PIN is the answer to the normal one, word for
word. ``ACK code`` is for responders: it acknowledges the open incident whose
short code their page by SMS carried, for this organization, like the
dashboard's button.

Refused, and logged without the text or the PIN (the number only by its last
digits): an unknown number, a reply Amparo does not know, a code that names no
open incident, a replay (the same sender, text and gateway id or time seen
within ``REPLAY_WINDOW_MS``), and PINs after ``MAX_WRONG_PINS`` wrong ones in
an hour from one number (ten thousand PINs cannot be tried by SMS).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from node import clock_text, incidents
from node.catalogs import translations
from node.errors import Refused
from node.incidents import AlertHost
from node.response import sms
from node.response.field import FieldAnswer, Holder
from node.store import PersonRow
from protocol.signing import PERSON_SMS_KEY

log = logging.getLogger("amparo.sms")
_Gettext = Callable[[str], str]
REPLAY_WINDOW_MS: Final = 24 * 3600 * 1000  # with a gateway's message id or time
REPEAT_WINDOW_MS: Final = 2 * 60 * 1000  # without one: the same text again within two minutes
MAX_WRONG_PINS: Final = 5
WRONG_PIN_WINDOW_MS: Final = 3600 * 1000


@dataclass(frozen=True, slots=True)
class SmsAnswer:
    """``acted``: the node did what the SMS asked. ``reply``: the text to send
    back, in the person's language ("" when nobody should be answered: an
    unknown number). ``reason``: one line of English for the operator, never
    the text or the PIN."""

    acted: bool
    reply: str
    reason: str = ""
    kind: str = ""


class SmsDesk:
    def __init__(self, host: AlertHost) -> None:
        self.s = host

    def receive(self, sender: str, text: str, message_id: str = "", sent_at: int = 0) -> SmsAnswer:
        now = self.s.clock()
        try:
            number = sms.phone_number(sender)
        except sms.SmsRefused as exc:
            return self._refused("", exc.message)
        people = self.s.store.people_by_phone(number)
        if not people:
            return self._refused(number, "unknown number")
        person = people[0]
        t = translations(person.lang or "en").gettext
        if self._replayed(number, text, message_id, now):
            return self._refused(number, "replayed message", reply="")
        try:
            reply = sms.parse(text)
        except sms.SmsRefused as exc:
            return self._refused(number, exc.message, reply=t(sms.NOT_UNDERSTOOD))
        if reply.kind == "ack":
            return self._acknowledge(number, people, reply.code, t)
        return self._field(number, person, reply, sent_at or now, message_id, t)

    # -- what a reply does ----------------------------------------------------------------
    def _acknowledge(self, number: str, people: list[PersonRow], code: str, t: _Gettext) -> SmsAnswer:
        responder = next((p for p in people if p.kind == "responder"), None)
        if responder is None:
            return self._refused(number, "ACK is for responders; this number is a field person's",
                                 reply=t(sms.NOT_UNDERSTOOD))
        alert_hex = sms.resolve(code, self.s.store.open_escalations())
        row = self.s.store.get(bytes.fromhex(alert_hex)) if alert_hex else None
        if row is None:
            return self._refused(number, "wrong code: no open incident has it", reply=t(sms.NOT_UNDERSTOOD))
        try:
            incidents.acknowledge(self.s, row, {"by": responder.name, "note": "SMS"})
        except Refused as exc:
            return self._refused(number, exc.message, reply=t(sms.NOT_UNDERSTOOD))
        log.info("sms from %s: acknowledged incident %s", _tail(number), row.id.hex()[:12])
        return SmsAnswer(True, t(sms.ACKNOWLEDGED) % {"code": code.upper()}, kind="ack")

    def _field(
        self, number: str, person: PersonRow, reply: sms.Reply, at: int, message_id: str, t: _Gettext
    ) -> SmsAnswer:
        field = self.s.desk.field
        holder = field.holder_by_phone(number)
        if holder is None:
            return self._refused(number, f"{person.name} has no check-in running and no standing link",
                                 reply=t(sms.ENDED))
        if reply.code and self._locked(number):
            return self._refused(number, "too many wrong PINs from this number; try again in an hour",
                                 reply=t(sms.WRONG_PIN))
        pin = reply.code or None
        if reply.kind == "ok":
            answer = field.check_in(holder, pin, at)
        else:
            answer = field.sos(holder, pin, "", None, at)
        if answer.outcome == "wrong-pin" and pin:  # a bare OK where a PIN is needed is no guess
            self._count_wrong(number)
        return self._said(number, holder, answer, t)

    def _said(self, number: str, holder: Holder, answer: FieldAnswer, t: _Gettext) -> SmsAnswer:
        """The same words for the normal and the duress PIN: the answer carries no trace of which."""
        zone = clock_text.zone_or("", self.s.desk.zone)
        when = clock_text.when(answer.at, zone)
        if answer.outcome == "checked-in":
            text = t(sms.CHECKED_IN) % {"time": when}
        elif answer.outcome == "help-asked":
            text = t(sms.HELP_ASKED) % {"time": when}
        elif answer.outcome in ("wrong-pin", "locked"):  # locked: the field desk's own wait after wrong PINs
            return self._refused(number, answer.reason, reply=t(sms.WRONG_PIN))
        else:
            return self._refused(number, answer.reason, reply=t(sms.ENDED))
        log.info("sms from %s: %s for %s", _tail(number), answer.outcome, holder.who)
        return SmsAnswer(True, text, kind=answer.outcome)

    # -- replays and PIN guessing ---------------------------------------------------------
    def _secret(self) -> bytes:
        """A key only this node has (from its X25519 secret), for the keyed hashes."""
        return hashlib.blake2b(self.s.identity.enc_secret, person=PERSON_SMS_KEY).digest()

    def _replayed(self, number: str, text: str, message_id: str, now: int) -> bool:
        key = sms.seen_key(self._secret(), number, text, message_id)
        seen = self.s.store.get_record("sms-seen", key)
        window = REPLAY_WINDOW_MS if message_id else REPEAT_WINDOW_MS
        if seen is not None and now - int(seen["at"]) < window:
            return True
        self.s.store.put_record("sms-seen", key, {"at": now}, now)
        return False

    def _tries_key(self, number: str) -> str:
        return hashlib.blake2b(number.encode(), key=self._secret(), digest_size=16).hexdigest()

    def _locked(self, number: str) -> bool:
        doc = self.s.store.get_record("sms-tries", self._tries_key(number))
        now = self.s.clock()
        recent = [at for at in (doc or {}).get("wrong", []) if now - at < WRONG_PIN_WINDOW_MS]
        return len(recent) >= MAX_WRONG_PINS

    def _count_wrong(self, number: str) -> None:
        key, now = self._tries_key(number), self.s.clock()
        doc = self.s.store.get_record("sms-tries", key) or {}
        recent = [at for at in doc.get("wrong", []) if now - at < WRONG_PIN_WINDOW_MS]
        self.s.store.put_record("sms-tries", key, {"wrong": [*recent, now][-MAX_WRONG_PINS:]}, now)

    def _refused(self, number: str, reason: str, reply: str = "") -> SmsAnswer:
        log.warning("sms from %s refused: %s", _tail(number) or "an invalid number", reason)
        return SmsAnswer(False, reply, reason)


def _tail(number: str) -> str:
    """A number as logs show it: its last three digits only."""
    return f"…{number[-3:]}" if number else ""
