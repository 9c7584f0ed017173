"""Dashboard sign-in rate limiting, with a fake clock: wrong passwords lock one
(address, account) pair briefly and with doubling lockouts; a shared address
(an SSH tunnel: everyone is 127.0.0.1) never locks other accounts out; spraying
many accounts from one address meets a ceiling; the tables stay bounded."""

from __future__ import annotations

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


def test_a_burst_against_one_account_does_not_lock_another_from_the_same_address(limiter: LoginLimiter) -> None:
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


def test_spraying_many_accounts_from_one_address_meets_the_ceiling(limiter: LoginLimiter, clock: Clock) -> None:
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
