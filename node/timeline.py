"""The incident timeline: one history of an alert, oldest first.

An alert's detail (``incidents.alert_detail``) keeps its parts apart: the
envelopes that answer it (updates, cancels, acknowledgements, from any node)
and this node's own notes (escalation steps, debriefs). People need them
interleaved by time, so that a debrief written after the cancel reads after the
cancel. The CLI (``amparo alert show``) and the dashboard both print this
list; neither orders anything itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The kinds of step, in the order they sort when two share a millisecond.
KINDS = ("sent", "update", "cancel", "ack", "escalation", "debrief")


@dataclass(frozen=True)
class Step:
    at: int  # Unix ms
    kind: str  # one of KINDS (a note of an unknown kind keeps its own name)
    who: str  # organization or responder, "" when unknown
    text: str  # headline of an update, reason, note text
    state: str = ""  # acknowledgement state: responding, seen, unable
    message: str = ""  # a step the node wrote itself: the catalog message ``text`` was made from …
    params: dict[str, str] = field(default_factory=dict)  # … and its fields (node.web.wording)

    def to_json(self) -> dict[str, Any]:
        said = {"message": self.message, "params": self.params} if self.message else {}
        return {
            "at": self.at,
            "kind": self.kind,
            "who": self.who,
            "text": self.text,
            "state": self.state,
        } | said


def history(detail: dict[str, Any]) -> list[Step]:
    """Every step of one alert's incident, ordered by time (ties: KINDS order,
    then the order the node holds them in)."""
    sent = detail.get("sent_headline") or detail.get("headline") or ""  # the detail shows the current state
    steps = [Step(int(detail.get("created") or 0), "sent", _who(detail), str(sent))]
    for t in detail.get("timeline", []):
        if t.get("type") == "ack":
            steps.append(
                Step(int(t["created"]), "ack", _who(t), str(t.get("note") or ""), str(t.get("state") or ""))
            )
        elif t.get("msg_type") == "cancel":
            steps.append(Step(int(t["created"]), "cancel", _who(t), _reason(t, detail)))
        else:
            steps.append(Step(int(t["created"]), "update", _who(t), str(t.get("headline") or "")))
    for n in detail.get("notes", []):
        message, params = str(n.get("message") or ""), n.get("params") or {}
        kind, author = str(n.get("kind") or "debrief"), str(n.get("author") or "")
        steps.append(Step(int(n["at"]), kind, author, str(n["text"]), message=message, params=dict(params)))
    rank = {k: i for i, k in enumerate(KINDS)}
    return sorted(steps, key=lambda s: (s.at, rank.get(s.kind, len(KINDS))))


def _reason(cancel: dict[str, Any], alert: dict[str, Any]) -> str:
    """A cancel carries its reason as its description (``incidents.cancel_alert``);
    without one it repeats the alert's, and the headline says more."""
    reason = str(cancel.get("description") or "")
    return reason if reason and reason != alert.get("description") else str(cancel.get("headline") or "")


def _who(doc: dict[str, Any]) -> str:
    return str(doc.get("author_name") or doc.get("author_fingerprint") or "")
