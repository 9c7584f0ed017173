"""Field safety (SPEC §6, issue 16): what a person in the field does, in one
place for every way they reach the node (the phone page, SMS).

A request comes by a *holder*: a check-in plan's link, or a person's standing
SOS/check-in link (``amparo sos link PERSON``). ``FieldDesk.check_in`` and
``FieldDesk.sos`` take the holder, the PIN typed (if any) and the time of the
tap, and answer a ``FieldAnswer``. The answer never says whether the duress PIN
was used: a check-in with the duress PIN is a normal check-in in every respect
the person (or whoever stands beside them) can see, and on top of it one silent
severe alert, sealed to the holder's recipients, is raised in the background
a moment later, so the time of the answer does not depend on it.

Times: the recorded time is the tap's (a phone that was offline sends it late),
bounded to the holder's window (not before the plan began or before its last
check-in; not after now), so a hostile page cannot backdate a check-in.

A tap carries an id (``tap_id``): the same tap sent twice (a retry after a lost
answer) is answered as the first time and acts once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final, Literal

import nacl.exceptions
import nacl.public

from node import catalogs
from node.alerts import make_envelope
from node.host import Host
from node.response import pins
from node.response.checkin_desk import (
    DURESS_HEADLINE,
    DURESS_INSTRUCTION,
    MISSED_CHECKIN_TTL_MS,
    SOS_DURESS_HEADLINE,
    SOS_HEADLINE,
    SOS_INSTRUCTION,
    CheckinDesk,
    token_hash,
)
from node.response.checkin_plan import CheckinError
from node.store import LinkRow, PersonRow, PlanRow
from protocol import Alert, Area, ProtocolError, regions

Outcome = Literal["checked-in", "help-asked", "wrong-pin", "locked", "ended"]
MAX_NOTE_CHARS: Final = 2000
MAX_ACCURACY_M: Final = 50_000  # a location vaguer than this says nothing; it is sent as 50 km
PHONE_DIGITS: Final = range(8, 16)  # E.164: + and up to 15 digits
TAP_ID_CHARS: Final = 64
# The silent duress alert leaves this long after the answer (seconds, uniform):
# the answer is written before the alert's work starts, whichever PIN it was.
DURESS_DELAY_S: Final = (0.2, 1.0)
MAX_WRONG_PINS: Final = 5  # in a row; then check-ins wait LOCK_MS
LOCK_MS: Final = 15 * 60_000


class FieldError(CheckinError):
    """A field request that cannot work; the message names what is wrong."""


@dataclass(frozen=True, slots=True)
class Holder:
    """Whose link a request came by: a check-in plan, or a person's standing link."""

    kind: Literal["plan", "link"]
    key: str  # the plan's id, or the person's name
    who: str
    region: str
    recipients: tuple[str, ...]  # peers' keys (hex) an alert is sealed to; none: this node alone
    pin: str  # keyed hashes (node.response.pins), "" when none
    duress_pin: str
    lang: str  # the page's language; "": the browser's
    state: str  # a plan's (active, missed, stopped); "standing" for a link
    next_deadline: int  # 0 for a link
    window_start: int  # no tap is dated before this
    last_ok: int
    sos_at: int

    @property
    def asks_pin(self) -> bool:
        return bool(self.pin)


@dataclass(frozen=True, slots=True)
class FieldAnswer:
    """What the person is told. ``at`` is the time recorded (the tap's, bounded);
    ``holder`` is the holder after the request. ``reason`` says in one line of
    English why a request was refused (never the PIN); the page says it from
    the catalog instead. Identical for a normal and a duress PIN."""

    outcome: Outcome
    at: int
    holder: Holder
    reason: str = ""

    @property
    def acted(self) -> bool:
        return self.outcome in ("checked-in", "help-asked")


REASONS: Final[dict[str, str]] = {
    "wrong-pin": "wrong PIN",
    "locked": "too many wrong PINs: wait 15 minutes (an SOS still goes through)",
    "ended": "this check-in has ended",
}


