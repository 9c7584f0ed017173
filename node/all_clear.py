"""What a cancel or an update says to the people who heard the alert.

Responders who were paged (``node.response.all_clear``), allies' webhooks and
Apprise channels (``node.allies.delivery``) and the live stream (``amparo
watch``, the dashboard) all describe a follow-up the same way: which incident it
belongs to, who sent it, and for a cancel why, for an update what changed since
the state people last heard. Only the incident's own author (any key of its
rotation family) can cancel or update it: a follow-up signed by anyone else is
not described at all, so nobody is told an alert was cancelled by a stranger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from node.alerts import CURRENT, current_state, phone_text
from node.catalogs import translations
from node.host import Host
from node.store import StoredEnvelope
from protocol import Alert, fingerprint

FOLLOW_UPS = ("update", "cancel")
# What a follow-up says first; marked for the catalogs in node.web.labels.ALL_CLEAR.
CANCELLED_BY = "Cancelled by %(sender)s: %(reason)s"
CANCELLED_BY_NO_REASON = "Cancelled by %(sender)s."
UPDATED_BY = "Updated by %(sender)s: %(changes)s"
UPDATED_BY_NOTHING = "Updated by %(sender)s."
CHANGED = "%(field)s changed"
# The words for what an update changed (CURRENT's fields; areas read as regions).
FIELD_WORDS = {
    "headline": "headline",
    "severity": "severity",
    "event": "event",
    "urgency": "urgency",
    "certainty": "certainty",
    "description": "description",
    "instruction": "instruction",
    "contact": "contact",
    "language": "language",
    "areas": "regions",
}
_SHOWN_WHOLE = ("headline", "severity", "event", "urgency", "certainty", "areas")  # short: before → after
_VALUE_WORDS = ("severity", "urgency", "certainty")  # values that are catalog words


@dataclass(frozen=True)
class FollowUp:
    """A readable update or cancel by the incident's author."""

    row: StoredEnvelope  # the update or cancel
    incident: StoredEnvelope  # the original alert
    kind: str  # "update" or "cancel"
    reason: str  # a cancel's description ("" for an update)
    before: Alert  # the incident as people last heard it
    after: Alert  # and as it is now (a cancel changes nothing shown)
    changed: dict[str, list[Any]]

    @property
    def incident_hex(self) -> str:
        return self.incident.id.hex()


def describe(host: Host, row: StoredEnvelope) -> FollowUp | None:
    """The follow-up ``row`` is, or None: not an update or cancel, not readable
    here, its incident unknown here, or not signed by the incident's author."""
    if row.type != "alert" or row.msg_type == "alert":  # an original (a sealed row's type is unknown here)
        return None
    body = host.open(row).body
    if not isinstance(body, Alert) or body.msg_type not in FOLLOW_UPS or not body.references:
        return None
    incident = host.store.get(body.references[0])
    original = host.open(incident).body if incident is not None and incident.type == "alert" else None
    if (
        incident is None
        or not isinstance(original, Alert)
        or not host.same_author(incident.author, row.author)
    ):
        return None
    earlier = _updates_before(host, incident, row)
    before = current_state(original, earlier)
    after = current_state(original, [*earlier, body]) if body.msg_type == "update" else before
    reason = body.description if body.msg_type == "cancel" else ""
    return FollowUp(row, incident, body.msg_type, reason, before, after, changed_fields(before, after))


def _updates_before(host: Host, incident: StoredEnvelope, row: StoredEnvelope) -> list[Alert]:
    """The incident's updates by its author made before ``row``, oldest first."""
    out = []
    for other in host.related(incident.id):
        if (other.created, other.id) >= (row.created, row.id) or not host.same_author(
            incident.author, other.author
        ):
            continue
        body = host.open(other).body
        if isinstance(body, Alert) and body.msg_type == "update":
            out.append(body)
    return out


def changed_fields(before: Alert, after: Alert) -> dict[str, list[Any]]:
    """What an update changed, as ``{field: [before, after]}`` (areas as region codes)."""
    out: dict[str, list[Any]] = {}
    for f in CURRENT:
        old, new = getattr(before, f), getattr(after, f)
        if old != new:
            out[f] = [[a.region for a in old], [a.region for a in new]] if f == "areas" else [old, new]
    return out


def sender_name(host: Host, author: bytes) -> str:
    """The sending organization as people know it: its name when this node knows
    one, else its key's fingerprint (what allies compare)."""
    key = host.author_of(author)
    names = host.author_names()
    return names.get(key) or names.get(author) or fingerprint(key)


def lead(follow: FollowUp, sender: str, lang: str = "en") -> str:
    """The first line: who cancelled and why, or who updated and what changed."""
    t = translations(lang).gettext
    if follow.kind == "cancel":
        if not follow.reason.strip():
            return t(CANCELLED_BY_NO_REASON) % {"sender": sender}
        return t(CANCELLED_BY) % {"sender": sender, "reason": follow.reason}
    if not follow.changed:
        return t(UPDATED_BY_NOTHING) % {"sender": sender}
    return t(UPDATED_BY) % {"sender": sender, "changes": changes_text(follow.changed, lang)}


def changes_text(changed: dict[str, list[Any]], lang: str = "en") -> str:
    """``headline: “A” → “B”; severity: severe → extreme; instruction changed``:
    short fields with both values, long texts by name only (the new instruction
    is on the ACTION line)."""
    t = translations(lang).gettext
    parts = []
    for f, (old, new) in changed.items():
        word = t(FIELD_WORDS[f])
        if f not in _SHOWN_WHOLE:
            parts.append(t(CHANGED) % {"field": word})
        elif f == "areas":
            parts.append(f"{word}: {', '.join(old)} → {', '.join(new)}")
        elif f in _VALUE_WORDS:
            parts.append(f"{word}: {t(old)} → {t(new)}")
        else:
            parts.append(f"{word}: “{old}” → “{new}”")
    return "; ".join(parts)


def notice_text(
    follow: FollowUp, link: str, *, sender: str, lang: str = "en", footer: Sequence[str] = ()
) -> tuple[str, str]:
    """(title, body) for a phone channel: the incident's current state titled
    ``CANCELLED:`` or ``UPDATE:``, who did it and why or what changed first, then
    the link (to the incident). A cancel asks for nothing: its action line is left out."""
    shown = replace(follow.after, msg_type=follow.kind, references=(follow.incident.id,))  # a drill stays one
    if follow.kind == "cancel":
        shown = replace(shown, instruction="")
    return phone_text(shown, link=link, footer=footer, lang=lang, lead=(lead(follow, sender, lang),))


def change_json(follow: FollowUp, sender: str) -> dict[str, Any]:
    """What a webhook and the stream carry beside the follow-up's own fields:
    who, why, what changed, in words, and the incident as it is now."""
    return {
        "kind": follow.kind,
        "incident": follow.incident_hex,
        "by": sender,
        "reason": follow.reason,
        "changed": follow.changed,
        "text": lead(follow, sender),
        "headline": follow.after.headline,
        "severity": follow.after.severity,
        "regions": [a.region for a in follow.after.areas],
    }
