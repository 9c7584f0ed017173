"""What an ally asked to receive, and whether an alert is it.

A subscription is regions + minimum severity + whether drills count + which
scopes + one channel (and, for a webhook that opts in, several alerts per
request when they queue up: ``batch``). Matching is a pure function of the subscription and the
alert so the rule that decides who hears about an attack is testable on its own.

Security defaults chosen here (SPEC §8): ``restricted`` alerts are delivered
only when a subscription opts in explicitly, because a webhook or an Apprise
channel carries the text off this machine; and every channel passes the
outbound policy (node/outbound.py): public addresses only, over TLS, unless
the operator opened a range in ``allow_private_targets``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from node import catalogs
from node.errors import Refused
from node.outbound import OutboundPolicy, OutboundRefused, is_plaintext_apprise
from protocol import Alert, ProtocolError, regions
from protocol.alert import SCOPES, SEVERITIES

CHANNEL_KINDS = ("webhook", "apprise")
DEFAULT_SCOPES = ("public", "members")
MAX_REGIONS = 64
MAX_URL = 2000
MAX_LABEL = 80
# CAP severities, most severe first; "unknown" ranks lowest so that a minimum
# of "minor" still lets through alerts whose author could not judge severity.
_RANK = {name: len(SEVERITIES) - i for i, name in enumerate(SEVERITIES)}
_RANK["unknown"] = 0


class SubscriptionError(Refused, ValueError):
    """Bad subscription input; the message names the field."""


@dataclass(frozen=True)
class Channel:
    kind: str  # "webhook" | "apprise"
    url: str

    def redacted(self) -> str:
        """The URL without credentials or query, safe to show and to log."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if _safe_port(parts) else ""
        return f"{parts.scheme}://{host}{port}{parts.path if self.kind == 'webhook' else ''}"


@dataclass(frozen=True)
class Subscription:
    id: str
    label: str
    regions: tuple[str, ...]
    channel: Channel
    min_severity: str = "unknown"
    exercises: bool = False
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    created: int = 0
    secret: str = field(default="", repr=False)  # webhook HMAC key, hex
    lang: str = "en"  # the language of an Apprise channel's texts (a webhook's JSON has none)
    batch: bool = False  # a webhook that takes the alerts queued for it as a list, several per POST

    def wants(self, alert: Alert) -> bool:
        """True when ``alert`` (already opened, so readable by this node) belongs here.
        Looks at the alert's scope, status, msg_type, severity and areas' regions
        only: the delivery desk remembers the answer for those (``_matching_subs``)."""
        if alert.scope not in self.scopes:
            return False
        if alert.status != "actual" and not self.exercises:
            return False
        if alert.msg_type == "alert" and _RANK[alert.severity] < _RANK[self.min_severity]:
            return False  # updates and cancels always follow the alert they amend
        return any(regions.matches(mine, area.region) for mine in self.regions for area in alert.areas)

    def to_doc(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "regions": list(self.regions),
            "channel": {"kind": self.channel.kind, "url": self.channel.url},
            "min_severity": self.min_severity,
            "exercises": self.exercises,
            "scopes": list(self.scopes),
            "created": self.created,
            "secret": self.secret,
            "lang": self.lang,
            "batch": self.batch,
        }

    def public_doc(self) -> dict[str, Any]:
        """For listings: the channel without credentials and no secret."""
        doc = self.to_doc()
        doc["channel"] = {"kind": self.channel.kind, "url": self.channel.redacted()}
        del doc["secret"]
        return doc

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Subscription:
        ch = doc["channel"]
        return cls(
            id=doc["id"],
            label=doc.get("label", ""),
            regions=tuple(doc["regions"]),
            channel=Channel(ch["kind"], ch["url"]),
            min_severity=doc.get("min_severity", "unknown"),
            exercises=bool(doc.get("exercises", False)),
            scopes=tuple(doc.get("scopes", DEFAULT_SCOPES)),
            created=int(doc.get("created", 0)),
            secret=doc.get("secret", ""),
            lang=doc.get("lang", "en"),
            batch=bool(doc.get("batch", False)),
        )


