"""The local API's request and response shapes, written once as typed models.

Each model is a ``msgspec.Struct``: a handler decodes its body straight into
one (``node.routes.read_body``; validation runs in C while parsing) and
``node.openapi`` turns the same classes into the JSON Schemas of
``/api/v1/openapi.json``, so the contract served and the one enforced are the
same text. Limits (lengths, list sizes, the values of enumerations) come from
``protocol/`` and the desks' own constants, never new literals. Region codes are
only length-checked here: the use cases check them against the catalogue and
suggest a close code for a typo, which a schema pattern cannot.

Optional fields are ``None`` when absent (the CLI sends ``null`` for options
not given), and the use cases keep their defaults for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias

import msgspec
from msgspec import Meta, Struct, field

from node.allies.cap import MAX_CAP_BYTES
from node.allies.subscriptions import CHANNEL_KINDS, MAX_LABEL, MAX_REGIONS, MAX_URL
from node.errors import CODES
from node.response.desk import ROLES
from protocol import CERTAINTIES, EVENTS, SCOPES, SEVERITIES, STATUSES, URGENCIES
from protocol.alert import MAX_AREAS, MAX_CONTACT, MAX_DESCRIPTION, MAX_HEADLINE, MAX_INSTRUCTION
from protocol.bodies import ACK_STATES, MAX_NAME, MAX_NOTE
from protocol.regions import MAX_REGION_CHARS

if TYPE_CHECKING:  # the type checker sees text; msgspec sees the enumerations below
    Severity: TypeAlias = str
    Urgency: TypeAlias = str
    Certainty: TypeAlias = str
    Event: TypeAlias = str
    Scope: TypeAlias = str
    AlertStatus: TypeAlias = str
    AckState: TypeAlias = str
    Role: TypeAlias = str
    ChannelKind: TypeAlias = str
else:
    Severity, Urgency, Certainty = Literal[SEVERITIES], Literal[URGENCIES], Literal[CERTAINTIES]
    Event, Scope, AlertStatus = Literal[EVENTS], Literal[SCOPES], Literal[STATUSES]
    AckState, Role, ChannelKind = Literal[ACK_STATES], Literal[ROLES], Literal[CHANNEL_KINDS]

Region = Annotated[str, Meta(min_length=1, max_length=MAX_REGION_CHARS, description="ISO 3166 code, e.g. MX-OAX; * = everywhere")]
Duration = Annotated[str, Meta(max_length=16, description="a span such as 30m, 6h or 2d")]
PeerName = Annotated[str, Meta(max_length=MAX_NAME, description="a peer's name as `amparo peer list` shows it")]
HexId = Annotated[str, Meta(pattern="^[0-9a-f]{8,64}$", description="an alert id, or 8+ of its first hex digits")]
MAX_SHIFT_HOURS = 24 * 14  # a shift with override; without, the rotation allows 24 h
MAX_SEARCH_CHARS = 100  # a region name looked for
_HOURS = Meta(gt=0, le=MAX_SHIFT_HOURS)
Hours = Annotated[int, _HOURS]  # or a float: JSON numbers keep their type in the answer
Millis = Annotated[int, Meta(description="ms since the epoch")]
Pin = Annotated[str, Meta(max_length=8, description="4 to 8 digits (never shown again)")]
Phone = Annotated[str, Meta(max_length=16, description="an E.164 number, e.g. +525512345678")]
Lang = Annotated[str, Meta(max_length=8, description="the language of this person's pages: en or es")]


class Model(Struct, kw_only=True, omit_defaults=True):
    """The base of every model: fields by keyword, unknown fields ignored."""


# -- requests ----------------------------------------------------------------------------------
class AlertInput(Model):
    """A new alert, or the fields of an update (empty fields change nothing)."""

    headline: Annotated[str, Meta(max_length=MAX_HEADLINE)] | None = None
    regions: Annotated[list[Region], Meta(max_length=MAX_AREAS)] | None = None
    region: Region | None = None
    severity: Severity | None = None
    urgency: Urgency | None = None
    certainty: Certainty | None = None
    event: Event | None = None
    scope: Scope | None = None
    status: AlertStatus | None = None
    exercise: bool | None = None
    description: Annotated[str, Meta(max_length=MAX_DESCRIPTION)] | None = None
    instruction: Annotated[str, Meta(max_length=MAX_INSTRUCTION)] | None = None
    contact: Annotated[str, Meta(max_length=MAX_CONTACT)] | None = None
    language: str | None = None
    expires: Duration | None = None
    to: Annotated[list[PeerName], Meta(description="recipient peers (restricted)")] | None = None


class CancelInput(Model):
    reason: Annotated[str, Meta(max_length=MAX_DESCRIPTION, description="shown as the description")] | None = None
    expires: Duration | None = None
    to: list[PeerName] | None = None


class AckInput(Model):
    state: AckState | None = None
    note: Annotated[str, Meta(max_length=MAX_NOTE)] | None = None
    by: Annotated[str, Meta(description="the responder who answers (stops local paging)")] | None = None


class CompromisedInput(Model):
    confirm: Annotated[str, Meta(description="this node's exact name")]
    reason: str | None = None


class InboundSms(Model):
    sender: Annotated[str, Meta(max_length=32, description="the sender's number, +E.164")] = field(name="from")
    text: Annotated[str, Meta(max_length=1600)]
    id: Annotated[str, Meta(max_length=200, description="the gateway's id or time for this SMS")] | None = None


class WipeAlertInput(Model):
    confirm: Annotated[str, Meta(description="this node's exact name")]
    peers: Annotated[list[Annotated[str, Meta(max_length=MAX_NAME)]], Meta(min_length=1, max_length=64)]
    wait_ms: Annotated[int, Meta(description="how long to wait for the peers' acknowledgements")] | None = None


class RotateInput(Model):
    record: Annotated[str, Meta(description="the new key's node record with the hand-over (hex)")]
    seed: Annotated[str, Meta(description="the new signing seed sealed to this node's X25519 key (hex)")]


class InviteInput(Model):
    expires: Duration | None = None


class AcceptInput(Model):
    token: str
    verified: bool = False


class ResponderInput(Model):
    name: str = ""
    role: Role = "responder"
    channels: Annotated[list[str], Meta(description="Apprise URLs")] | None = None
    password: str | None = None
    drills: bool | None = None
    lang: Annotated[str, Meta(max_length=8, description="the language of this person's pages: en or es")] = "en"
    tz: Annotated[
        str, Meta(max_length=64, description="the IANA time zone of this person's pages; empty: the node's timezone")
    ] = ""
    phone: Phone = ""


class DrillRunInput(Model):
    scenario: Annotated[str, Meta(description="the scenario's TOML text (`amparo drill examples` lists the shipped ones)")]
    wait: Annotated[str | None, Meta(description="how long to wait for acknowledgements, e.g. 10m")] = None


class ShiftInput(Model):
    responder: str = ""
    start: Annotated[
        str | int, Meta(description="now, Unix ms, or an ISO time (without an offset: the node's timezone)")
    ] | None = None
    hours: Hours | Annotated[float, _HOURS] = 24
    backup: str | None = None
    override: bool | None = None


class HandoffInput(Model):
    to: str = ""
    note: str = ""


class NoteInput(Model):
    text: str = ""
    author: str = ""


class CheckinInput(Model):
    who: str | None = None
    region: Region | None = None
    note: str | None = None
    within: Duration | None = field(default=None, name="in")
    at: Annotated[
        str, Meta(max_length=40, description="a single deadline at this ISO time (without an offset: the node's timezone)")
    ] | None = None
    every: Duration | None = None
    grace: Duration | None = None
    to: list[PeerName] | None = None
    pin: Pin | None = None
    duress_pin: Pin | None = None
    lang: Annotated[Lang, Meta(description="the phone page's language; empty: the person's, else the browser's")] = ""


class PersonInput(Model):
    name: str = ""
    phone: Phone = ""
    lang: Lang = "en"


class SosLinkInput(Model):
    person: str
    pin: Pin | None = None
    duress_pin: Pin | None = None
    to: Annotated[list[PeerName], Meta(description="peers an SOS is sealed to; none: this organization")] | None = None
    region: Region | None = None


class Channel(Model):
    kind: ChannelKind
    url: Annotated[str, Meta(max_length=MAX_URL)]


class SubscriptionInput(Model):
    regions: Annotated[list[Region], Meta(min_length=1, max_length=MAX_REGIONS)]
    channel: Channel
    min_severity: Severity | None = None
    exercises: bool | None = None
    scopes: Annotated[list[Scope], Meta(min_length=1)] | None = None
    label: Annotated[str, Meta(max_length=MAX_LABEL)] | None = None
    lang: Annotated[str, Meta(max_length=8, description="language of an Apprise channel's texts (en, es)")] | None = None
    batch: Annotated[
        bool, Meta(description="webhook only: alerts that queue up go several per request, as a list (docs/allies.md)")
    ] | None = None


class CapImportInput(Model):
    cap: Annotated[str, Meta(max_length=MAX_CAP_BYTES, description="the CAP XML document")]
    region: Region | None = None
    scope: Literal["public", "members"] | None = None
    expires: Duration | None = None


# -- parameters --------------------------------------------------------------------------------
class AlertPath(Model):
    id: HexId


class PlainIdPath(Model):
    id: str


class NamePath(Model):
    name: str


class DrillPath(Model):
    id: str


class PeerPath(Model):
    peer: str


class TokenPath(Model):
    token: str


class FeedPath(Model):
    region: Annotated[str, Meta(description="a region code, or all")]


class AlertsQuery(Model):
    region: Region | None = None
    since: Duration | None = None
    limit: Annotated[int, Meta(ge=1, le=1000)] | None = None


class StreamQuery(Model):
    region: Region | None = None
    severity: Severity | None = None
    exercises: Literal["0", "1"] | None = None
    receipts: Annotated[
        Literal["0", "1"] | None,
        Meta(description="1: also `receipt` events (`{\"alerts\": [id, ...]}`) when delivery receipts for this node's alerts arrive"),
    ] = None


class StreamHeaders(Model):
    last_event_id: str | None = field(default=None, name="Last-Event-ID")


class RegionsQuery(Model):
    q: Annotated[str, Meta(min_length=1, max_length=MAX_SEARCH_CHARS)]


# -- answers -----------------------------------------------------------------------------------
class Answer(Model, forbid_unknown_fields=True):
    """The base of what the node answers: every field it sends is described
    (`additionalProperties: false`, checked by schemathesis in tests/e2e/test_openapi.py)."""


class ErrorDetail(Answer):
    code: Annotated[str, Meta(description="; ".join(f"`{c}`: {why}" for c, why in CODES.items()))]
    message: str


class Error(Answer):
    """Refused; `error.code` says why for a program, `error.message` for a person."""

    error: ErrorDetail


class Health(Answer):
    ok: bool
    name: str


class Failure(Answer):
    at: Millis
    text: Annotated[str, Meta(description="ends by saying whose side failed: (local side) or (remote side)")]


class Peer(Answer):
    """A peer as `NodeService.peer_json` writes it; `name` and the addresses are the peer's own words."""

    name: Annotated[str, Meta(description="self-chosen by the peer")]
    key: str
    fingerprint: str
    up: Annotated[bool, Meta(description="heard from within the liveness window and no call failed since")]
    last_failure: Failure | None
    state: Annotated[
        Literal["up", "failing", "down"],
        Meta(description="failing: the last call failed (until the next success); down: silent too long"),
    ] = "down"
    verified: Annotated[bool, Meta(description="the fingerprint was confirmed by voice at pairing")] = False
    addresses: list[str] = []
    tls_fingerprint: str = ""
    last_seen: Millis | None = None
    cut_off: Annotated[str | None, Meta(description="why this node refuses the peer now")] = None
    mark: int = 0
    status: str = ""


