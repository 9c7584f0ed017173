"""The all-clear: the responders this node paged about an alert hear of its
cancel, and of each update, on their own channels and in their own language.

Whoever a page reached (``PageRow.reached``, over every step and re-paging
round) is told once per cancel or update. Each follow-up has a record (kind
``all-clear``, keyed by the follow-up's envelope id), written before anyone is
told, like a page's: ``pending`` → ``sending`` (each name added to ``tried``
just before their channels are called) → ``sent`` or ``unreachable``. So the
same envelope arriving twice finds its record and tells nobody again, and a
node that stops half-way finishes with the people not yet tried after its
restart: the person being told when it stopped is not told again (they may
have been reached), and the timeline says so.

A follow-up is told under the alert's paging lock (``lock``): a page still
being sent when the cancel arrives finishes first, so whoever it reaches hears
the all-clear too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, Final

from node.all_clear import FollowUp, describe, notice_text, sender_name
from node.config import public_base
from node.host import Host

log = logging.getLogger("amparo.response")
KIND = "all-clear"
UNFINISHED = ("pending", "sending")
# The timeline's words for a follow-up, as catalog messages and their fields
# (``ResponseDesk.note``): the dashboard shows them in the reader's language.
# ``fields`` is a list of field names joined by ", " (catalog words), ``reason``
# a cancel's own text (shown translated when the node generated it), ``people``
# names or ``NOBODY``.
CANCEL_TOLD: Final = "all-clear: cancelled by %(sender)s: %(reason)s — told: %(people)s"
CANCEL_TOLD_NO_REASON: Final = "all-clear: cancelled by %(sender)s — told: %(people)s"
UPDATE_TOLD: Final = "update by %(sender)s (%(fields)s changed) — told: %(people)s"
UPDATE_TOLD_NOTHING: Final = "update by %(sender)s — told: %(people)s"
STOPPED_TELLING: Final = (
    "%(kind)s: the node stopped while telling %(person)s; not told again (they may have been reached)"
)
NOBODY: Final = "nobody reachable"
MESSAGES: Final = (CANCEL_TOLD, CANCEL_TOLD_NO_REASON, UPDATE_TOLD, UPDATE_TOLD_NOTHING, STOPPED_TELLING)

Notify = Callable[[list[str], str, str], bool]  # a person's channels, title, body → reached
Note = Callable[[str, str, dict[str, str]], None]  # alert id, catalog message, its fields
Lock = Callable[[str], AbstractAsyncContextManager[Any]]  # the alert's paging lock


class AllClear:
    def __init__(self, host: Host, *, notify: Notify, note: Note, lock: Lock) -> None:
        self.s = host
        self.notify, self.note, self.lock = notify, note, lock
        self._busy: set[str] = set()  # follow-ups this process is telling

    def on_follow_up(self, follow: FollowUp) -> None:
        """A cancel or update of an alert this node paged people about: record it
        pending and tell them in the background; a known follow-up is left alone."""
        if not self.s.store.pages_of(follow.incident_hex):
            return
        key = follow.row.id.hex()
        if self.s.store.get_record(KIND, key) is not None:
            return
        doc = {
            "alert": follow.incident_hex,
            "kind": follow.kind,
            "state": "pending",
            "tried": [],
            "reached": [],
        }
        self.s.store.put_record(KIND, key, doc, self.s.clock())
        self.s.spawn(self._tell(key))

    def resume(self) -> None:
        """Once after a start: finish what a previous run recorded but did not finish."""
        for key, doc in self.s.store.list_records(KIND):
            if doc["state"] not in UNFINISHED or key in self._busy:
                continue
            if doc["state"] == "sending" and doc["tried"]:
                kind = "all-clear" if doc["kind"] == "cancel" else "update"
                self.note(doc["alert"], STOPPED_TELLING, {"kind": kind, "person": doc["tried"][-1]})
            self.s.spawn(self._tell(key))

    def told(self, alert_hex: str) -> list[dict[str, Any]]:
        """Who heard of each follow-up of ``alert_hex`` (the timeline says it in words)."""
        return [{"id": k} | d for k, d in self.s.store.list_records(KIND) if d["alert"] == alert_hex]

    async def _tell(self, key: str) -> None:
        if key in self._busy:
            return
        self._busy.add(key)
        try:
            doc = self.s.store.get_record(KIND, key)
            if doc is not None and doc["state"] in UNFINISHED:
                async with self.lock(doc["alert"]):
                    await self._tell_everyone(key, doc)
        finally:
            self._busy.discard(key)

    async def _tell_everyone(self, key: str, doc: dict[str, Any]) -> None:
        row = self.s.store.get(bytes.fromhex(key))
        follow = describe(self.s, row) if row is not None else None
        if follow is None:
            self._save(key, doc | {"state": "skipped"})
            return
        sender = sender_name(self.s, follow.row.author)
        texts = _Texts(follow, f"{public_base(self.s.config)}/ui/alerts/{follow.incident_hex}", sender)
        doc = self._save(key, doc | {"state": "sending"})
        for person in self._paged(follow.incident_hex):
            if person in doc["tried"]:
                continue  # told (or being told) before a restart: never twice
            doc = self._save(key, doc | {"tried": [*doc["tried"], person]})  # before the attempt
            responder = self.s.store.get_responder(person)
            if responder is None or not responder.channels:
                continue
            title, body = texts.get(responder.lang)
            if await asyncio.to_thread(self.notify, list(responder.channels), title, body):
                doc = self._save(key, doc | {"reached": [*doc["reached"], person]})
        self._save(key, doc | {"state": "sent" if doc["reached"] else "unreachable"})
        self.note(follow.incident_hex, *timeline_step(follow, sender, doc["reached"]))
        if not doc["reached"]:
            log.warning(
                "the %s of alert %s reached no paged responder", follow.kind, follow.incident_hex[:12]
            )

    def _paged(self, alert_hex: str) -> list[str]:
        """Everyone a page about the alert reached, in the order they were reached."""
        return list(dict.fromkeys(p for page in self.s.store.pages_of(alert_hex) for p in page.reached))

    def _save(self, key: str, doc: dict[str, Any]) -> dict[str, Any]:
        self.s.store.put_record(KIND, key, doc, self.s.clock())
        return doc


class _Texts:
    """One follow-up's text per language, rendered once for everyone who reads it."""

    def __init__(self, follow: FollowUp, link: str, sender: str) -> None:
        self._follow, self._link, self._sender = follow, link, sender
        self._by_lang: dict[str, tuple[str, str]] = {}

    def get(self, lang: str) -> tuple[str, str]:
        if lang not in self._by_lang:
            self._by_lang[lang] = notice_text(self._follow, self._link, sender=self._sender, lang=lang)
        return self._by_lang[lang]


def timeline_step(follow: FollowUp, sender: str, reached: list[str]) -> tuple[str, dict[str, str]]:
    """The timeline's line for a follow-up told to ``reached``: a catalog message
    and its fields, so each reader sees it in their own language."""
    people = ", ".join(reached) or NOBODY
    if follow.kind == "cancel":
        if not follow.reason.strip():
            return CANCEL_TOLD_NO_REASON, {"sender": sender, "people": people}
        return CANCEL_TOLD, {"sender": sender, "reason": follow.reason, "people": people}
    if not follow.changed:
        return UPDATE_TOLD_NOTHING, {"sender": sender, "people": people}
    return UPDATE_TOLD, {"sender": sender, "fields": ", ".join(follow.changed), "people": people}
