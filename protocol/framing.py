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

A fetch may name a *range* of (created, id) keys instead of ids (docs/protocol.md
§12): ``{"ids": [], "range": [lower created, lower prefix, upper created, upper
prefix], "limit": n}`` is answered ``{"e": [envelope, ...], "next": bound | nil}``,
the envelopes in key order and where to go on (``fetch_range``, ``range_next``).
A node that answers range fetches says so with ``"ranges": true`` in its
reconciliation replies (``answers_ranges``); an older node ignores the fields,
answers ``{"e": []}`` without ``next``, and is asked by id.

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
MAX_SIGNAL_ROOTS: Final = 256  # authors a graft or prune names (a tree per author, §12.7)
MAX_HOP_COUNT: Final = 255  # in a push's or an announcement's ``h``
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


def hop_counts(frame: dict[str, Any], count: int) -> tuple[int | None, ...]:
    """A push's or an announcement's ``h``: per envelope (or id), in order, the
    sender's hop count from the item's author (0: the sender wrote it), nil where
    it does not know. Absent (a node before the field, or one that floods): ``()``.
    It is not signed and decides only the shape of the tree (docs/mesh.md, "Tree
    push"): a false count costs a longer path, never an item. One to two bytes an
    item, within ``ITEM_OVERHEAD``."""
    value = _field(frame, "h")
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) != count:
        raise BadFrame(f"must hold one hop count per item ({count})", field="h")
    if not all(h is None or (type(h) is int and 0 <= h <= MAX_HOP_COUNT) for h in value):
        raise BadFrame(f"hop counts are integers 0..{MAX_HOP_COUNT} or nil", field="h")
    return tuple(value)


def id_list(frame: dict[str, Any], key: str = "ids", limit: int = MAX_FETCH_IDS) -> list[bytes]:
    """The frame's list of at most ``limit`` 32-byte ids."""
    return _ids(_field(frame, key), key, limit)


def author_list(frame: dict[str, Any]) -> list[bytes]:
    """A fetch's optional ``authors``: at most ``MAX_FETCH_AUTHORS`` 32-byte keys
    whose newest ``node`` records are wanted. Absent (a node before this field) means none."""
    value = _field(frame, "authors")
    return [] if value is None else _ids(value, "authors", MAX_FETCH_AUTHORS)


#: The largest ``created`` a bound may hold (2**64 - 1, the reconciliation's
#: infinity, which takes no id prefix).
BOUND_INFINITY: Final = 2**64 - 1

Bound = tuple[int, bytes]


@dataclass(frozen=True, slots=True)
class RangeAsked:
    """A range fetch: the keys k with ``lower <= k < upper``, at most ``limit``."""

    lower: Bound
    upper: Bound
    limit: int


def range_frame(lower: Bound, upper: Bound, limit: int) -> dict[str, Any]:
    """The fetch frame asking for a range; ``ids`` stays (empty) so an older node,
    which requires it, answers ``{"e": []}`` instead of refusing the frame."""
    return {"ids": [], "range": [lower[0], lower[1], upper[0], upper[1]], "limit": limit}


def fetch_range(frame: dict[str, Any]) -> RangeAsked | None:
    """A fetch's optional ``range`` and ``limit``: two bounds (created 0..2**64-1,
    an id prefix of at most 32 bytes, none with the infinite created), the lower
    below the upper, and 1..``MAX_FETCH_IDS`` envelopes (that many when absent).
    None when there is no ``range``. Raises only ``BadFrame``."""
    value = _field(frame, "range")
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 4:
        raise BadFrame("a range is [lower created, lower prefix, upper created, upper prefix]", field="range")
    lower, upper = _bound(value[0], value[1], "range"), _bound(value[2], value[3], "range")
    if not lower < upper:
        raise BadFrame("a range's lower bound must be below its upper bound", field="range")
    limit = frame.get("limit", MAX_FETCH_IDS)
    if type(limit) is not int or not 1 <= limit <= MAX_FETCH_IDS:
        raise BadFrame(f"must be an integer in 1..{MAX_FETCH_IDS}", field="limit")
    return RangeAsked(lower, upper, limit)


