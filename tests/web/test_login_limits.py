"""Dashboard sign-in rate limiting, with a fake clock: wrong passwords lock one
(address, account) pair briefly and with doubling lockouts; a shared address
(an SSH tunnel: everyone is 127.0.0.1) never locks other accounts out; spraying
many accounts from one address meets a ceiling, except for an account that signed
in from there within 30 days; the tables stay bounded; Argon2id runs two at a
time off the event loop and a full queue is refused, not grown."""

from __future__ import annotations

import asyncio
import threading

import pytest

from node.web import sessions
from node.web.sessions import LoginLimiter

TUNNEL = "127.0.0.1"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(clock: Clock) -> LoginLimiter:
    return LoginLimiter(clock=clock)


def fail(limiter: LoginLimiter, times: int, address: str = TUNNEL, name: str = "Bruno") -> None:
    for _ in range(times):
        assert limiter.retry_after(address, name) == 0
        limiter.failed(address, name)


def test_a_burst_against_one_account_does_not_lock_another_from_the_same_address(
    limiter: LoginLimiter,
) -> None:
    fail(limiter, sessions.PAIR_FREE_FAILURES + 1, name="Bruno")
    assert limiter.retry_after(TUNNEL, "Bruno") > 0
    assert limiter.retry_after(TUNNEL, "Ana") == 0  # Ana signs in through the same tunnel
    assert limiter.retry_after("10.8.0.7", "Bruno") == 0  # and Bruno from his own machine


def test_lockouts_are_short_and_double_up_to_five_minutes(limiter: LoginLimiter, clock: Clock) -> None:
    fail(limiter, sessions.PAIR_FREE_FAILURES)
    assert limiter.retry_after(TUNNEL, "Bruno") == 0  # a few typos cost nothing
    waits = []
    for _ in range(8):
        limiter.failed(TUNNEL, "Bruno")
        wait = limiter.retry_after(TUNNEL, "Bruno")
        waits.append(wait)
        clock.now += wait
        assert limiter.retry_after(TUNNEL, "Bruno") == 0  # the lockout ends by itself
    assert waits == [15, 30, 60, 120, 240, 300, 300, 300]


def test_a_correct_password_clears_the_pair(limiter: LoginLimiter, clock: Clock) -> None:
    fail(limiter, sessions.PAIR_FREE_FAILURES)
    limiter.succeeded(TUNNEL, "Bruno")
    fail(limiter, sessions.PAIR_FREE_FAILURES)  # a fresh allowance, no lockout yet
    assert limiter.retry_after(TUNNEL, "Bruno") == 0


def test_old_failures_are_forgotten(limiter: LoginLimiter, clock: Clock) -> None:
    fail(limiter, sessions.PAIR_FREE_FAILURES)
    clock.now += sessions.FORGET_S + 1
    limiter.failed(TUNNEL, "Bruno")
    assert limiter.retry_after(TUNNEL, "Bruno") == 0


def test_spraying_many_accounts_from_one_address_meets_the_ceiling(
    limiter: LoginLimiter, clock: Clock
) -> None:
    for i in range(sessions.ADDRESS_CEILING):
        fail(limiter, 1, address="203.0.113.9", name=f"guess-{i}")
    assert limiter.retry_after("203.0.113.9", "Ana") > 0  # the sprayer is stopped for every account
    assert limiter.retry_after("198.51.100.4", "Ana") == 0  # nobody else is
    clock.now += sessions.ADDRESS_WINDOW_S + 1
    assert limiter.retry_after("203.0.113.9", "Ana") == 0


def test_the_tables_are_bounded_and_evict_the_oldest(
    limiter: LoginLimiter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions, "MAX_TRACKED", 50)
    fail(limiter, sessions.PAIR_FREE_FAILURES + 1, address="192.0.2.1", name="first")
    for i in range(200):
        limiter.failed(f"10.0.{i // 250}.{i % 250}", f"name-{i}")
    assert len(limiter.pairs) == 50 and len(limiter.addresses) == 50
    assert ("192.0.2.1", "first") not in limiter.pairs  # the oldest went first
    assert ("10.0.0.199", "name-199") in limiter.pairs


def test_a_known_account_is_not_locked_out_by_the_address_ceiling(limiter: LoginLimiter) -> None:
    for i in range(sessions.ADDRESS_CEILING):
        fail(limiter, 1, name=f"guess-{i}")  # someone behind the same tunnel sprays names
    assert limiter.retry_after(TUNNEL, "Ana") > 0
    assert limiter.retry_after(TUNNEL, "Ana", known=True) == 0  # Ana signed in from here before
    for _ in range(sessions.PAIR_FREE_FAILURES + 1):
        limiter.failed(TUNNEL, "Ana")  # … but guessing her password still locks that pair
    assert limiter.retry_after(TUNNEL, "Ana", known=True) > 0


def test_sessions_and_their_lockouts_keep_one_injected_clock(clock: Clock) -> None:
    signed_in = sessions.Sessions(clock=clock)
    sid = signed_in.open("Ana", "responder")
    clock.now += sessions.SESSION_SECONDS - 1
    assert signed_in.get(sid) is not None and signed_in.get(sid).name == "Ana"  # type: ignore[union-attr]
    fail(signed_in.logins, sessions.PAIR_FREE_FAILURES + 1)
    assert signed_in.logins.retry_after(TUNNEL, "Bruno") == sessions.PAIR_LOCK_S  # on the same clock
    clock.now += 2
    assert signed_in.get(sid) is None  # twelve hours on that clock: signed out, and forgotten
    assert sid not in signed_in.by_id
    assert signed_in.logins.retry_after(TUNNEL, "Bruno") == sessions.PAIR_LOCK_S - 2


def test_a_sign_in_is_known_for_thirty_days_only() -> None:
    now = 1_800_000_000_000
    assert sessions.recently_known({"at": now - sessions.KNOWN_FOR_MS}, now)
    assert not sessions.recently_known({"at": now - sessions.KNOWN_FOR_MS - 1}, now)
    assert not sessions.recently_known({"at": now + 1}, now)  # from the future: not trusted
    assert not sessions.recently_known(None, now) and not sessions.recently_known({"at": "x"}, now)
    assert sessions.known_key("127.0.0.1", "Ana María") == "127.0.0.1 Ana María"


def test_password_checks_run_two_at_a_time_and_refuse_past_the_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    running: list[int] = []
    peak = [0]
    release = threading.Event()

    def slow_check(stored: str | None, password: str) -> bool:
        running.append(1)
        peak[0] = max(peak[0], len(running))
        release.wait(10)
        running.pop()
        return password == "right"

    async def go() -> list[bool | None]:
        checks = sessions.PasswordChecks()
        full = sessions.HASH_SLOTS + sessions.HASH_WAITING
        tasks = [asyncio.ensure_future(checks.check("h", "right")) for _ in range(full)]
        while len(running) < sessions.HASH_SLOTS:
            await asyncio.sleep(0.01)
        assert checks.pending == sessions.HASH_SLOTS + sessions.HASH_WAITING
        assert await checks.check("h", "right") is None  # the queue is full: refused, not queued
        release.set()
        return list(await asyncio.gather(*tasks))

    monkeypatch.setattr(sessions, "check_password", slow_check)
    results = asyncio.run(go())
    assert results == [True] * (sessions.HASH_SLOTS + sessions.HASH_WAITING)
    assert peak[0] == sessions.HASH_SLOTS
