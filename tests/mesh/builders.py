"""Synthetic keys and items for mesh tests: no crypto, the mesh never checks signatures."""

from __future__ import annotations

import hashlib
import random

from mesh import Action, Item, Push

HOUR_MS = 3_600_000
NOW = 1_700_000_000_000


def key(name: str) -> bytes:
    return hashlib.blake2b(name.encode(), digest_size=32).digest()


def item_id(*parts: object) -> bytes:
    return hashlib.blake2b(repr(parts).encode(), digest_size=32).digest()


def alert(author: bytes, n: int = 0, created: int = NOW, expires: int | None = None) -> Item:
    ident = item_id("alert", author, n, created)
    return Item(
        ident, created, created + HOUR_MS if expires is None else expires, author, "alert", b"A" + ident
    )


def receipt(author: bytes, n: int = 0, created: int = NOW) -> Item:
    """A delivery receipt (bookkeeping: ``mesh.outbox.LINGERING_KINDS``)."""
    ident = item_id("receipt", author, n, created)
    return Item(ident, created, created + HOUR_MS, author, "receipt", b"R" + ident)


def vouch(voucher: bytes, subject: bytes, created: int = NOW, n: int = 0) -> Item:
    ident = item_id("vouch", voucher, subject, created, n)
    return Item(ident, created, 0, voucher, "vouch", b"V" + ident, subject=subject)


def revoke(voucher: bytes, subject: bytes, created: int = NOW, compromised: bool = False) -> Item:
    ident = item_id("revoke", voucher, subject, created, compromised)
    return Item(ident, created, 0, voucher, "revoke", b"R" + ident, subject=subject, compromised=compromised)


def rng(seed: int = 7) -> random.Random:
    return random.Random(seed)


def rotation(old: bytes, new: bytes, created: int = NOW) -> Item:
    """A node record by ``new`` that ``old`` handed over to (signatures are the protocol's job)."""
    ident = item_id("rotate", old, new, created)
    return Item(ident, created, 0, new, "node", b"N" + ident, subject=old)


def pushed_to(actions: list[Action]) -> dict[bytes, list[bytes]]:
    """Per peer, the ids of the items pushed to it in ``actions``."""
    out: dict[bytes, list[bytes]] = {}
    for action in actions:
        if isinstance(action, Push):
            out.setdefault(action.peer, []).extend(i.id for i in action.items)
    return out
