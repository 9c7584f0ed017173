"""Escalation: an alert pages the on-call responder; silence pages the backup,
then everyone. A local acknowledgement (or the alert's cancellation) stops it.

The state machine's transitions are data (``TRANSITIONS``), so the docs diagram
comes from the code. Deadlines are wall-clock instants kept in the persisted
``Escalation`` record, not timers: after a restart the node loads the record and
ticks it with the current time; each step fires exactly once because the record
is persisted (action ``Persist``) *before* the page it announces is sent, and a
step is never re-entered. The desk (``node.response.desk``) writes each page
down as pending before that, and sends a pending page on the next start, so a
crash between persisting and paging delays that page instead of losing it; a
page cut off half-way is finished for the people not yet tried, and never
repeated for anyone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

DEFAULT_ACK_TIMEOUT_MS: Final = 5 * 60_000
DEFAULT_CHAIN: Final = ("on-call", "backup", "all")

# (state, event) -> next state. Events: "timeout", "ack", "cancel".
TRANSITIONS: Final[dict[tuple[str, str], str]] = {
    ("paging", "timeout"): "paging",  # next step of the chain; "exhausted" after the last
    ("paging", "ack"): "acknowledged",
    ("paging", "cancel"): "cancelled",
    ("exhausted", "ack"): "acknowledged",
    ("exhausted", "cancel"): "cancelled",
}


@dataclass(frozen=True, slots=True)
class Escalation:
    """Everything that must survive a restart, for one alert."""

    alert_id: str
    started: int
    step: int  # index into the chain of the last step paged
    deadline: int  # when the next step fires (Unix ms); 0 once nothing is pending
    state: str = "paging"
    acked_by: str = ""


@dataclass(frozen=True, slots=True)
class Page:
    alert_id: str
    targets: str  # a chain step: "on-call", "backup", "all"
    step: int


@dataclass(frozen=True, slots=True)
class Persist:
    escalation: Escalation


@dataclass(frozen=True, slots=True)
class Timeline:
    alert_id: str
    at: int
    text: str


Action = Page | Persist | Timeline


@dataclass(frozen=True, slots=True)
class Policy:
    chain: tuple[str, ...] = DEFAULT_CHAIN
    ack_timeout_ms: int = DEFAULT_ACK_TIMEOUT_MS

    def __post_init__(self) -> None:
        if not self.chain or any(step not in DEFAULT_CHAIN for step in self.chain):
            raise ValueError(f"an escalation chain is made of {', '.join(DEFAULT_CHAIN)}")
        if self.ack_timeout_ms <= 0:
            raise ValueError("ack_timeout must be positive")


def start(alert_id: str, now: int, policy: Policy = Policy()) -> tuple[Escalation, list[Action]]:
    esc = Escalation(alert_id, now, 0, now + policy.ack_timeout_ms)
    return esc, [
        Persist(esc),
        Page(alert_id, policy.chain[0], 0),
        _note(esc, now, f"paged {policy.chain[0]}"),
    ]


def tick(esc: Escalation, now: int, policy: Policy = Policy()) -> tuple[Escalation, list[Action]]:
    """Fire every step whose deadline has passed, each exactly once."""
    actions: list[Action] = []
    while esc.state == "paging" and esc.deadline and esc.deadline <= now:
        fired_at = esc.deadline
        if esc.step + 1 >= len(policy.chain):
            esc = replace(esc, state="exhausted", deadline=0)
            actions += [Persist(esc), _note(esc, fired_at, "nobody acknowledged after the whole chain")]
            break
        step = esc.step + 1
        esc = replace(esc, step=step, deadline=fired_at + policy.ack_timeout_ms)
        target = policy.chain[step]
        actions += [
            Persist(esc),
            Page(esc.alert_id, target, step),
            _note(esc, fired_at, f"no acknowledgement in {duration_text(policy.ack_timeout_ms)}: paged {target}"),
        ]
    return esc, actions


def duration_text(ms: int) -> str:
    """``90 s``, ``5 min``, ``1 min 30 s``, ``2 h``: an ack timeout as people say it."""
    seconds = -(-ms // 1000)  # never "0 s" for a positive timeout
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if seconds < 120 and secs:
        return f"{seconds} s"
    parts = [f"{hours} h" if hours else "", f"{minutes} min" if minutes else "", f"{secs} s" if secs else ""]
    return " ".join(p for p in parts if p)


def acknowledge(esc: Escalation, now: int, by: str) -> tuple[Escalation, list[Action]]:
    return _finish(esc, now, "ack", f"acknowledged by {by}", acked_by=by)


def cancel(esc: Escalation, now: int) -> tuple[Escalation, list[Action]]:
    return _finish(esc, now, "cancel", "alert cancelled: escalation stopped")


def _finish(
    esc: Escalation, now: int, event: str, text: str, acked_by: str = ""
) -> tuple[Escalation, list[Action]]:
    target = TRANSITIONS.get((esc.state, event))
    if target is None:  # already final: nothing changes, nothing is paged
        return esc, []
    done = replace(esc, state=target, deadline=0, acked_by=acked_by or esc.acked_by)
    return done, [Persist(done), _note(done, now, text)]


def _note(esc: Escalation, at: int, text: str) -> Timeline:
    return Timeline(esc.alert_id, at, text)