def parse(
    doc: dict[str, Any], *, sub_id: str, secret: str, now: int, policy: OutboundPolicy
) -> Subscription:
    """Validate a request to subscribe; every error names the field at fault."""
    channel = parse_channel(doc.get("channel"), policy)
    batch = _flag(doc.get("batch", False), "batch")
    if batch and channel.kind != "webhook":
        raise SubscriptionError("batch: only a webhook takes several alerts in one request")
    return Subscription(
        id=sub_id,
        label=_label(doc.get("label", "")),
        regions=_regions(doc.get("regions")),
        channel=channel,
        min_severity=_choice(doc.get("min_severity", "unknown"), "min_severity", SEVERITIES),
        exercises=_flag(doc.get("exercises", False), "exercises"),
        scopes=_scopes(doc.get("scopes", list(DEFAULT_SCOPES))),
        created=now,
        secret=secret if channel.kind == "webhook" else "",
        lang=_lang(doc.get("lang") or "en"),
        batch=batch,
    )


def _lang(value: object) -> str:
    if value not in catalogs.available():
        raise SubscriptionError(f"lang: texts are written in {' or '.join(catalogs.available())}, not {value!r}")
    return str(value)


def parse_channel(value: object, policy: OutboundPolicy) -> Channel:
    if not isinstance(value, dict):
        raise SubscriptionError('channel: give {"kind": "webhook" | "apprise", "url": ...}')
    kind, url = value.get("kind"), value.get("url")
    if kind not in CHANNEL_KINDS:
        raise SubscriptionError(f"channel.kind: must be one of {', '.join(CHANNEL_KINDS)}")
    if not isinstance(url, str) or not url or len(url) > MAX_URL or any(c.isspace() for c in url):
        raise SubscriptionError("channel.url: a URL without spaces, at most 2000 characters")
    if kind == "webhook":
        _check_webhook(url)
    try:
        policy.check_url(url, plaintext=urlsplit(url).scheme == "http" if kind == "webhook" else is_plaintext_apprise(url))
    except OutboundRefused as exc:
        raise SubscriptionError(f"channel.url: {exc}") from None
    return Channel(kind, url)


def _check_webhook(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SubscriptionError("channel.url: a webhook URL starts with https://")
    try:
        parts.port  # noqa: B018 - urllib validates the port when it is read
    except ValueError:
        raise SubscriptionError("channel.url: the port is not a number between 1 and 65535") from None


def _safe_port(parts: Any) -> bool:
    try:
        return parts.port is not None
    except ValueError:
        return False


def _regions(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise SubscriptionError("regions: give at least one region such as MX or MX-OAX (or * for everywhere)")
    if len(value) > MAX_REGIONS:
        raise SubscriptionError(f"regions: at most {MAX_REGIONS}")
    near = tuple(str(code).strip().upper() for code in value)
    out = []
    for code in value:  # as people type them: mx-oax, Oaxaca (protocol.regions.resolve)
        try:
            out.append(regions.resolve(code, near).code)
        except ProtocolError as exc:
            raise SubscriptionError(f"regions: {exc.message}") from None
    return tuple(dict.fromkeys(out))


def _scopes(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [s.strip() for s in value.split(",") if s.strip()]
    if not isinstance(value, list) or not value:
        raise SubscriptionError(f"scopes: one or more of {', '.join(SCOPES)}")
    return tuple(dict.fromkeys(_choice(s, "scopes", SCOPES) for s in value))


def _choice(value: object, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise SubscriptionError(f"{name}: must be one of {', '.join(allowed)} (got {value!r})")
    return str(value)


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise SubscriptionError(f"{name}: must be true or false")
    return value


def _label(value: object) -> str:
    if not isinstance(value, str) or len(value) > MAX_LABEL:
        raise SubscriptionError(f"label: text of at most {MAX_LABEL} characters")
    return value.strip()
