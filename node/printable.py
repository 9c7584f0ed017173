"""Text from others, made safe to print: one escaping rule for logs and terminals.

A peer chooses its node name, an author the headline, a hostile listener its
error body. Printed raw, a newline forges a row in ``alert list``, a log line
or ``watch``; a carriage return or an ANSI escape rewrites what is on screen;
a bidi override (U+202E) shows the rest of a row backwards. The protocol
refuses these in new envelopes (docs/protocol.md §6, Text), but names, old
rows and error bodies still arrive, so everything a peer supplies passes
through ``printable`` on its way to a log or a terminal. The escapes are
Python's own (``\\n``, ``\\x1b``, ``\\u202e``): visible, unambiguous, one line.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls, line/paragraph separators, bidi embeddings,
# overrides and isolates: the same set the protocol refuses (protocol/fields.py).
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_IN_BLOCK = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _SHORT.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(value: object) -> str:
    """``value`` as one line with every unsafe character escaped."""
    return UNSAFE.sub(_escape, str(value))


def printable_block(value: object, indent: str) -> str:
    """Multi-line text (a description, an instruction): newlines and tabs are kept,
    but every line after the first starts with ``indent`` so it cannot pose as a
    row or a label of its own; everything else unsafe is escaped."""
    text = _UNSAFE_IN_BLOCK.sub(_escape, str(value))
    return ("\n" + indent).join(text.split("\n"))


def json_text(dumped: str) -> str:
    """A JSON document (``json.dumps(..., ensure_ascii=False)``) with the unsafe
    characters left raw by that call written as ``\\uXXXX`` escapes instead: the
    same JSON value, safe on a terminal. ``json.dumps`` already escapes C0
    controls inside strings, so a raw newline or tab is indentation and stays;
    what is left raw (DEL, C1, separators, bidi) can only be inside a string."""
    return _LEFT_RAW_BY_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", dumped)


_LEFT_RAW_BY_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
