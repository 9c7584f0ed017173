"""The one error family of the protocol layer.

Every rejection carries a stable machine ``code`` (for metrics, peer scoring and
other implementations) and a human message that names the offending field.
Decoders and verifiers raise nothing else, whatever the bytes: a hostile peer
must never be able to turn malformed input into a crash.

Each error class also says whether it **blames the sender** (SPEC §8, "Blame
only what a peer did"). A relay must verify what it relays, so bytes that are
not a canonical envelope, break a fixed rule of this protocol version or carry
a bad signature prove that the peer who sent them misbehaved: they cost it
score. Refusals that depend on the receiver's clock (expired, from the future)
or on the receiver's version (an unknown body type or protocol version), and
anything a relay cannot check (a sealed body it cannot open), prove nothing
about the relay: they are counted, and never scored. Otherwise one hostile
author, or one upgrade, could get honest relays banned. ``BLAMED_CODES`` and
``SILENT_CODES`` are the same rule as data (docs/protocol.md §9).

Errors of the frame codec (``protocol.framing``) also say which side of an
exchange failed, as h11's ``LocalProtocolError`` and ``RemoteProtocolError`` do:
``BadFrame`` is the remote side's (a peer sent bytes that are not a frame),
``CannotEncode`` the local side's (this node tried to send what no frame can
carry: a bug here, never a peer's).
"""

from __future__ import annotations

from typing import ClassVar, Literal

Side = Literal["local", "remote"]
"""Which side of an exchange failed: this node (``local``) or the peer and the path
to it (``remote``)."""


class ProtocolError(Exception):
    """Base of every protocol rejection; ``code`` is stable across versions.

    ``blames_sender`` is True when the error proves that whoever handed over the
    bytes misbehaved (a relay should have refused them too); False when an honest
    relay could have passed them on in good faith."""

    code = "protocol-error"
    blames_sender: ClassVar[bool] = False

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        self.message = f"{field}: {message}" if field else message
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class TooLarge(ProtocolError):
    code = "too-large"
    blames_sender = True


class Malformed(ProtocolError):
    """Bytes that are not msgpack, or not the shape of an envelope."""

    code = "malformed"
    blames_sender = True


class BadFrame(Malformed):
    """A mesh frame (docs/protocol.md §12) that is not msgpack within its limits or
    not the shape its path expects: whoever sent it is at fault."""

    code = "bad-frame"
    blames_sender = True
    side: ClassVar[Side] = "remote"


class CannotEncode(ProtocolError):
    """A value this node tried to put in a frame that msgpack cannot carry: a bug on
    this side, which no peer caused and no peer is blamed for."""

    code = "cannot-encode"
    blames_sender = False
    side: ClassVar[Side] = "local"


class NotCanonical(ProtocolError):
    code = "not-canonical"
    blames_sender = True


class BadField(ProtocolError):
    code = "bad-field"
    blames_sender = True


class BadText(BadField):
    """Text with a control character, line separator or bidi override where the
    protocol forbids it (see ``fields.text``): it could forge rows in a terminal
    or a log. Older nodes accepted some of these, so a relay may pass them on in
    good faith."""

    code = "bad-text"
    blames_sender = False


class BadSignature(ProtocolError):
    code = "bad-signature"
    blames_sender = True


class Expired(ProtocolError):
    """Past its expiry on the receiver's clock: it may have expired in flight."""

    code = "expired"
    blames_sender = False


class FromTheFuture(ProtocolError):
    """Created too far ahead of the receiver's clock (whose clock is wrong is unknown)."""

    code = "from-the-future"
    blames_sender = False


class UnknownType(ProtocolError):
    """A body type this version does not know (a newer node may)."""

    code = "unknown-type"
    blames_sender = False


class UnsupportedVersion(ProtocolError):
    """A protocol version this node does not speak (a newer node may)."""

    code = "unsupported-version"
    blames_sender = False


class NotRecipient(ProtocolError):
    """A sealed body has no slot this key can open."""

    code = "not-recipient"
    blames_sender = False


class BadCiphertext(ProtocolError):
    """A sealed body that does not open: relays carry ciphertext they cannot check."""

    code = "bad-ciphertext"
    blames_sender = False


class BadEndorsement(ProtocolError):
    """A released alert whose endorsements do not prove its threshold (docs/protocol.md
    §13): too few, not the named endorsers, a signature that does not verify, made
    after the deadline. The proof rides in ``ext``, which relays before threshold
    release pass on unread, so it proves nothing about the relay; the envelope's
    own signature is checked first and still blames."""

    code = "bad-endorsement"
    blames_sender = False


class BadKeyFile(ProtocolError):
    code = "bad-key-file"
    blames_sender = False


class WrongPassphrase(ProtocolError):
    code = "wrong-passphrase"
    blames_sender = False


ERROR_CODES: tuple[str, ...] = tuple(
    cls.code
    for cls in (
        ProtocolError,
        TooLarge,
        Malformed,
        NotCanonical,
        BadField,
        BadSignature,
        Expired,
        FromTheFuture,
        UnknownType,
        UnsupportedVersion,
        NotRecipient,
        BadCiphertext,
        BadKeyFile,
        WrongPassphrase,
        BadText,
        BadFrame,
        CannotEncode,
        BadEndorsement,
    )
)


def _family(root: type[ProtocolError]) -> tuple[type[ProtocolError], ...]:
    """``root`` and every subclass at any depth (breadth first), so a new error
    class is classified, blamed or silent, without a second list to keep."""
    found = [root]
    for cls in found:
        found.extend(sub for sub in cls.__subclasses__() if sub not in found)
    return tuple(found)


ERROR_CLASSES: tuple[type[ProtocolError], ...] = _family(ProtocolError)
BLAMED_CODES: frozenset[str] = frozenset(cls.code for cls in ERROR_CLASSES if cls.blames_sender)
"""Codes that prove the sending peer misbehaved: only these cost it score."""
SILENT_CODES: frozenset[str] = frozenset(cls.code for cls in ERROR_CLASSES) - BLAMED_CODES
"""Codes refused without blame: time, the receiver's version, or what a relay cannot check."""


def blames_sender(code: str) -> bool:
    """Does a rejection with this code prove the sending peer misbehaved?
    Unknown codes (from a newer version) never do."""
    return code in BLAMED_CODES
