"""Frames: the msgpack maps that carry envelopes and ids between mesh nodes.

A mesh request or answer body (docs/protocol.md §12) is one msgpack map, a
*frame*: a push ``{"e": [envelope, ...]}``, a fetch ``{"ids": [id, ...]}``, a
reconciliation ``{"m": message}`` and their answers. Envelopes inside a frame are
verified one by one by ``protocol.decode``; the frame itself is plain msgpack read
with hard limits, because a hostile peer controls every byte of it.

Like every decoder here, the readers raise nothing but ``ProtocolError``: a frame
that is not msgpack within its limits, or not the shape its path expects, is
``BadFrame`` (``bad-frame``), which blames whoever sent it (docs/protocol.md §9)
and is the *remote* side's fault. ``pack`` refusing a value is ``CannotEncode``,
a bug on the *local* side that no peer caused.

Every size a frame is held to lives here, so the listener, the client and the
outbox agree on them: ``MAX_FRAME_BYTES`` (the listener's body limit),
``MAX_FETCH_IDS`` (ids in one fetch request) and the push batch that fills one
frame (``PUSH_BATCH_ITEMS``, ``PUSH_BATCH_BYTES``).

Tree push (``mesh.tree``, docs/protocol.md §12.7) adds one frame, the *tree
signal* ``{"ids": [id, ...], "graft": true, "prune": true}`` (any of the three;
graft and prune not both), and one field, ``"tree": true``, that a node running
tree push puts in its push requests and push replies. Older nodes ignore the
field, and a node sends tree signals only to peers that set it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import msgpack

from protocol.codec import MAX_ENVELOPE_BYTES, read_one
from protocol.errors import BadFrame, CannotEncode, Malformed

ID_BYTES: Final = 32
MAX_FRAME_BYTES: Final = MAX_ENVELOPE_BYTES + 1024
"""A request body's limit: one maximum-size envelope plus room for the frame around it."""
FRAME_SLACK: Final = 64
"""The frame's own map and list headers."""
ITEM_OVERHEAD: Final = 5
"""A bin32 header per envelope in a list."""
MAX_FRAME_ITEMS: Final = 8192
"""The longest list a frame may hold (msgpack ``max_array_len``)."""
MAX_FRAME_KEYS: Final = 64
"""The most keys a frame map may hold (msgpack ``max_map_len``)."""

MAX_FETCH_IDS: Final = 256
"""Ids in one fetch request (32 bytes each, so the request is under 9 KiB). As many
as one push frame carries, so a fetch answer (one frame at most, in the order
asked) can usually hold everything asked for; the requester asks again for the
rest."""
MAX_FETCH_AUTHORS: Final = 16
"""Author keys in one fetch request's ``authors``: the ``node`` records of authors
whose alerts arrived before their records (docs/protocol.md §12)."""
MAX_ANNOUNCE_IDS: Final = MAX_FETCH_IDS
"""Ids in one tree signal's announcement (``mesh.Timing.announce_ids``): an
announced id is fetched by id, so one announcement is one fetch request at most."""
PUSH_BATCH_ITEMS: Final = 256
"""Envelopes in one push frame."""
PUSH_BATCH_BYTES: Final = MAX_FRAME_BYTES - FRAME_SLACK - ITEM_OVERHEAD * PUSH_BATCH_ITEMS
"""Envelope bytes that fit one push frame with ``PUSH_BATCH_ITEMS`` headers. Outbound
batches sized to one frame make each batch in flight one request, instead of a
full frame and a small remainder (half the round trips per item)."""


def pack(value: Any) -> bytes:
    """A frame's bytes. ``CannotEncode`` (local) for a value msgpack cannot carry."""
    try:
        return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]
    except (TypeError, ValueError, OverflowError) as exc:
        raise CannotEncode(f"{type(exc).__name__}: {exc}", field="frame") from None


def unpack(data: bytes, max_bytes: int = MAX_FRAME_BYTES) -> dict[str, Any]:
    """Read one frame of at most ``max_bytes``: a msgpack map with text keys, and
    nothing after it. Raises only ``BadFrame``."""
    if not isinstance(data, bytes | bytearray):
        raise BadFrame("a frame is bytes", field="frame")
    if len(data) > max_bytes:
        raise BadFrame(f"{len(data)} bytes exceeds the limit of {max_bytes}", field="frame")
    try:
        value = read_one(
            bytes(data),
            max_bytes=max_bytes,
            max_str=max_bytes,
            max_bin=max_bytes,
            max_array=MAX_FRAME_ITEMS,
            max_map=MAX_FRAME_KEYS,
        )
    except Malformed as exc:
        raise BadFrame(f"not msgpack within the limits: {exc}", field="frame") from None
    if not isinstance(value, dict):
        raise BadFrame("a frame is a map", field="frame")
    return value


