"""The one error family of the protocol layer.

Every rejection carries a stable machine ``code`` (for metrics, peer scoring and
other implementations) and a human message that names the offending field.
Decoders and verifiers raise nothing else, whatever the bytes: a hostile peer
must never be able to turn malformed input into a crash.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every protocol rejection; ``code`` is stable across versions."""

    code = "protocol-error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        self.message = f"{field}: {message}" if field else message
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class TooLarge(ProtocolError):
    code = "too-large"


class Malformed(ProtocolError):
    """Bytes that are not msgpack, or not the shape of an envelope."""

    code = "malformed"


class NotCanonical(ProtocolError):
    code = "not-canonical"


class BadField(ProtocolError):
    code = "bad-field"


class BadText(BadField):
    """Text with a control character, line separator or bidi override where the
    protocol forbids it (see ``fields.text``): it could forge rows in a terminal
    or a log. Older nodes accepted some of these, so a relay may pass them on in
    good faith."""

    code = "bad-text"


class BadSignature(ProtocolError):
    code = "bad-signature"


class Expired(ProtocolError):
    code = "expired"


class FromTheFuture(ProtocolError):
    code = "from-the-future"


class UnknownType(ProtocolError):
    code = "unknown-type"


class UnsupportedVersion(ProtocolError):
    code = "unsupported-version"


class NotRecipient(ProtocolError):
    """A sealed body has no slot this key can open."""

    code = "not-recipient"


class BadCiphertext(ProtocolError):
    code = "bad-ciphertext"


class BadKeyFile(ProtocolError):
    code = "bad-key-file"


class WrongPassphrase(ProtocolError):
    code = "wrong-passphrase"


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
    )
)
