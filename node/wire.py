"""Framing of mesh request and response bodies.

Envelopes inside a frame are verified one by one by ``protocol.decode``; the
frame itself is plain msgpack read with hard limits, because a hostile peer
controls every byte of it. ``MAX_FRAME_BYTES`` is the listener's body limit: one
maximum-size envelope plus room for the frame around it.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack

from mesh.outbox import Pacing
from protocol.codec import MAX_ENVELOPE_BYTES

MAX_FRAME_BYTES: Final = MAX_ENVELOPE_BYTES + 1024
FRAME_SLACK: Final = 64  # the frame's own map and list headers
ITEM_OVERHEAD: Final = 5  # a bin32 header per envelope
PUSH_BATCH_ITEMS: Final = 256
# Outbound batches sized to one frame: each batch in flight is then one request,
# instead of a full frame and a small remainder (half the round trips per item).
PUSH_PACING: Final = Pacing(
    batch_items=PUSH_BATCH_ITEMS,
    batch_bytes=MAX_FRAME_BYTES - FRAME_SLACK - ITEM_OVERHEAD * PUSH_BATCH_ITEMS,
)


class FrameError(Exception):
    """A frame that is not msgpack within limits, or not the expected shape."""


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def unpack(data: bytes, max_bytes: int = MAX_FRAME_BYTES) -> dict[str, Any]:
    if len(data) > max_bytes:
        raise FrameError(f"frame of {len(data)} bytes exceeds {max_bytes}")
    unpacker = msgpack.Unpacker(
        max_buffer_size=max(max_bytes, 1),
        max_str_len=max_bytes,
        max_bin_len=max_bytes,
        max_array_len=8192,
        max_map_len=64,
        max_ext_len=0,
        strict_map_key=True,
        raw=False,
    )
    try:
        unpacker.feed(data)
        value = unpacker.unpack()
        if unpacker.tell() != len(data):
            raise FrameError("trailing bytes after the frame")
    except FrameError:
        raise
    except Exception as exc:
        raise FrameError(f"not a msgpack frame within limits ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise FrameError("a frame is a map")
    return value


def envelope_list(frame: dict[str, Any], key: str = "e") -> list[bytes]:
    items = frame.get(key)
    if not isinstance(items, list) or not all(isinstance(x, bytes) for x in items):
        raise FrameError(f"frame field {key!r} must be a list of envelopes (bytes)")
    return items


def id_list(frame: dict[str, Any], key: str = "ids", limit: int = 1024) -> list[bytes]:
    items = frame.get(key)
    if not isinstance(items, list) or len(items) > limit:
        raise FrameError(f"frame field {key!r} must be a list of at most {limit} ids")
    if not all(isinstance(x, bytes) and len(x) == 32 for x in items):
        raise FrameError(f"frame field {key!r} must hold 32-byte ids")
    return items


def batches(raws: list[bytes], max_bytes: int = MAX_FRAME_BYTES - FRAME_SLACK) -> list[list[bytes]]:
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


def deferred_ids(reply: dict[str, Any], sent: int) -> list[bytes]:
    """The push reply's ``deferred``: ids the receiver refused for a budget, to send
    again later. Absent (a node before this field) means none; anything but a list
    of at most ``sent`` 32-byte ids is a malformed reply."""
    items = reply.get("deferred", [])
    if not isinstance(items, list) or len(items) > sent:
        raise FrameError(f"push reply field 'deferred' must be a list of at most {sent} ids")
    if not all(isinstance(x, bytes) and len(x) == 32 for x in items):
        raise FrameError("push reply field 'deferred' must hold 32-byte ids")
    return items
