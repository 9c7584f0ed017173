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

Once the chain is exhausted (nobody acknowledged within ``ack_timeout`` of its
last step), the whole chain is paged again every ``repage_every``, one page per
round (each person once), until an acknowledgement, a cancel or the alert's
expiry. The escalation keeps a deadline while it re-pages (the next round, or
the expiry if that comes first), so the tick, which asks only for due deadlines,
still finds it. A node that slept through several rounds pages one round, not
one per missed interval, and stays on the same grid of instants. Each round's
page is numbered ``step + round`` (``step`` stays the chain's last index), so a
restart resumes a round's page instead of repeating or forgetting it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, tzinfo
from typing import Final

from node import clock_text

DEFAULT_ACK_TIMEOUT_MS: Final = 5 * 60_000
DEFAULT_REPAGE_EVERY_MS: Final = 10 * 60_000
DEFAULT_CHAIN: Final = ("on-call", "backup", "all")
ROUND: Final = "chain"  # a re-paging round's targets: everyone in the chain, once each

# (state, event) -> next state. Events: "timeout", "ack", "cancel", "expire".
TRANSITIONS: Final[dict[tuple[str, str], str]] = {
    ("paging", "timeout"): "paging",  # next step of the chain; "exhausted" after the last
    ("paging", "ack"): "acknowledged",
    ("paging", "cancel"): "cancelled",
    ("paging", "expire"): "expired",
    ("exhausted", "timeout"): "exhausted",  # a re-paging round of the whole chain
    ("exhausted", "ack"): "acknowledged",
    ("exhausted", "cancel"): "cancelled",
    ("exhausted", "expire"): "expired",
}
OPEN: Final = frozenset(state for state, _ in TRANSITIONS)

# What the timeline says of each step (node.web.labels marks the same strings for
# translation; tests/web/test_catalogs.py checks that none is missing). ``step``
# is a chain step (``on-call``, ``backup``, ``all``), translated as a word too.
PAGED: Final = "paged %(step)s"
NO_ACK_PAGED: Final = "no acknowledgement in %(timeout)s: paged %(step)s"
EXHAUSTED: Final = "nobody acknowledged after the whole chain: paging it again every %(every)s"
QUIET_WAIT: Final = "quiet hours: re-paging waits until %(until)s (not severe or extreme)"
ROUND_PAGED: Final = "re-paging round %(round)s: no acknowledgement yet, paged the whole chain again"
EXPIRED: Final = "alert expired: escalation stopped"
ACKED: Final = "acknowledged by %(by)s"
CANCELLED: Final = "alert cancelled: escalation stopped"
MESSAGES: Final = (PAGED, NO_ACK_PAGED, EXHAUSTED, QUIET_WAIT, ROUND_PAGED, EXPIRED, ACKED, CANCELLED)


@dataclass(frozen=True, slots=True)
class Escalation:
    """Everything that must survive a restart, for one alert."""

    alert_id: str
    started: int
    step: int  # index into the chain of the last step paged
    deadline: int  # when the next step, round or the expiry is due (Unix ms); 0: none
    state: str = "paging"
    acked_by: str = ""
    round: int = 0  # re-paging rounds fired after the chain was exhausted
    expires: int = 0  # the alert's expiry (Unix ms): nothing is paged from then on; 0: never
    urgent: bool = True  # severe or extreme: quiet hours never hold its re-paging


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
    """A step for the incident timeline, kept as a catalog message and its
    fields so each reader sees it in their language (``node.web.wording``);
    ``text`` is the English the CLI and the API print."""

    alert_id: str
    at: int
    message: str  # one of MESSAGES: English with %(field)s placeholders, the catalog's msgid
    params: tuple[tuple[str, str], ...] = ()

    @property
    def text(self) -> str:
        return self.message % dict(self.params)


Action = Page | Persist | Timeline


@dataclass(frozen=True, slots=True)
class Policy:
    chain: tuple[str, ...] = DEFAULT_CHAIN
    ack_timeout_ms: int = DEFAULT_ACK_TIMEOUT_MS
    repage_every_ms: int = DEFAULT_REPAGE_EVERY_MS
    # (start, end) in minutes after midnight in ``zone`` (the node's time zone):
    # re-paging rounds of alerts that are not urgent wait for the end; the
    # chain's own steps always page.
    quiet_hours: tuple[int, int] | None = None
    zone: tzinfo = UTC

    def __post_init__(self) -> None:
        if not self.chain or any(step not in DEFAULT_CHAIN for step in self.chain):
            raise ValueError(f"an escalation chain is made of {', '.join(DEFAULT_CHAIN)}")
        if self.ack_timeout_ms <= 0:
            raise ValueError("ack_timeout must be positive")
        if self.repage_every_ms <= 0:
            raise ValueError("repage_every must be positive")


def start(
    alert_id: str, now: int, policy: Policy = Policy(), expires: int = 0, urgent: bool = True
) -> tuple[Escalation, list[Action]]:
    """Page the chain's first step; ``expires`` is the alert's (0: never);
    ``urgent``: a severe or extreme alert, re-paged through quiet hours."""
    deadline = _due(now + policy.ack_timeout_ms, expires)
    esc = Escalation(alert_id, now, 0, deadline, expires=expires, urgent=urgent)
    return esc, [
        Persist(esc),
        Page(alert_id, policy.chain[0], 0),
        _note(esc, now, PAGED, step=policy.chain[0]),
    ]


def tick(esc: Escalation, now: int, policy: Policy = Policy()) -> tuple[Escalation, list[Action]]:
    """Fire every chain step whose deadline has passed, each exactly once; once
    the chain is exhausted, at most one re-paging round per tick."""
    actions: list[Action] = []
    while esc.state in OPEN and esc.deadline and esc.deadline <= now:
        fired_at = esc.deadline
        if esc.expires and fired_at >= esc.expires:
            esc = replace(esc, state=TRANSITIONS[(esc.state, "expire")], deadline=0)
            actions += [Persist(esc), _note(esc, fired_at, EXPIRED)]
            break
        if esc.state == "exhausted":
            paged_now = any(isinstance(a, Page) for a in actions)
            esc, more = _round(esc, fired_at, now, policy, skip=paged_now)
            actions += more
            break
        if esc.step + 1 >= len(policy.chain):
            esc = replace(
                esc, state="exhausted", deadline=_due(fired_at + policy.repage_every_ms, esc.expires)
            )
            actions += [
                Persist(esc),
                _note(esc, fired_at, EXHAUSTED, every=duration_text(policy.repage_every_ms)),
            ]
            continue
        step = esc.step + 1
        esc = replace(esc, step=step, deadline=_due(fired_at + policy.ack_timeout_ms, esc.expires))
        target = policy.chain[step]
        actions += [
            Persist(esc),
            Page(esc.alert_id, target, step),
            _note(esc, fired_at, NO_ACK_PAGED, timeout=duration_text(policy.ack_timeout_ms), step=target),
        ]
    return esc, actions


def _round(
    esc: Escalation, fired_at: int, now: int, policy: Policy, skip: bool = False
) -> tuple[Escalation, list[Action]]:
    """One re-paging round of the whole chain. Rounds missed while the node slept
    collapse into this one; the next stays on the grid ``fired_at + k * repage_every``.
    ``skip``: the chain's own steps were paged in this same tick (a long sleep),
    so the round would page the same people twice at once; only the grid moves."""
    every = policy.repage_every_ms
    following = _due(fired_at + every * ((now - fired_at) // every + 1), esc.expires)
    if skip:
        esc = replace(esc, deadline=following)
        return esc, [Persist(esc)]
    quiet_end = (
        clock_text.local_minutes_end(fired_at, policy.quiet_hours, policy.zone) if policy.quiet_hours else 0
    )
    if quiet_end and not esc.urgent:
        esc = replace(esc, deadline=_due(quiet_end, esc.expires))
        until = clock_text.clock(quiet_end, policy.zone)
        return esc, [Persist(esc), _note(esc, fired_at, QUIET_WAIT, until=until)]
    number = esc.round + 1
    esc = replace(esc, round=number, deadline=following)
    note = _note(esc, fired_at, ROUND_PAGED, round=str(number))
    return esc, [Persist(esc), Page(esc.alert_id, ROUND, esc.step + number), note]


def _due(deadline: int, expires: int) -> int:
    """The next deadline, or the expiry if that comes first (so the tick finds it)."""
    return min(deadline, expires) if expires else deadline


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
    return _finish(esc, now, "ack", _note(esc, now, ACKED, by=by), acked_by=by)


def cancel(esc: Escalation, now: int) -> tuple[Escalation, list[Action]]:
    return _finish(esc, now, "cancel", _note(esc, now, CANCELLED))


def _finish(
    esc: Escalation, now: int, event: str, note: Timeline, acked_by: str = ""
) -> tuple[Escalation, list[Action]]:
    target = TRANSITIONS.get((esc.state, event))
    if target is None:  # already final: nothing changes, nothing is paged
        return esc, []
    done = replace(esc, state=target, deadline=0, acked_by=acked_by or esc.acked_by)
    return done, [Persist(done), note]


def _note(esc: Escalation, at: int, message: str, **params: str) -> Timeline:
    return Timeline(esc.alert_id, at, message, tuple(params.items()))