class Peers(Answer):
    peers: list[Peer]


class NodeDescription(Answer):
    name: str
    key: str
    fingerprint: str
    addresses: list[str]
    tls_fingerprint: str


class NodeId(NodeDescription):
    enc_key: str


class Status(Answer):
    name: str
    fingerprint: str
    now: Millis
    uptime_s: int
    envelopes_stored: int
    received: int
    stored: int
    pushed: int
    push_failures: int
    push_deferred: int
    reconciles: int
    rejected: dict[str, int]
    peers: list[Peer]
    peers_up: int
    escalations_paging: list[str]
    deliveries: list[dict[str, Any]]
    checkins: dict[str, int]


class Area(Answer):
    region: str
    desc: str | None = None
    circle: list[int] | None = None


class AuthorTrust(Answer):
    """How this node trusts an entry's author (`node.directory.Trust`)."""

    depth: Annotated[int | None, Meta(description="vouch hops from this node: 0 itself, 1 a peer; null outside the horizon")]
    vouched_by: Annotated[list[str], Meta(description="the vouchers one hop closer to this node, by name")]
    text: Annotated[str, Meta(description='in words: "vouched by Brigada Solidaria Norte"')]


class JointEndorser(Answer):
    key: str
    name: str
    signed: Annotated[bool, Meta(description="its endorsement is among the alert's signatures")]


