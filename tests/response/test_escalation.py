"""Escalation with a fake clock: steps fire at the right instants, an ack stops
them, and a restart in the middle neither loses nor repeats a step."""

from __future__ import annotations

from datetime import UTC

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.clock_text import local_minutes_end as quiet_end
from node.clock_text import zone
from node.response import escalation as esc_mod
from node.response.escalation import Escalation, Page, Persist, Policy, Timeline

T0 = 1_795_000_000_000
MIN = 60_000


def pages(actions: list) -> list[str]:
    return [a.targets for a in actions if isinstance(a, Page)]


def test_steps_fire_at_the_right_instants() -> None:
    esc, actions = esc_mod.start("a1", T0)
    assert pages(actions) == ["on-call"]
    esc, actions = esc_mod.tick(esc, T0 + 5 * MIN - 1)
    assert actions == []
    esc, actions = esc_mod.tick(esc, T0 + 5 * MIN)
    assert pages(actions) == ["backup"]
    esc, actions = esc_mod.tick(esc, T0 + 10 * MIN)
    assert pages(actions) == ["all"]
    esc, actions = esc_mod.tick(esc, T0 + 15 * MIN)
    assert pages(actions) == [] and esc.state == "exhausted"
    assert any("whole chain" in a.text for a in actions if isinstance(a, Timeline))


def test_an_ack_stops_the_chain() -> None:
    esc, _ = esc_mod.start("a1", T0)
    esc, _ = esc_mod.tick(esc, T0 + 6 * MIN)
    esc, actions = esc_mod.acknowledge(esc, T0 + 7 * MIN, "Ana")
    assert esc.state == "acknowledged" and esc.acked_by == "Ana"
    assert any(isinstance(a, Persist) for a in actions)
    esc, later = esc_mod.tick(esc, T0 + 60 * MIN)
    assert later == []
    assert esc_mod.acknowledge(esc, T0 + 61 * MIN, "Bruno")[1] == []  # final stays final


def test_a_long_sleep_fires_each_missed_step_once() -> None:
    """The chain's missed steps each fire once; the re-paging rounds missed too
    are not piled on top (the same people were just paged), and the next round
    stays on the grid: exhausted at 15 min, rounds every 10 min from there."""
    esc, _ = esc_mod.start("a1", T0)
    esc, actions = esc_mod.tick(esc, T0 + 60 * MIN)
    assert pages(actions) == ["backup", "all"] and esc.state == "exhausted"
    assert esc.round == 0 and esc.deadline == T0 + 65 * MIN


@given(st.lists(st.integers(0, 20 * MIN), min_size=1, max_size=12), st.integers(0, 11))
def test_restart_mid_escalation_neither_loses_nor_repeats(offsets: list[int], crash_after: int) -> None:
    """Run once straight through; run again 'crashing' after some tick and
    resuming from the last persisted record: the same pages, in the same order."""
    times = sorted(T0 + o for o in offsets)
    esc, first = esc_mod.start("a1", T0)
    straight = pages(first)
    for t in times:
        esc, actions = esc_mod.tick(esc, t)
        straight += pages(actions)

    esc, first = esc_mod.start("a1", T0)
    resumed = pages(first)
    persisted: Escalation = esc
    for i, t in enumerate(times):
        if i == crash_after:
            esc = Escalation(**{f: getattr(persisted, f) for f in persisted.__slots__})  # reload from disk
        esc, actions = esc_mod.tick(esc, t)
        resumed += pages(actions)
        for a in actions:
            if isinstance(a, Persist):
                persisted = a.escalation
    assert resumed == straight
    assert len(resumed) == len(set(resumed))


def test_chain_is_configurable() -> None:
    policy = Policy(chain=("on-call", "all"), ack_timeout_ms=2 * MIN)
    esc, actions = esc_mod.start("a1", T0, policy)
    esc, more = esc_mod.tick(esc, T0 + 2 * MIN, policy)
    assert pages(actions) + pages(more) == ["on-call", "all"]


