"""The ``receipt`` body (docs/protocol.md §6.7): "this node stored these alerts at these times".

A node that stores someone else's alert owes its author a receipt, so the
author can see which organizations an urgent action reached and which it did
not. A receipt is always sealed to the author (§7): relays carry ciphertext and
learn nothing of which alerts it names. It lists (alert id, stored-at) pairs,
batched, so one envelope answers many alerts; ids are in ascending byte order,
which gives every set of pairs exactly one encoding.

The rules that need the envelope (sealed only, short lifetime, no stored-at
after the receipt was made) are checked by ``protocol.envelope``; the ones of
the body alone are here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from protocol import fields
from protocol.errors import BadField

RECEIPT_MAX_HELD: Final = 256  # pairs per receipt: ≈ 11 KiB, well inside one envelope
RECEIPT_MAX_LIFETIME_MS: Final = 24 * 3600 * 1000  # x − c: a receipt is worth a day, then it is noise
MAX_STORED_AT: Final = 2**62

Held = tuple[bytes, int]
"""(alert id, stored-at Unix ms)."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """The author of the receipt stored each alert in ``held`` at the time given."""

    held: tuple[Held, ...]
    kind: str = field(default="receipt", init=False, repr=False)

    def __post_init__(self) -> None:
        Receipt.from_wire(self.to_wire())

    @classmethod
    def of(cls, pairs: dict[bytes, int]) -> Receipt:
        """A receipt for ``pairs`` (alert id → stored-at), in the one order the wire allows."""
        return cls(tuple(sorted(pairs.items())))

    def to_wire(self) -> dict[str, Any]:
        return {"held": [[alert, at] for alert, at in self.held]}

    @classmethod
    def from_wire(cls, value: object, path: str = "receipt") -> Receipt:
        doc = fields.require_map(value, path, ("held", fields.EXT))
        fields.check_extensions(doc, path)
        return fields.build_frozen(cls, held=_held(doc.get("held"), f"{path}.held"), kind="receipt")


def _held(value: object, path: str) -> tuple[Held, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= RECEIPT_MAX_HELD:
        raise BadField(f"must list 1 to {RECEIPT_MAX_HELD} [alert id, stored-at] pairs", field=path)
    out: list[Held] = []
    for i, pair in enumerate(value):
        if not (isinstance(pair, list) and len(pair) == 2):
            raise BadField("must be [alert id, stored-at]", field=f"{path}[{i}]")
        alert, at = pair
        if not isinstance(alert, bytes) or len(alert) != fields.ID_BYTES:
            raise BadField("must be a 32-byte alert id", field=f"{path}[{i}][0]")
        if isinstance(at, bool) or not isinstance(at, int) or not 0 < at <= MAX_STORED_AT:
            raise BadField("must be a positive integer (Unix ms)", field=f"{path}[{i}][1]")
        if out and alert <= out[-1][0]:
            raise BadField("alert ids must be unique and in ascending order", field=f"{path}[{i}][0]")
        out.append((bytes(alert), at))
    return tuple(out)
