"""Dashboard sign-in: Argon2id password check, server-side sessions, CSRF tokens
and login rate limiting.

Sessions live in memory only (a restart signs everyone out, which is the safe
default on a machine that may be seized). The cookie is HttpOnly and
SameSite=Strict and carries only a random id; every form also carries the
session's CSRF token, compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.pwhash

COOKIE = "amparo_session"
SESSION_SECONDS = 12 * 3600
MAX_FAILURES = 5
FAILURE_WINDOW_S = 300.0
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


@dataclass
class Sessions:
    by_id: dict[str, Session] = field(default_factory=dict)
    failures: dict[str, deque[float]] = field(default_factory=dict)

    def open(self, name: str, role: str) -> str:
        sid = secrets.token_urlsafe(32)
        self.by_id[sid] = Session(name, role, secrets.token_urlsafe(32), time.monotonic() + SESSION_SECONDS)
        return sid

    def get(self, sid: str | None) -> Session | None:
        session = self.by_id.get(sid or "")
        if session is None or session.expires < time.monotonic():
            self.by_id.pop(sid or "", None)
            return None
        return session

    def close(self, sid: str | None) -> None:
        self.by_id.pop(sid or "", None)

    # -- login rate limiting (per address and per account) --------------------------------
    def blocked(self, *keys: str) -> bool:
        now = time.monotonic()
        return any(len(self._recent(k, now)) >= MAX_FAILURES for k in keys)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        for key in keys:
            self._recent(key, now).append(now)

    def _recent(self, key: str, now: float) -> deque[float]:
        log = self.failures.setdefault(key, deque())
        while log and log[0] < now - FAILURE_WINDOW_S:
            log.popleft()
        return log