def range_next(reply: dict[str, Any]) -> Bound | None:
    """A range fetch reply's ``next``: the bound to ask from for the rest of the
    range, or None when the reply held the rest of it. Raises only ``BadFrame``
    (the caller checks first that the field is there at all: an older node's reply
    lacks it)."""
    value = _field(reply, "next")
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise BadFrame("next is [created, id prefix] or nil", field="next")
    return _bound(value[0], value[1], "next")


def answers_ranges(reply: dict[str, Any]) -> bool:
    """A reconciliation reply's ``ranges``: true when its sender answers range
    fetches. Absent (a node before the field) is false."""
    return _flag(reply, "ranges")


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
    it grafts its link to the receiver into the trees of ``roots`` (authors'
    keys; none: every tree) or prunes it from them."""

    announced: tuple[bytes, ...] = ()
    graft: bool = False
    prune: bool = False
    hops: tuple[int | None, ...] = ()  # per announced id, the sender's hop count (``hop_counts``)
    roots: tuple[bytes, ...] = ()


def tree_frame(signal: TreeSignal) -> dict[str, Any]:
    """The frame of ``signal``, naming only what it says."""
    frame: dict[str, Any] = {}
    if signal.announced:
        frame["ids"] = list(signal.announced)
        if len(signal.hops) == len(signal.announced):
            frame["h"] = list(signal.hops)
    if signal.graft:
        frame["graft"] = True
    if signal.prune:
        frame["prune"] = True
    if signal.roots and (signal.graft or signal.prune):
        frame["roots"] = list(signal.roots)
    return frame


def tree_signal(frame: dict[str, Any]) -> TreeSignal:
    """Read a tree signal: at most ``MAX_ANNOUNCE_IDS`` 32-byte ids under ``ids``,
    ``graft`` and ``prune`` true or absent and not both, and at least one of the
    three; ``roots``, with a graft or prune only, at most ``MAX_SIGNAL_ROOTS``
    32-byte keys; other keys are ignored (a later version's). Raises only ``BadFrame``."""
    ids = _field(frame, "ids")
    announced = () if ids is None else tuple(_ids(ids, "ids", MAX_ANNOUNCE_IDS))
    graft, prune = _flag(frame, "graft"), _flag(frame, "prune")
    if graft and prune:
        raise BadFrame("a tree signal grafts or prunes, not both", field="frame")
    if not (announced or graft or prune):
        raise BadFrame("a tree signal names ids, graft or prune", field="frame")
    listed = _field(frame, "roots")
    if listed is not None and not (graft or prune):
        raise BadFrame("roots come with a graft or a prune", field="roots")
    roots = () if listed is None else tuple(_ids(listed, "roots", MAX_SIGNAL_ROOTS))
    return TreeSignal(announced, graft, prune, hop_counts(frame, len(announced)) if announced else (), roots)


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


def _bound(created: Any, prefix: Any, key: str) -> Bound:
    if type(created) is not int or not 0 <= created <= BOUND_INFINITY:
        raise BadFrame("a bound's created is an integer in 0..2**64-1", field=key)
    if not isinstance(prefix, bytes) or len(prefix) > ID_BYTES:
        raise BadFrame(f"a bound's id prefix is at most {ID_BYTES} bytes", field=key)
    if created == BOUND_INFINITY and prefix:
        raise BadFrame("the infinite bound has no id prefix", field=key)
    return (created, prefix)


def _ids(items: Any, key: str, limit: int) -> list[bytes]:
    if not isinstance(items, list):
        raise BadFrame(f"must be a list of at most {limit} ids", field=key)
    if len(items) > limit:
        raise BadFrame(f"{len(items)} ids exceeds the limit of {limit}", field=key)
    if not all(isinstance(x, bytes) and len(x) == ID_BYTES for x in items):
        raise BadFrame(f"must hold {ID_BYTES}-byte ids", field=key)
    return items