class FieldDesk:
    def __init__(
        self,
        host: Host,
        checkins: CheckinDesk,
        *,
        escalate: Callable[[str], None],
        rand: random.Random | None = None,
    ) -> None:
        self.s = host
        self.checkins = checkins
        self.escalate = escalate  # starts the local escalation of an alert this node raised (hex id)
        self.rand = rand or random.SystemRandom()
        self.duress_delay_s = DURESS_DELAY_S
        self._wrong: dict[
            tuple[str, str], tuple[int, int]
        ] = {}  # (kind, key) -> wrong PINs in a row, last at

    # -- who asks -------------------------------------------------------------------------
    def holder_by_token(self, token: str) -> Holder | None:
        """The holder of a link's token (a plan's first, then a standing link's),
        looked up by the token's hash."""
        hashed = token_hash(token)
        plan = self.s.store.plan_by_token(hashed)
        if plan is not None:
            return self._plan_holder(plan)
        link = self.s.store.link_by_token(hashed)
        return None if link is None else self._link_holder(link)

    def holder_by_phone(self, phone: str) -> Holder | None:
        """Whom an SMS from ``phone`` speaks for: the newest running check-in
        (active or missed) of a person with that number, else their standing link.
        None when the number is nobody's, or they have neither."""
        people = self.s.store.people_by_phone(phone)
        names = {p.name for p in people}
        running = [
            row for row in self.s.store.list_plans() if row.who in names and row.state in ("active", "missed")
        ]
        if running:
            return self._plan_holder(running[-1])
        for person in people:
            link = self.s.store.get_link(person.name)
            if link is not None:
                return self._link_holder(link)
        return None

    def refresh(self, holder: Holder) -> Holder:
        if holder.kind == "plan":
            row = self.s.store.get_plan(holder.key)
            return holder if row is None else self._plan_holder(row)
        link = self.s.store.get_link(holder.key)
        return holder if link is None else self._link_holder(link)

    def _plan_holder(self, row: PlanRow) -> Holder:
        person = self.s.store.get_person(row.who)
        lang = row.lang or (person.lang if person is not None else "")
        start = row.started or self.s.clock()  # plans from before 0009: no backdating at all
        return Holder(
            "plan",
            row.id,
            row.who,
            row.region,
            tuple(row.recipients),
            row.pin,
            row.duress_pin,
            lang,
            row.state,
            row.next_deadline,
            max(start, row.last_ok),
            row.last_ok,
            row.sos_at,
        )

    def _link_holder(self, link: LinkRow) -> Holder:
        person = self.s.store.get_person(link.person)
        lang = person.lang if person is not None else ""
        return Holder(
            "link",
            link.person,
            link.person,
            link.region,
            tuple(link.recipients),
            link.pin,
            link.duress_pin,
            lang,
            "standing",
            0,
            max(link.created, link.last_ok),
            link.last_ok,
            link.sos_at,
        )

    # -- what they do ---------------------------------------------------------------------
    def check_in(self, holder: Holder, pin: str | None, tapped_at_ms: int, tap_id: str = "") -> FieldAnswer:
        """The person is safe: the button, ``OK`` by SMS, or a PIN.

        With the holder's PIN (or no PIN when it has none) the plan is checked in
        at the tap's time (a standing link records it). With its duress PIN: the
        very same, and in the background one silent severe alert, sealed to the
        holder's recipients and marked duress, escalated like any alert. A wrong
        or missing PIN (when one is set) is refused as ``wrong-pin``; a stopped
        plan as ``ended``. A ``tap_id`` seen before answers as the first time and
        does nothing more."""
        now = self.s.clock()
        match = self._match(holder, pin)
        seen = self._seen(holder, tap_id)
        if holder.state == "stopped":
            return self._refused(holder, "ended", now)
        if self._locked(holder, now):
            return self._refused(holder, "locked", now)
        if match == "wrong":
            self._count_wrong(holder, now)
            return self._refused(holder, "wrong-pin", now)
        self._wrong.pop((holder.kind, holder.key), None)
        if seen is not None:
            return seen
        at = self.bounded(holder, tapped_at_ms, now)
        if holder.kind == "plan":
            self.checkins.ok(holder.key, at)
        else:
            self.s.store.mark_link(holder.key, last_ok=at)
        answer = FieldAnswer("checked-in", at, self.refresh(holder))
        key = self._remember(holder, tap_id, answer, duress=match == "duress")
        self.s.spawn(self._duty_later(key))  # whichever PIN: the same record, the same task
        return answer

    def sos(
        self,
        holder: Holder,
        pin: str | None,
        note: str,
        location: tuple[int, int] | None,
        tapped_at_ms: int,
        *,
        accuracy_m: int = 0,
        tap_id: str = "",
    ) -> FieldAnswer:
        """The person asks for help: a severe alert at once, restricted and sealed
        to the holder's recipients (this node alone when it has none), escalated
        like any alert. ``note`` and ``location`` (integer micro-degrees, with
        ``accuracy_m`` as the circle's radius) travel only inside the sealed body.

        An SOS needs no PIN, and a wrong one never stops it (a false alarm costs
        less than a missed call for help); the duress PIN marks it duress. It
        works on a stopped plan's page too. ``tap_id`` as for ``check_in``."""
        now = self.s.clock()
        match = self._match(holder, pin) if pin else "pin"
        seen = self._seen(holder, tap_id)
        if seen is not None:
            return seen
        circle = _circle(location, accuracy_m)
        at = self.bounded(holder, tapped_at_ms, now)
        headline = SOS_DURESS_HEADLINE if match == "duress" else SOS_HEADLINE
        self._raise(
            holder.who,
            holder.region,
            list(holder.recipients),
            headline,
            SOS_INSTRUCTION,
            "other",
            note=note[:MAX_NOTE_CHARS],
            circle=circle,
        )
        if holder.kind == "plan":
            self.checkins.mark_sos(holder.key, at)
        else:
            self.s.store.mark_link(holder.key, sos_at=at)
        answer = FieldAnswer("help-asked", at, self.refresh(holder))
        self._remember(holder, tap_id, answer)
        return answer

    def bounded(self, holder: Holder, tapped_at_ms: int, now: int) -> int:
        """The tap's time within the holder's window: not before it began (or its
        last check-in), not after now."""
        return min(max(tapped_at_ms, holder.window_start), now)

    def _match(self, holder: Holder, pin: str | None) -> pins.Match:
        """Which PIN this is. Both hashes are checked every time (same work)."""
        found = self.checkins.pin_key().which(pin or "", holder.pin, holder.duress_pin)
        return found if holder.asks_pin else "pin"

    def _refused(self, holder: Holder, outcome: Outcome, now: int) -> FieldAnswer:
        return FieldAnswer(outcome, now, holder, REASONS[outcome])

    def _seen(self, holder: Holder, tap_id: str) -> FieldAnswer | None:
        doc = self.s.store.get_record("field-tap", _tap_key(holder, tap_id)) if tap_id else None
        if not doc:
            return None
        return FieldAnswer(doc["outcome"], int(doc["at"]), self.refresh(holder))

    def _locked(self, holder: Holder, now: int) -> bool:
        """Too many wrong PINs in a row: check-ins wait (an SOS never does). Whoever
        tries every PIN on a taken phone stops the alarm of a missed check-in
        neither by luck nor by patience."""
        wrong, last = self._wrong.get((holder.kind, holder.key), (0, 0))
        return wrong >= MAX_WRONG_PINS and now - last < LOCK_MS

    def _count_wrong(self, holder: Holder, now: int) -> None:
        wrong, _ = self._wrong.get((holder.kind, holder.key), (0, 0))
        self._wrong[holder.kind, holder.key] = (wrong + 1, now)

    def _remember(
        self, holder: Holder, tap_id: str, answer: FieldAnswer, *, duress: bool | None = None
    ) -> str:
        """Record the tap (to answer a retry the same); for a check-in (``duress``
        given), also what is still to do, sealed to this node: raise the duress
        alert, or nothing. Both are written, of one length, whichever PIN it was;
        the task that reads it back (``_duty_later``, or ``resume`` after a restart)
        makes the duress alert survive a crash between the answer and the alert."""
        key = _tap_key(holder, tap_id or secrets.token_hex(16))
        doc: dict[str, object] = {"outcome": answer.outcome, "at": answer.at}
        if duress is not None:
            duty = {
                "d": int(duress),
                "who": holder.who,
                "region": holder.region,
                "to": list(holder.recipients),
            }
            doc["duty"] = self._seal(json.dumps(duty, sort_keys=True))
        if tap_id or duress is not None:
            self.s.store.put_record("field-tap", key, doc, self.s.clock())
        return key

    async def _duty_later(self, key: str) -> None:
        await asyncio.sleep(self.rand.uniform(*self.duress_delay_s))
        self.settle(key)

    def settle(self, key: str) -> None:
        """Carry out a recorded tap's duty (the duress alert, or nothing), then mark
        it done. A crash in between raises the alert twice rather than never."""
        doc = self.s.store.get_record("field-tap", key)
        if not doc or "duty" not in doc:
            return
        opened = self._open(str(doc["duty"]))
        duty = json.loads(opened) if opened else {}
        if duty.get("d"):
            self._raise(
                duty["who"], duty["region"], duty["to"], DURESS_HEADLINE, DURESS_INSTRUCTION, "threat"
            )
        self.s.store.put_record(
            "field-tap", key, {k: v for k, v in doc.items() if k != "duty"}, self.s.clock()
        )

    def resume(self) -> None:
        """Once after a start: the duties a stopped node had not carried out."""
        for key, doc in self.s.store.list_records("field-tap"):
            if "duty" in doc:
                self.settle(key)

    def _raise(
        self,
        who: str,
        region: str,
        to: list[str],
        headline: str,
        instruction: str,
        event: str,
        *,
        note: str = "",
        circle: tuple[int, int, int] | None = None,
    ) -> str:
        """A severe restricted alert about ``who``, sealed to ``to`` (peers' keys, hex;
        none: this node alone)."""
        peers = [self.s.store.get_peer(bytes.fromhex(k)) for k in to]
        recipients = [p.enc_key for p in peers if p is not None] or [self.s.identity.enc_public]
        where = f"{circle[0] / 1e6:.6f}, {circle[1] / 1e6:.6f} ±{circle[2]} m" if circle else ""
        alert = Alert(
            headline=(headline % {"who": who})[:160],
            areas=(Area(region or "*", desc=where, circle=circle),),
            severity="severe",
            event=event,
            urgency="immediate",
            certainty="likely",
            scope="restricted",
            description=note,
            instruction=instruction,
        )
        env = make_envelope(
            self.s.identity, alert, now=self.s.clock(), ttl_ms=MISSED_CHECKIN_TTL_MS, recipients=recipients
        )
        if self.s.author(env) is not None:
            self.escalate(env.id.hex())
        return env.id.hex()

    # -- people and standing links ----------------------------------------------------------
    def add_person(self, name: str, phone: str, lang: str = "en") -> PersonRow:
        name = name.strip()
        if not name or len(name) > 64:
            raise FieldError("name: 1 to 64 characters")
        check_phone(phone)
        if lang not in catalogs.available():
            raise FieldError(f"lang: pages are written in {' or '.join(catalogs.available())}, not {lang!r}")
        if self.s.store.get_responder(name) is not None:
            raise FieldError(f"{name!r} is a responder: give them a phone with amparo responder add --phone")
        row = PersonRow(name, phone, lang)
        self.s.store.put_person(row, self.s.clock())
        return row

    def remove_person(self, name: str) -> None:
        if not self.s.store.delete_person(name):
            raise FieldError(f"no field person called {name!r}", status=404, code="not-found")
        self.s.store.delete_link(name)

    def link(
        self,
        person: str,
        *,
        pin: str = "",
        duress_pin: str = "",
        to: list[str] | None = None,
        region: str | None = None,
    ) -> tuple[LinkRow, str]:
        """The person's standing link and its token: the one they have, else a new
        one (PINs, recipients and region given replace the link's)."""
        if self.s.store.get_person(person) is None:
            raise FieldError(
                f"no field person or responder called {person!r} (amparo person add)",
                status=404,
                code="not-found",
            )
        pins.check(pin, duress_pin)
        try:
            regions.check(region or "*")
        except ProtocolError as exc:
            raise FieldError(exc.message) from None
        recipients = [self._peer_key(name) for name in to or []]
        existing = self.s.store.get_link(person)
        token = self._open(existing.token_sealed) if existing is not None else None
        if existing is None or token is None:
            token = secrets.token_urlsafe(24)
            existing = LinkRow(person, token_hash(token), self._seal(token), "*", created=self.s.clock())
        key = self.checkins.pin_key()
        row = replace(
            existing,
            region=region or existing.region,
            recipients=recipients or existing.recipients,
            pin=key.hash(pin) if pin else existing.pin,
            duress_pin=key.hash(duress_pin) if pin else existing.duress_pin,
        )
        self.s.store.put_link(row)
        return row, token

    def revoke(self, person: str) -> None:
        if not self.s.store.delete_link(person):
            raise FieldError(f"{person!r} has no standing link", status=404, code="not-found")

    def _peer_key(self, name: str) -> str:
        peer = self.s.store.find_peer(name)
        if peer is None:
            raise FieldError(f"to: no peer called {name!r}")
        return peer.key.hex()

    def _seal(self, token: str) -> str:
        box = nacl.public.SealedBox(nacl.public.PublicKey(self.s.identity.enc_public))
        return bytes(box.encrypt(token.encode())).hex()

    def _open(self, sealed: str) -> str | None:
        """None when sealed to a key this node no longer has (after a rotation)."""
        try:
            return bytes(
                nacl.public.SealedBox(self.s.identity.enc_private).decrypt(bytes.fromhex(sealed))
            ).decode()
        except (nacl.exceptions.CryptoError, ValueError):
            return None


def check_phone(phone: str) -> None:
    """E.164: + and 8 to 15 digits."""
    digits = phone[1:]
    if not (phone.startswith("+") and digits.isdigit() and digits.isascii() and len(digits) in PHONE_DIGITS):
        raise FieldError(f"phone: an E.164 number such as +525512345678, not {phone!r}")


def _circle(location: tuple[int, int] | None, accuracy_m: int) -> tuple[int, int, int] | None:
    if location is None:
        return None
    lat, lon = location
    if not (-90_000_000 <= lat <= 90_000_000 and -180_000_000 <= lon <= 180_000_000):
        raise FieldError("location: latitude -90..90 and longitude -180..180 degrees")
    return lat, lon, min(max(int(accuracy_m), 1), MAX_ACCURACY_M)


def _tap_key(holder: Holder, tap_id: str) -> str:
    """A record key of fixed length, whatever the person's name and the tap's id."""
    return hashlib.sha256(f"{holder.kind}\0{holder.key}\0{tap_id[:TAP_ID_CHARS]}".encode()).hexdigest()