@pytest.mark.parametrize(
    ("timeout_ms", "said"),
    [
        (3_000, "3 s"),
        (90_000, "90 s"),
        (60_000, "1 min"),
        (5 * MIN, "5 min"),
        (150_000, "2 min 30 s"),
        (3_600_000, "1 h"),
        (5_400_000, "1 h 30 min"),
        (1, "1 s"),
    ],
)
def test_the_timeline_says_how_long_nobody_answered(timeout_ms: int, said: str) -> None:
    policy = Policy(ack_timeout_ms=timeout_ms)
    esc, _ = esc_mod.start("a1", T0, policy)
    _, actions = esc_mod.tick(esc, T0 + timeout_ms, policy)
    (note,) = [a for a in actions if isinstance(a, Timeline)]
    assert note.text == f"no acknowledgement in {said}: paged backup"


# -- re-paging after the chain is exhausted ----------------------------------------------------
# Default policy: steps at 0, 5 and 10 min; exhausted at 15 min; rounds every 10 min from there.


def _exhausted(expires: int = 0) -> Escalation:
    esc, _ = esc_mod.start("a1", T0, expires=expires)
    for minute in (5, 10, 15):
        esc, _ = esc_mod.tick(esc, T0 + minute * MIN)
    assert esc.state == "exhausted"
    return esc


def test_rounds_fire_every_repage_every_until_the_ack() -> None:
    esc = _exhausted()
    assert esc.deadline == T0 + 25 * MIN  # an exhausted escalation keeps a deadline: the tick finds it
    fired: list[int] = []
    for minute in range(15, 60):
        esc, actions = esc_mod.tick(esc, T0 + minute * MIN)
        if pages(actions):
            assert pages(actions) == ["chain"]
            fired.append(minute)
    assert fired == [25, 35, 45, 55] and esc.round == 4
    esc, actions = esc_mod.acknowledge(esc, T0 + 60 * MIN, "Carmen")
    assert esc.state == "acknowledged" and esc.deadline == 0
    assert esc_mod.tick(esc, T0 + 600 * MIN)[1] == []
    assert any("Carmen" in a.text for a in actions if isinstance(a, Timeline))


def test_each_round_is_on_the_timeline_with_its_number() -> None:
    esc = _exhausted()
    texts = []
    for minute in (25, 35):
        esc, actions = esc_mod.tick(esc, T0 + minute * MIN)
        texts += [a.text for a in actions if isinstance(a, Timeline)]
    assert [t.split(":")[0] for t in texts] == ["re-paging round 1", "re-paging round 2"]
    page_steps = [a.step for a in actions if isinstance(a, Page)]
    assert page_steps == [2 + 2]  # the chain's last index plus the round: unique per round


def test_a_cancel_stops_the_rounds() -> None:
    esc = _exhausted()
    esc, _ = esc_mod.tick(esc, T0 + 25 * MIN)
    esc, _ = esc_mod.cancel(esc, T0 + 30 * MIN)
    assert esc.state == "cancelled" and esc.deadline == 0
    assert esc_mod.tick(esc, T0 + 600 * MIN)[1] == []


def test_the_alerts_expiry_stops_the_rounds_on_time() -> None:
    esc = _exhausted(expires=T0 + 40 * MIN)
    esc, actions = esc_mod.tick(esc, T0 + 35 * MIN)
    assert pages(actions) == ["chain"] and esc.deadline == T0 + 40 * MIN  # the expiry, not 45 min
    esc, actions = esc_mod.tick(esc, T0 + 40 * MIN)
    assert pages(actions) == [] and esc.state == "expired" and esc.deadline == 0
    assert any("expired" in a.text for a in actions if isinstance(a, Timeline))


def test_an_expired_alert_climbs_no_further_in_the_chain() -> None:
    esc, _ = esc_mod.start("a1", T0, expires=T0 + 7 * MIN)
    esc, actions = esc_mod.tick(esc, T0 + 30 * MIN)
    assert pages(actions) == ["backup"] and esc.state == "expired"


def test_rounds_missed_in_a_sleep_page_once_and_keep_the_grid() -> None:
    esc = _exhausted()
    esc, actions = esc_mod.tick(esc, T0 + 52 * MIN)  # 25, 35 and 45 were missed
    assert pages(actions) == ["chain"] and esc.round == 1 and esc.deadline == T0 + 55 * MIN


