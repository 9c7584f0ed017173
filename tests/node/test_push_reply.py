"""The push reply's ``deferred`` field as the sender reads it (docs/protocol.md §12.6)."""

from __future__ import annotations

import pytest

from protocol import framing
from protocol.errors import BadFrame

ID = b"\x01" * 32


def test_a_reply_without_deferred_means_nothing_was_deferred() -> None:
    assert framing.deferred_ids({"accepted": 3, "invalid": 0}, sent=3) == []  # a node before the field


def test_deferred_ids_are_read_as_sent() -> None:
    assert framing.deferred_ids({"accepted": 1, "invalid": 0, "deferred": [ID, b"\x02" * 32]}, sent=3) == [
        ID,
        b"\x02" * 32,
    ]


@pytest.mark.parametrize(
    "value",
    [
        ID,  # not a list
        [ID, ID, ID, ID],  # more ids than envelopes pushed
        [b"\x01" * 31],  # not an id
        ["01" * 32],  # text, not bytes
        [1],
    ],
)
def test_a_malformed_deferred_field_is_a_frame_error(value: object) -> None:
    with pytest.raises(BadFrame, match="deferred"):
        framing.deferred_ids({"deferred": value}, sent=3)
