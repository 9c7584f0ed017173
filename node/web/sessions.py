"""Dashboard sign-in: Argon2id password check, server-side sessions, CSRF tokens
and login rate limiting.

Each Argon2id check costs ~0.1–0.4 s of CPU, so it runs in a small thread pool
(``HASH_SLOTS`` at a time, ``HASH_WAITING`` more queued, any further attempt
refused with 429 at once): failing sign-ins never stall the event loop that
serves alerts, and a flood costs at most two cores' worth of hashing.

Sessions live in memory only (a restart signs everyone out, which is the safe
default on a machine that may be seized). The cookie is HttpOnly and
SameSite=Strict and carries only a random id; every form also carries the
session's CSRF token, compared in constant time.

Session lifetimes and lockouts are durations, so they are measured on a
monotonic clock (a wall-clock step must neither extend a lockout nor revive a
session), in seconds. That clock is injected: ``Sessions(clock=...)`` hands
the same one to its ``LoginLimiter``, so a test moves both by hand.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import nacl.exceptions
import nacl.pwhash

COOKIE = "amparo_session"
SESSION_SECONDS = 12 * 3600
PAIR_FREE_FAILURES = 4  # wrong passwords per (address, account) before any lockout
PAIR_LOCK_S = 15.0  # the first lockout; it doubles with every further failure …
PAIR_MAX_LOCK_S = 300.0  # … up to five minutes
ADDRESS_CEILING = 100  # failures from one address (any accounts) within ADDRESS_WINDOW_S
ADDRESS_WINDOW_S = 300.0
KNOWN_FOR_MS = 30 * 86_400_000  # a success from an address exempts that account there from the ceiling
HASH_SLOTS = 2  # Argon2id checks running at once, off the event loop
HASH_WAITING = 8  # checks queued behind them; beyond that a sign-in is refused with 429
FORGET_S = 3600.0  # a pair with no failure for an hour starts afresh
MAX_TRACKED = 10_000  # entries per table; the oldest is evicted first
ROLES_THAT_ACT = frozenset({"admin", "responder"})


@dataclass
class Session:
    name: str
    role: str
    csrf: str
    expires: float

    @property
    def can_act(self) -> bool:
        return self.role in ROLES_THAT_ACT

    def csrf_ok(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(self.csrf.encode(), str(given).encode())


def check_password(stored_hash: str | None, password: str) -> bool:
    """Argon2id verification; a missing hash still costs a hash (no timing oracle)."""
    candidate = stored_hash or _DUMMY
    try:
        ok = nacl.pwhash.verify(candidate.encode("ascii"), password.encode("utf-8"))
    except (nacl.exceptions.InvalidkeyError, nacl.exceptions.CryptoError, ValueError):
        ok = False
    return ok and stored_hash is not None


_DUMMY = nacl.pwhash.argon2id.str(secrets.token_bytes(16)).decode("ascii")


class PasswordChecks:
    """Argon2id off the event loop, at most ``HASH_SLOTS`` at a time.

    ``check`` answers None (busy: refuse with 429) rather than queueing without
    bound, so a flood of sign-ins cannot pile up memory (64 MiB per check) or
    make an honest sign-in wait minutes."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(HASH_SLOTS, thread_name_prefix="amparo-signin")
        self._slots = asyncio.Semaphore(HASH_SLOTS)
        self.pending = 0

    async def check(self, stored_hash: str | None, password: str) -> bool | None:
        if self.pending >= HASH_SLOTS + HASH_WAITING:
            return None
        self.pending += 1
        try:
            async with self._slots:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self._pool, check_password, stored_hash, password)
        finally:
            self.pending -= 1


def known_key(address: str, name: str) -> str:
    """Key of the record saying ``name`` signed in from ``address`` (an address has no space)."""
    return f"{address} {name}"


def recently_known(doc: dict[str, Any] | None, now_ms: int) -> bool:
    """True when that record shows a successful sign-in within ``KNOWN_FOR_MS``."""
    at = (doc or {}).get("at")
    return isinstance(at, int) and 0 <= now_ms - at <= KNOWN_FOR_MS


@dataclass
class _Pair:
    failures: int = 0
    last: float = 0.0
    locked_until: float = 0.0


@dataclass
class LoginLimiter:
    """Login rate limiting keyed by the (address, account) pair.

    Behind an SSH tunnel or a reverse proxy every responder arrives from the
    same address, so neither the address nor the account alone may lock
    anyone out: wrong passwords for one account from one address lock only
    that pair, briefly at first and doubling (15 s, 30 s, … 5 min). One address
    is stopped altogether only past a much higher ceiling of failures across
    all accounts (password spraying), and not even then for an account that
    signed in successfully from that address within 30 days (``known``): an
    attacker behind the same tunnel or NAT could otherwise lock every
    responder out on purpose. Both tables are bounded: the entry
    touched longest ago is evicted first, so a flood of made-up names cannot
    exhaust memory.
    """

    clock: Callable[[], float] = time.monotonic
    pairs: OrderedDict[tuple[str, str], _Pair] = field(default_factory=OrderedDict)
    addresses: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def retry_after(self, address: str, name: str, *, known: bool = False) -> float:
        """Seconds until this address may try this account again; 0 when it may now.
        ``known``: the account signed in from this address recently, so only its
        own (address, account) lockout applies."""
        now = self.clock()
        wait = 0.0
        pair = self.pairs.get((address, name))
        if pair is not None:
            wait = max(wait, pair.locked_until - now)
        log = self.addresses.get(address)
        if log is not None and len(log) >= ADDRESS_CEILING and not known:
            wait = max(wait, log[-ADDRESS_CEILING] + ADDRESS_WINDOW_S - now)
        return max(0.0, math.ceil(wait))

    def failed(self, address: str, name: str) -> None:
        now = self.clock()
        pair = self.pairs.pop((address, name), None)
        if pair is None or now - pair.last > FORGET_S:
            pair = _Pair()
        pair.failures += 1
        pair.last = now
        if pair.failures > PAIR_FREE_FAILURES:
            lock = PAIR_LOCK_S * 2 ** min(pair.failures - PAIR_FREE_FAILURES - 1, 16)
            pair.locked_until = now + min(lock, PAIR_MAX_LOCK_S)
        self.pairs[(address, name)] = pair
        log = self.addresses.pop(address, None) or deque(maxlen=ADDRESS_CEILING)
        while log and log[0] < now - ADDRESS_WINDOW_S:
            log.popleft()
        log.append(now)
        self.addresses[address] = log
        for table in (self.pairs, self.addresses):
            while len(table) > MAX_TRACKED:
                table.popitem(last=False)

    def succeeded(self, address: str, name: str) -> None:
        """A correct password clears that pair's failures (not the address's)."""
        self.pairs.pop((address, name), None)


class Sessions:
    """The signed-in sessions and the sign-in guards, all on one injected clock."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.by_id: dict[str, Session] = {}
        self.logins = LoginLimiter(clock=clock)
        self.passwords = PasswordChecks()

    def open(self, name: str, role: str) -> str:
        sid = secrets.token_urlsafe(32)
        self.by_id[sid] = Session(name, role, secrets.token_urlsafe(32), self.clock() + SESSION_SECONDS)
        return sid

    def get(self, sid: str | None) -> Session | None:
        session = self.by_id.get(sid or "")
        if session is None or session.expires < self.clock():
            self.by_id.pop(sid or "", None)
            return None
        return session

    def close(self, sid: str | None) -> None:
        self.by_id.pop(sid or "", None)