def test_repage_every_is_a_policy_setting() -> None:
    policy = Policy(chain=("on-call",), ack_timeout_ms=MIN, repage_every_ms=3 * MIN)
    esc, _ = esc_mod.start("a1", T0, policy)
    esc, _ = esc_mod.tick(esc, T0 + MIN, policy)
    assert esc.state == "exhausted" and esc.deadline == T0 + 4 * MIN
    with pytest.raises(ValueError, match="repage_every"):
        Policy(repage_every_ms=0)


# -- quiet hours hold re-paging of alerts below severe ------------------------------------------
DAY = 86_400_000
MIDNIGHT = T0 - T0 % DAY  # T0 is 11:06:40 UTC
QUIET = Policy(quiet_hours=(11 * 60 + 20, 12 * 60))  # 11:20-12:00 UTC: round 1 (11:31:40) falls inside


def _exhausted_under(policy: Policy, urgent: bool) -> Escalation:
    esc, _ = esc_mod.start("a1", T0, policy, urgent=urgent)
    for minute in (5, 10, 15):
        esc, _ = esc_mod.tick(esc, T0 + minute * MIN, policy)
    return esc


def test_quiet_hours_hold_the_rounds_of_an_alert_below_severe() -> None:
    esc = _exhausted_under(QUIET, urgent=False)
    esc, actions = esc_mod.tick(esc, T0 + 25 * MIN, QUIET)
    assert pages(actions) == [] and esc.deadline == MIDNIGHT + 12 * 60 * MIN
    assert any(
        "quiet hours: re-paging waits until 12:00 UTC" in a.text for a in actions if isinstance(a, Timeline)
    )
    esc, actions = esc_mod.tick(esc, MIDNIGHT + 12 * 60 * MIN - 1, QUIET)
    assert actions == []
    esc, actions = esc_mod.tick(esc, MIDNIGHT + 12 * 60 * MIN, QUIET)
    assert pages(actions) == ["chain"] and esc.round == 1


def test_quiet_hours_do_not_apply_to_severe_or_extreme_alerts() -> None:
    esc = _exhausted_under(QUIET, urgent=True)
    esc, actions = esc_mod.tick(esc, T0 + 25 * MIN, QUIET)
    assert pages(actions) == ["chain"] and esc.round == 1


def test_quiet_hours_may_wrap_midnight() -> None:
    night = (22 * 60, 7 * 60)
    assert quiet_end(MIDNIGHT + 23 * 60 * MIN, night, UTC) == MIDNIGHT + DAY + 7 * 60 * MIN
    assert quiet_end(MIDNIGHT + 3 * 60 * MIN, night, UTC) == MIDNIGHT + 7 * 60 * MIN
    assert quiet_end(MIDNIGHT + 12 * 60 * MIN, night, UTC) == 0
    assert quiet_end(MIDNIGHT + 7 * 60 * MIN, night, UTC) == 0  # the end itself is awake


def test_quiet_hours_are_local_to_the_node_time_zone() -> None:
    """11:20-12:00 in Mexico City (UTC-6, no daylight saving) is 17:20-18:00 UTC:
    the same round that the UTC window holds pages here, and the round that
    falls in the local window waits for 12:00 on the wall, said as 12:00 CST."""
    local = Policy(quiet_hours=QUIET.quiet_hours, zone=zone("America/Mexico_City"))
    esc = _exhausted_under(local, urgent=False)
    esc, actions = esc_mod.tick(esc, T0 + 25 * MIN, local)  # 05:31 in Mexico City: awake
    assert pages(actions) == ["chain"]
    esc, _ = esc_mod.tick(esc, MIDNIGHT + (17 * 60 + 20) * MIN, local)  # slept: rounds collapse into one
    assert esc.deadline == MIDNIGHT + (17 * 60 + 21) * MIN + 40_000  # the grid's next round: 11:21:40 CST
    esc, actions = esc_mod.tick(esc, esc.deadline, local)
    assert pages(actions) == [] and esc.deadline == MIDNIGHT + 18 * 60 * MIN
    assert any("re-paging waits until 12:00 CST" in a.text for a in actions if isinstance(a, Timeline))