class JointRelease(Answer):
    proposal: str
    threshold: int
    endorsers: list[JointEndorser]


class Entry(Answer):
    """An alert, update, cancel or acknowledgement as `node.alerts.alert_json`
    writes it: the envelope's facts always, the body's fields when this node can
    read it (`readable`), an alert's or an ack's fields as the case may be."""

    id: str
    type: str
    author: Annotated[str, Meta(description="the key its organization is shown under (newest of a rotation)")]
    author_name: str
    author_fingerprint: str
    author_trust: AuthorTrust | None
    signed_by: str
    created: Millis
    expires: Millis
    received_at: Millis
    from_peer: str | None
    sealed: bool
    readable: bool
    status: AlertStatus | None = None
    msg_type: str | None = None
    references: list[str] | None = None
    incident: Annotated[str, Meta(description="the original alert's id (an update's or cancel's links use it)")] | None = None
    scope: Scope | None = None
    event: Event | None = None
    urgency: Urgency | None = None
    severity: Severity | None = None
    certainty: Certainty | None = None
    headline: str | None = None
    description: str | None = None
    instruction: str | None = None
    contact: str | None = None
    language: str | None = None
    effective: Millis | None = None
    regions: list[str] | None = None
    areas: list[Area] | None = None
    alert: Annotated[str, Meta(description="an ack: the alert it answers")] | None = None
    state: AckState | None = None
    note: str | None = None
    joint: (
        Annotated[
            JointRelease, Meta(description="a joint alert released by k of n organizations (docs/joint.md)")
        ]
        | None
    ) = None


