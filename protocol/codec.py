"""Canonical msgpack: one byte string per value, so ids and signatures are not malleable.

msgpack by itself is not canonical (``01`` and ``cd 00 01`` both mean 1), so the
decoder unpacks with hard limits and then re-encodes the value with the canonical
encoder: any difference is a rejection. Canonical form (docs/protocol.md §2):

* maps have text keys only, sorted by their UTF-8 bytes, no duplicates;
* integers in the shortest msgpack form (what msgpack-python emits);
* text is UTF-8 in Unicode NFC; binary uses the bin family (``use_bin_type``);
* no floats, no ext types (this also refuses the Timestamp extension);
* nesting depth at most ``MAX_DEPTH``.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Any

import msgpack

from protocol.errors import Malformed, NotCanonical, TooLarge

MAX_ENVELOPE_BYTES = 64 * 1024
MAX_DEPTH = 8
MAX_ARRAY_LEN = 1024
MAX_MAP_LEN = 64
MAX_STR_BYTES = MAX_ENVELOPE_BYTES
MAX_BIN_BYTES = MAX_ENVELOPE_BYTES
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1

Value = Any
"""A msgpack value in canonical form: dict[str, Value] | list[Value] | str | bytes |
int | bool | None."""


def encode(value: Value) -> bytes:
    """Encode ``value`` canonically; raises ``ProtocolError`` for values that have no
    canonical form (floats, non-text keys, non-NFC text, too deep)."""
    canonical = _canonical(value, "", 0)
    try:
        return msgpack.packb(canonical, use_bin_type=True)  # type: ignore[no-any-return]
    except (ValueError, OverflowError, TypeError) as exc:  # pragma: no cover - guarded above
        raise Malformed(str(exc)) from None


def decode(data: bytes, *, max_size: int = MAX_ENVELOPE_BYTES) -> Value:
    """Decode one canonical msgpack value with hard limits.

    Raises only ``ProtocolError``: ``too-large`` before any parsing, ``malformed``
    for bytes that are not one msgpack value within the limits, ``not-canonical``
    when the bytes are not exactly the canonical encoding of what they contain.
    """
    if type(data) is not bytes:  # exact bytes (the common case) need no copy
        if not isinstance(data, bytes | bytearray | memoryview):
            raise Malformed("input is not bytes")
        data = bytes(data)
    if len(data) > max_size:
        raise TooLarge(f"{len(data)} bytes exceeds the limit of {max_size}")
    value = _unpack(data, max_size)
    if not _is_canonical_tree([value], -1):
        _check(value, "", 0)  # raises, naming the field
        raise NotCanonical("bytes are not the canonical encoding of their value")  # pragma: no cover
    if encode_decoded(value) != data:
        raise NotCanonical("bytes are not the canonical encoding of their value")
    return value


def encode_decoded(value: Value) -> bytes:
    """Re-encode a value returned by ``decode`` (or a part of one, such as an
    envelope map without its signature) without walking it again.

    Only for such values: ``decode`` has checked them and their maps keep the
    sorted key order of the bytes they came from, so packing them as they are is
    their canonical encoding. This saves a second walk on the hot verify path."""
    try:
        return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]
    except (ValueError, OverflowError, TypeError) as exc:  # pragma: no cover - checked by decode
        raise Malformed(str(exc)) from None


def unpack_bounded(data: bytes, max_size: int) -> Value:
    """One msgpack value within the envelope limits, not checked canonical
    (``decode`` is the check): for reading what bytes claim, cheaply. Raises
    ``Malformed`` (a ``ProtocolError``)."""
    return _unpack(data, max_size)


def _unpack(data: bytes, max_size: int) -> Value:
    return read_one(
        data,
        max_bytes=max_size,
        max_str=min(MAX_STR_BYTES, max_size),
        max_bin=min(MAX_BIN_BYTES, max_size),
        max_array=MAX_ARRAY_LEN,
        max_map=MAX_MAP_LEN,
    )


def read_one(data: bytes, *, max_bytes: int, max_str: int, max_bin: int, max_array: int, max_map: int) -> Value:
    """Exactly one msgpack value from ``data`` within the given limits, or ``Malformed``
    naming what is wrong. The one place hostile msgpack is unpacked: envelopes (``decode``)
    and mesh frames (``protocol.framing``) both read through it, so a limit or a refusal
    (ext types, non-text map keys, trailing bytes) cannot be forgotten in one of them.

    ``msgpack.unpackb`` with the same limits reads well-formed input about a third
    faster than a streaming ``Unpacker``, but words its errors less clearly, so any
    input it refuses is read again by ``_read_one_explained`` for the message."""
    if len(data) <= max_bytes:  # the Unpacker's buffer limit; bigger input is refused below
        try:
            return msgpack.unpackb(data, **_unpack_options(max_str, max_bin, max_array, max_map))
        except Exception:  # noqa: S110 - refused: read again below for a precise message
            pass
    return _read_one_explained(data, max_bytes, max_str, max_bin, max_array, max_map)


@functools.lru_cache(maxsize=64)
def _unpack_options(max_str: int, max_bin: int, max_array: int, max_map: int) -> dict[str, Any]:
    """The limits and refusals both readers apply: the fast ``unpackb`` and the
    ``Unpacker`` that explains a refusal must never disagree on what is valid.
    Built once per set of limits (a few per process); callers only read it."""
    return {
        "max_str_len": max_str,
        "max_bin_len": max_bin,
        "max_array_len": max_array,
        "max_map_len": max_map,
        "max_ext_len": 0,
        "ext_hook": _refuse_ext,
        "strict_map_key": True,
        "raw": False,
        "use_list": True,
    }


def _read_one_explained(
    data: bytes, max_bytes: int, max_str: int, max_bin: int, max_array: int, max_map: int
) -> Value:
    """``read_one`` for input that ``unpackb`` refused: raises ``Malformed`` naming why."""
    unpacker = msgpack.Unpacker(
        max_buffer_size=max(max_bytes, 1), **_unpack_options(max_str, max_bin, max_array, max_map)
    )
    try:
        unpacker.feed(data)
        value = unpacker.unpack()
        trailing = unpacker.tell() != len(data)
    except msgpack.OutOfData:
        raise Malformed("truncated msgpack value") from None
    except msgpack.StackError:
        raise Malformed(f"nesting deeper than {MAX_DEPTH}") from None
    except UnicodeDecodeError:
        raise Malformed("text is not valid UTF-8") from None
    except Exception as exc:
        detail = str(exc)[:120] or type(exc).__name__
        raise Malformed(f"not a msgpack value within limits: {detail}") from None
    if trailing:
        raise Malformed("trailing bytes after the msgpack value")
    return value


def _refuse_ext(code: int, data: bytes) -> Value:
    """``max_ext_len=0`` still lets zero-length ext values through: refuse those too."""
    raise ValueError(f"ext type {code} is not allowed")


def _canonical(value: Value, path: str, depth: int) -> Value:
    """Check ``value`` has a canonical form; return it with maps in key order."""
    if depth > MAX_DEPTH:
        raise NotCanonical(f"nesting deeper than {MAX_DEPTH}", field=path or None)
    if value is None or isinstance(value, bool | bytes):
        return value
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise NotCanonical("integer out of the 64-bit range", field=path or None)
        return value
    if isinstance(value, str):
        if not unicodedata.is_normalized("NFC", value):
            raise NotCanonical("text is not in Unicode NFC", field=path or None)
        return value
    if isinstance(value, list | tuple):
        return [_canonical(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise NotCanonical("map keys must be text", field=path or None)
        out: dict[str, Value] = {}
        for key in sorted(value, key=_key_order):
            out[key] = _canonical(value[key], f"{path}.{key}" if path else key, depth + 1)
        return out
    if isinstance(value, float):
        raise NotCanonical("floats are not allowed (use integers)", field=path or None)
    raise NotCanonical(f"type {type(value).__name__} has no encoding", field=path or None)


_PLAIN_LEAVES = frozenset({bytes, int, bool, type(None)})


def _is_canonical_tree(container: list[Value] | dict[str, Value], depth: int) -> bool:
    """The hot-path form of ``_check`` (same rules, no field paths): are the
    children of ``container`` (itself at ``depth``) canonical? Recursion only for
    containers; the types are exactly those msgpack's unpacker produces."""
    if isinstance(container, dict):
        keys = list(container)
        try:
            "".join(keys)  # the C-speed form of "every key is text" (bytes keys raise)
        except TypeError:
            return False
        if keys != sorted(keys):
            return False
        items = container.values()
    else:
        items = container  # type: ignore[assignment]
    if depth >= MAX_DEPTH and items:
        return False
    for item in items:
        kind = type(item)
        if kind is str:
            # ASCII text is always NFC; isascii() reads a flag, is_normalized scans
            if not item.isascii() and not unicodedata.is_normalized("NFC", item):
                return False
        elif kind is dict or kind is list:
            if not _is_canonical_tree(item, depth + 1):
                return False
        elif kind not in _PLAIN_LEAVES:
            return False  # floats, ext values
    return True


