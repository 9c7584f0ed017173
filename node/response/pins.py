"""Check-in PINs and duress PINs: 4 to 8 digits, kept as keyed hashes.

A PIN of four digits has ten thousand values: no password hash makes it hard
to guess offline. What protects it is the key: an HMAC-SHA256 key derived from
this node's private encryption key, which is sealed in the keystore
(Argon2id). A copied database without the passphrase yields hashes nobody can
test; a PIN typed at the page is checked against both the normal and the
duress hash every time, in constant time (``hmac.compare_digest``), so the
work and the time are the same whichever PIN it is.

Key rotation keeps the encryption key, so PINs outlive it; a node declared
compromised is replaced by a new one, and its people get new links and PINs.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Final, Literal

from node.response.checkin_plan import CheckinError

PIN: Final = re.compile(r"[0-9]{4,8}")
PURPOSE: Final = b"amparo/v1/pin"
SALT_BYTES: Final = 16
_NOBODY: Final = "00" * SALT_BYTES + ":" + "00" * 32  # compared against when no PIN is set: same work

Match = Literal["pin", "duress", "wrong"]


class PinError(CheckinError):
    """A PIN that cannot be used; the message says why (never the PIN)."""


def check(pin: str, duress: str) -> None:
    """Refuse PINs a person could not use safely: 4 to 8 digits; a duress PIN
    needs a normal one, differs from it and has as many digits (someone looking
    over a shoulder, or at the length of the request, must not tell them apart)."""
    for name, value in (("pin", pin), ("duress-pin", duress)):
        if value and not PIN.fullmatch(value):
            raise PinError(f"{name}: 4 to 8 digits")
    if duress and not pin:
        raise PinError("duress-pin: give a --pin too (the duress PIN answers exactly like it)")
    if duress and duress == pin:
        raise PinError("duress-pin: must differ from the PIN")
    if duress and len(duress) != len(pin):
        raise PinError("duress-pin: must have as many digits as the PIN (its length must not give it away)")


class PinKey:
    """Hashes and checks PINs with one node's key."""

    def __init__(self, secret: bytes) -> None:
        self._key = hmac.new(secret, PURPOSE, hashlib.sha256).digest()

    def hash(self, pin: str) -> str:
        """``salt:mac`` (hex), or "" for no PIN."""
        if not pin:
            return ""
        salt = secrets.token_bytes(SALT_BYTES)
        return f"{salt.hex()}:{self._mac(salt, pin).hex()}"

    def _mac(self, salt: bytes, pin: str) -> bytes:
        return hmac.new(self._key, salt + pin.encode("ascii", "replace"), hashlib.sha256).digest()

    def _equal(self, pin: str, stored: str) -> bool:
        salt_hex, _, mac_hex = (stored or _NOBODY).partition(":")
        try:
            salt, mac = bytes.fromhex(salt_hex), bytes.fromhex(mac_hex)
        except ValueError:
            salt, mac = bytes(SALT_BYTES), b""
        return hmac.compare_digest(self._mac(salt, pin), mac) and bool(stored)

    def which(self, pin: str, normal: str, duress: str) -> Match:
        """Which stored PIN ``pin`` is. Both are always computed and compared, so
        a normal and a duress PIN cost the same work."""
        is_normal = self._equal(pin, normal)
        is_duress = self._equal(pin, duress)
        return "duress" if is_duress else "pin" if is_normal else "wrong"