class OrgResponse(Answer):
    organization: str
    key: str
    fingerprint: str
    first_ack: Millis
    time_to_ack_s: float
    state: AckState
    note: str
    at: Millis


class ListedAlert(Entry):
    """An alert in its current state: its fields as its author's latest update
    gives them (`node.alerts.current_state`), whether it was cancelled, how many
    updates (always sent; the defaults only keep the type checker's field order)."""

    cancelled: bool = False
    updates: int = 0
    sent_headline: Annotated[str, Meta(description="the headline first sent; the others show the latest update")] = ""
    cancel_reason: Annotated[str, Meta(description="why its author cancelled it (the cancel's description)")] = ""
    responses: Annotated[list[OrgResponse], Meta(description="per organization, its latest ack")] = []


class ReceiptOrg(Answer):
    key: Annotated[str, Meta(description="the organization's key (the newest of its rotation family), hex")]
    name: str
    fingerprint: str
    stored_at: Annotated[Millis | None, Meta(description="when it stored the alert (absent: missing)")] = None


class Receipts(Answer):
    """Delivery receipts of an alert this node sent (docs/protocol.md §6.7)."""

    reached: Annotated[int, Meta(description="organizations that stored it, of `of`")]
    of: Annotated[int, Meta(description="organizations that should hold it: the trust horizon, or the recipients")]
    organizations: Annotated[list[ReceiptOrg], Meta(description="who stored it and when, first first")]
    missing: Annotated[list[ReceiptOrg], Meta(description="who should hold it and has not said so")]
    others: Annotated[list[ReceiptOrg], Meta(description="who stored it without being counted in `of`")]


class AlertDetail(ListedAlert):
    timeline: Annotated[list[Entry], Meta(description="updates, cancels and acks, by time")] = []
    escalation: dict[str, Any] | None = None
    notes: list[dict[str, Any]] = []
    receipts: Annotated[
        Receipts | None, Meta(description="for an alert this node sent: who it reached; null otherwise")
    ] = None


class Sent(Answer):
    id: str
    created: Millis
    sealed: bool


class Updated(Sent):
    incident: Annotated[str, Meta(description="the original alert's id, which every link uses")]
    changed: Annotated[
        dict[str, list[Any]], Meta(description="what the update changed: field → [before, after]")
    ]


class Cancelled(Sent):
    incident: Annotated[str, Meta(description="the original alert's id, which every link uses")]
    headline: Annotated[str, Meta(description="the incident's headline as it stood")]
    reason: str


class Acked(Answer):
    id: str
    sealed: bool
    state: AckState


class Alerts(Answer):
    alerts: list[ListedAlert]


class Revocation(Answer):
    revocation: str
    key: str