def _check(value: Value, path: str, depth: int) -> None:
    """Explain why a freshly unpacked value is not canonical (``_canonical`` without
    building a copy): maps must already be in key order, as the bytes are compared
    with the re-encoding. Used only after ``_is_canonical_tree`` said no."""
    if depth > MAX_DEPTH:
        raise NotCanonical(f"nesting deeper than {MAX_DEPTH}", field=path or None)
    if isinstance(value, str):
        if not unicodedata.is_normalized("NFC", value):
            raise NotCanonical("text is not in Unicode NFC", field=path or None)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]", depth + 1)
    elif isinstance(value, dict):
        keys = list(value)
        if not all(isinstance(key, str) for key in keys):
            raise NotCanonical("map keys must be text", field=path or None)
        if keys != sorted(keys):  # code point order is UTF-8 byte order
            raise NotCanonical("map keys are not in sorted order", field=path or None)
        for key in keys:
            _check(value[key], f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, float):
        raise NotCanonical("floats are not allowed (use integers)", field=path or None)
    elif value is not None and not isinstance(value, bool | int | bytes):
        raise NotCanonical(f"type {type(value).__name__} has no encoding", field=path or None)


def _key_order(key: object) -> bytes:
    if not isinstance(key, str):
        raise NotCanonical("map keys must be text")
    return key.encode("utf-8", "surrogatepass")
