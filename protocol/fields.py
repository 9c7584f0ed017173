"""Field readers shared by the body types: each names the field it rejects.

Bodies arrive as plain maps from the canonical decoder; these readers turn them
into typed values or raise ``BadField`` with the field's dotted path, so a
message such as ``alert.areas[0].region: unknown region 'MX-OAXX'`` tells a
developer or an operator exactly what is wrong.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from protocol.errors import BadField, BadText

T = TypeVar("T")
KEY_BYTES = 32
ID_BYTES = 32
# Characters that let text from others forge what a terminal, log or list shows:
# C0 and C1 controls and DEL (ANSI escapes, carriage return), the line and paragraph
# separators U+2028/U+2029, and the bidi overrides and isolates U+202A–U+202E,
# U+2066–U+2069 (which reorder the rest of a row). Single-line fields refuse them
# all, newline and tab included; multi-line fields keep newline and tab.
_BIDI = "\u202a-\u202e\u2066-\u2069"
_SINGLE_LINE_BAD = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")
_MULTI_LINE_BAD = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029{_BIDI}]")


def require_map(value: object, path: str, allowed: Iterable[str]) -> Mapping[str, Any]:
    """``value`` as a map with no keys outside ``allowed`` (pass a frozenset on hot
    paths: the check is then one set operation in C)."""
    if not isinstance(value, dict):
        raise BadField("must be a map", field=path)
    if isinstance(allowed, frozenset) and value.keys() <= allowed:  # no set built when all is well
        return value
    unknown = value.keys() - (allowed if isinstance(allowed, frozenset) else set(allowed))
    if unknown:
        raise BadField(f"unknown field(s) {', '.join(sorted(map(str, unknown)))}", field=path)
    return value


def text(
    doc: Mapping[str, Any],
    key: str,
    path: str,
    *,
    max_chars: int,
    required: bool = False,
    multiline: bool = False,
) -> str:
    """A text field. Single-line (the default: names, headline, contact, area
    descriptions) refuses every control character, line separator and bidi
    override; ``multiline`` (description, instruction, notes) allows newline and tab."""
    value = doc.get(key, "")
    # Fast path: Python's non-printable characters include every one refused here
    # (Cc, Zl, Zp, and the Cf bidi controls), and isprintable() scans about twice
    # as fast as the regular expression; anything else takes the full checks.
    if type(value) is str and len(value) <= max_chars and value.isprintable() and (value.strip() or not required):
        return value
    if not isinstance(value, str):
        raise BadField("must be text", field=f"{path}.{key}")
    if required and not value.strip():
        raise BadField("must not be empty", field=f"{path}.{key}")
    if len(value) > max_chars:
        raise BadField(f"longer than {max_chars} characters", field=f"{path}.{key}")
    bad = (_MULTI_LINE_BAD if multiline else _SINGLE_LINE_BAD).search(value)
    if bad:
        kind = "a line break" if bad.group() in "\n\r\u2028\u2029" else "a control or bidi-override character"
        raise BadText(
            f"contains {kind} (U+{ord(bad.group()):04X}) at position {bad.start()}"
            + ("" if multiline else "; this field is one line"),
            field=f"{path}.{key}",
        )
    return value


def enum(
    doc: Mapping[str, Any], key: str, path: str, allowed: tuple[str, ...], default: str | None = None
) -> str:
    value = doc.get(key, default)
    if value not in allowed:
        raise enum_error(key, path, allowed, value)
    return str(value)


def enum_error(key: str, path: str, allowed: tuple[str, ...], value: object) -> BadField:
    """The refusal of ``enum``, for hot paths that test ``value in allowed`` inline."""
    return BadField(f"must be one of {', '.join(allowed)} (got {value!r})", field=f"{path}.{key}")


def key32(doc: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> bytes | None:
    value = doc.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, bytes) or len(value) != KEY_BYTES:
        raise BadField("must be 32 bytes", field=f"{path}.{key}")
    return value


def integer(
    doc: Mapping[str, Any], key: str, path: str, *, low: int, high: int, default: int | None = None
) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadField(f"must be an integer in [{low}, {high}]", field=f"{path}.{key}")
    return value


def drop_defaults(doc: dict[str, Any]) -> dict[str, Any]:
    """Optional fields are omitted at their default: one encoding per value."""
    return {k: v for k, v in doc.items() if v not in ("", None, [], False, 0) or k in _KEEP}


_KEEP = frozenset({"v", "c", "x"})


def build_frozen(cls: type[T], **values: Any) -> T:
    """Construct a frozen slotted dataclass without re-running ``__post_init__``:
    the values were just validated by ``from_wire``."""
    built = object.__new__(cls)
    for name, val in values.items():
        _SET(built, name, val)
    return built


_SET = object.__setattr__  # bound once: build_frozen runs for every body decoded


def frozen_builder(cls: type[T]) -> Callable[..., T]:
    """A constructor for the frozen slotted dataclass ``cls`` for values just
    validated by ``from_wire``: it takes every field (``init=False`` ones too)
    positionally, in declaration order, and skips ``__init__`` and
    ``__post_init__``. Each slot is set through its own descriptor, which is about
    twice as fast as ``build_frozen``'s keyword arguments and ``object.__setattr__``
    (the alert decoder builds one alert and every area of it this way)."""
    setters = tuple(getattr(cls, f.name).__set__ for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    # Unrolled, as dataclasses writes __init__: one call per slot, no loop. The
    # source is made here from field positions only, never from input.
    args = ", ".join(f"v{i}" for i in range(len(setters)))
    sets = "".join(f"    s{i}(built, v{i})\n" for i in range(len(setters)))
    source = f"def build({args}):\n    built = new(cls)\n{sets}    return built\n"
    scope: dict[str, Any] = {"new": object.__new__, "cls": cls} | {f"s{i}": s for i, s in enumerate(setters)}
    exec(source, scope)  # noqa: S102 - generated from the field count above
    return scope["build"]  # type: ignore[no-any-return]


EXT = "ext"
MAX_EXT_KEYS = 16
_EXT_KEY = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def check_extensions(doc: Mapping[str, Any], path: str) -> None:
    """``ext``: fields of later minor protocol versions. A node that does not know
    a key ignores it, but the bytes are signed and relayed unchanged, so newer
    nodes can add optional fields without older ones refusing their envelopes.
    Only the shape is checked here: a map of at most 16 lowercase keys, non-empty."""
    if EXT not in doc:
        return
    value = doc[EXT]
    if not isinstance(value, dict) or not value or len(value) > MAX_EXT_KEYS:
        raise BadField(f"must be a non-empty map of at most {MAX_EXT_KEYS} extension fields", field=f"{path}.{EXT}")
    for key in value:
        if not isinstance(key, str) or not _EXT_KEY.match(key):
            raise BadField("extension names are lowercase words with dashes", field=f"{path}.{EXT}")


def without_extensions(wire: object) -> object:
    """The part of a body this version understands (for the canonical check)."""
    if isinstance(wire, dict) and EXT in wire:
        return {k: v for k, v in wire.items() if k != EXT}
    return wire