class SmsHandled(Answer):
    acted: Annotated[bool, Meta(description="the node did what the SMS asked")]
    reply: Annotated[str, Meta(description="the text to send back to the sender (empty: send nothing)")]
    reason: Annotated[str, Meta(description="why it was refused, in one line (never the text or PIN)")]
    kind: Annotated[str, Meta(description="checked-in, help-asked or ack when acted")]


class PeerWarned(Answer):
    alert: Annotated[bool, Meta(description="the peer acknowledged the sealed duress alert")]
    compromise: Annotated[bool, Meta(description="the peer acknowledged the compromise declaration")]


class WipeAlerted(Answer):
    alert: str
    revocation: str
    peers: dict[str, PeerWarned]


class Rotated(Answer):
    record: str
    key: str
    fingerprint: str


class Invite(Answer):
    token: str
    expires: Millis
    fingerprint: str


class Paired(Answer):
    peer: NodeDescription


class PeerRemoved(Answer):
    removed: str
    name: str


class Removed(Answer):
    removed: str


class Responders(Answer):
    responders: list[dict[str, Any]]


class ShiftAdded(Answer):
    start: Millis
    hours: float
    warnings: list[str]


class HandedOver(Answer):
    at: Millis
    from_: str = field(name="from")
    to: str
    note: str
    notified: str


class NoteAdded(Answer):
    alert: str


class CheckinStarted(Answer):
    id: str
    next_deadline: Millis
    link: str
    loopback: Annotated[bool, Meta(description="true when a phone cannot open the link: set public_url")]


class CheckinState(Answer):
    id: str
    state: str
    next_deadline: Millis | None = None


class Checkins(Answer):
    checkins: list[dict[str, Any]]


class Person(Answer):
    name: str
    phone: str
    lang: str


class People(Answer):
    people: list[Person]


class SosLink(Answer):
    person: str
    link: str
    region: str
    pins: Annotated[bool, Meta(description="whether the page asks for a PIN")]
    loopback: Annotated[bool, Meta(description="true when a phone cannot open the link: set public_url")]


class Subscriptions(Answer):
    subscriptions: list[dict[str, Any]]


class RegionName(Answer):
    code: str
    name: str


class Regions(Answer):
    regions: list[RegionName]


class CapImported(Answer):
    id: str
    source: str
    msg_type: str
    references: list[str]


def schemas(models: list[Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The JSON Schemas of ``models`` (references into ``components``) and the components."""
    refs, components = msgspec.json.schema_components(models, ref_template="#/components/schemas/{name}")
    return list(refs), dict(components)


# -- joint releases, k of n (node.joint, docs/protocol.md §13) ---------------------------------
class ProposalInput(AlertInput):
    """A joint alert proposed to named organizations; released once `threshold` endorse it."""

    endorsers: (
        Annotated[
            list[Annotated[str, Meta(max_length=MAX_NAME + 1)]],
            Meta(max_length=16, description="organizations (names or 64-hex keys); this node is always one"),
        ]
        | None
    ) = None
    threshold: (
        Annotated[int, Meta(ge=1, le=16, description="how many endorsements release the alert")] | None
    ) = None
    deadline: Annotated[Duration | None, Meta(description="how long endorsers have (default 2h)")] = None


class ObjectionInput(Model):
    reason: Annotated[str, Meta(max_length=500)] | None = None


class ProposalPath(Model):
    id: HexId


class Proposed(Answer):
    id: str
    created: Millis
    deadline: Millis
    endorsers: list[str]
    threshold: int


class Voted(Answer):
    id: str
    proposal: str
    vote: Literal["endorsed", "objected"]


class EndorserVote(Answer):
    key: str
    name: str
    vote: Literal["endorsed", "objected"] | None
    at: Millis | None = None
    reason: str | None = None


class ListedProposal(Answer):
    id: str
    proposer: str
    proposer_name: str
    created: Millis
    deadline: Millis
    state: Annotated[
        Literal["open", "released", "expired"], Meta(description="released: k endorsements held")
    ]
    threshold: int
    endorsed: int
    objected: int
    releases: Annotated[list[str], Meta(description="ids of the released public alert")]
    waiting_for_me: Annotated[bool, Meta(description="this organization is named and has not answered")]
    headline: str
    severity: Severity
    scope: Scope
    regions: list[str]
    description: str
    instruction: str
    endorsers: list[EndorserVote]


class Proposals(Answer):
    proposals: list[ListedProposal]