def envelope_list(frame: dict[str, Any], key: str = "e") -> list[bytes]:
    """The frame's list of envelopes (each still to be verified by ``decode``)."""
    items = _field(frame, key)
    if not isinstance(items, list) or not all(isinstance(x, bytes) for x in items):
        raise BadFrame("must be a list of envelopes (bytes)", field=key)
    return items


def id_list(frame: dict[str, Any], key: str = "ids", limit: int = MAX_FETCH_IDS) -> list[bytes]:
    """The frame's list of at most ``limit`` 32-byte ids."""
    return _ids(_field(frame, key), key, limit)


def author_list(frame: dict[str, Any]) -> list[bytes]:
    """A fetch's optional ``authors``: at most ``MAX_FETCH_AUTHORS`` 32-byte keys
    whose newest ``node`` records are wanted. Absent (a node before this field) means none."""
    value = _field(frame, "authors")
    return [] if value is None else _ids(value, "authors", MAX_FETCH_AUTHORS)


def deferred_ids(reply: dict[str, Any], sent: int) -> list[bytes]:
    """The push reply's ``deferred``: ids the receiver refused for a budget, to send
    again later (docs/protocol.md §12.6). Absent (a node before this field) means
    none; anything but a list of at most ``sent`` 32-byte ids is a bad frame."""
    if not isinstance(reply, dict):
        raise BadFrame("a frame is a map", field="frame")
    return _ids(reply.get("deferred", []), "deferred", sent)


@dataclass(frozen=True, slots=True)
class TreeSignal:
    """What a tree signal says: ids the sender holds (an announcement), and whether
    it grafts its link to the receiver into the tree or prunes it."""

    announced: tuple[bytes, ...] = ()
    graft: bool = False
    prune: bool = False


def tree_frame(signal: TreeSignal) -> dict[str, Any]:
    """The frame of ``signal``, naming only what it says."""
    frame: dict[str, Any] = {}
    if signal.announced:
        frame["ids"] = list(signal.announced)
    if signal.graft:
        frame["graft"] = True
    if signal.prune:
        frame["prune"] = True
    return frame


def tree_signal(frame: dict[str, Any]) -> TreeSignal:
    """Read a tree signal: at most ``MAX_ANNOUNCE_IDS`` 32-byte ids under ``ids``,
    ``graft`` and ``prune`` true or absent and not both, and at least one of the
    three; other keys are ignored (a later version's). Raises only ``BadFrame``."""
    ids = _field(frame, "ids")
    announced = () if ids is None else tuple(_ids(ids, "ids", MAX_ANNOUNCE_IDS))
    graft, prune = _flag(frame, "graft"), _flag(frame, "prune")
    if graft and prune:
        raise BadFrame("a tree signal grafts or prunes, not both", field="frame")
    if not (announced or graft or prune):
        raise BadFrame("a tree signal names ids, graft or prune", field="frame")
    return TreeSignal(announced, graft, prune)


def speaks_tree(frame: dict[str, Any]) -> bool:
    """A push request's or reply's ``tree``: true when its sender runs tree push
    and reads tree signals. Absent (a node before the field, or one that floods)
    is false; anything but true or false is a bad frame."""
    return _flag(frame, "tree")


def batches(raws: Iterable[bytes], max_bytes: int = MAX_FRAME_BYTES - FRAME_SLACK) -> list[list[bytes]]:
    """Split envelopes into frames that each fit the listener's body limit."""
    out: list[list[bytes]] = []
    current: list[bytes] = []
    size = 0
    for raw in raws:
        cost = len(raw) + ITEM_OVERHEAD
        if current and size + cost > max_bytes:
            out.append(current)
            current, size = [], 0
        current.append(raw)
        size += cost
    if current:
        out.append(current)
    return out


def _field(frame: dict[str, Any], key: str) -> Any:
    if not isinstance(frame, dict):
        raise BadFrame("a frame is a map", field="frame")
    return frame.get(key)


def _flag(frame: dict[str, Any], key: str) -> bool:
    value = _field(frame, key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadFrame("must be true or false", field=key)
    return value


def _ids(items: Any, key: str, limit: int) -> list[bytes]:
    if not isinstance(items, list):
        raise BadFrame(f"must be a list of at most {limit} ids", field=key)
    if len(items) > limit:
        raise BadFrame(f"{len(items)} ids exceeds the limit of {limit}", field=key)
    if not all(isinstance(x, bytes) and len(x) == ID_BYTES for x in items):
        raise BadFrame(f"must hold {ID_BYTES}-byte ids", field=key)
    return items
