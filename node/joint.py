"""Joint denunciations: threshold release, k of n (docs/protocol.md §13, docs/joint.md).

An organization proposes a public alert to n named organizations (itself among
them) with a threshold k and a deadline; each endorses or objects; once k
endorsements are held the alert is released as an ordinary public alert that
carries the endorsers' signatures, so every node checks the threshold itself.

This desk keeps what this node can read of each proposal in memory. Proposals,
endorsements and objections are sealed envelopes in the store, so the desk is
rebuilt from them at start (``NodeService`` shows it every stored envelope) and
writes nothing of its own: no table, no migration.

**Who releases.** Every endorser's node that holds k valid endorsements before
the deadline, and has seen no release of that proposal, may release it, but
not at once: the proposer's node first (rank 0, at once), then the other
endorsers in the proposal's order, each ``RELEASE_STAGGER_MS`` later than the
one before, counted from when this node first held k. So one release is made
while the proposer is up; if it was raided or is offline, the next endorser
takes over a minute later. A release seen stops every later one. Two releases
of one proposal can still be made across a partition; both verify, and both are
listed with the same ``proposal`` id (docs/joint.md says so).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from node.alerts import DEFAULT_TTL_MS, alert_from_request, parse_duration
from node.errors import Refused
from node.incidents import AlertHost, author_or_refuse, refuse_if_compromised
from protocol import (
    Alert,
    Endorsement,
    Envelope,
    Objection,
    Proposal,
    ProtocolError,
    Release,
    codec,
    fingerprint,
    seal_envelope,
    sign_release,
    threshold,
)
from protocol.threshold import MAX_ENDORSERS, MAX_OBJECTION, Statement

log = logging.getLogger("amparo.joint")

DEFAULT_DEADLINE_MS = 2 * 3600 * 1000
MIN_DEADLINE_MS = 5_000
MAX_DEADLINE_MS = 7 * 24 * 3600 * 1000
RELEASE_STAGGER_MS = 60_000


class ProposalNotFound(Refused):
    code, status = "not-found", 404


class CannotVote(Refused):
    code, status = "cannot-vote", 409


@dataclass
class Vote:
    """One organization's answer: an endorsement (with its signature) or an objection."""

    endorser: bytes
    created: int
    endorsed: bool
    sig: bytes = b""
    reason: str = ""


@dataclass
class Joint:
    """A proposal as this node knows it."""

    envelope: Envelope
    proposal: Proposal
    statement: Statement
    votes: dict[bytes, Vote] = field(default_factory=dict)
    releases: list[bytes] = field(default_factory=list)
    held_since: int | None = None

    @property
    def id(self) -> bytes:
        return self.envelope.id

    @property
    def deadline(self) -> int:
        return self.envelope.expires

    @property
    def endorsements(self) -> list[Vote]:
        """Valid endorsements, in the proposal's endorser order."""
        return [self.votes[k] for k in self.proposal.endorsers if k in self.votes and self.votes[k].endorsed]

    @property
    def objections(self) -> list[Vote]:
        return [v for v in self.votes.values() if not v.endorsed]

    def state(self, now: int) -> str:
        if self.releases:
            return "released"
        return "expired" if now > self.deadline else "open"

    def rank(self, key: bytes) -> int:
        """0 for the proposer, then the other endorsers in the proposal's order."""
        others = [k for k in self.proposal.endorsers if k != self.envelope.author]
        return 0 if key == self.envelope.author else 1 + others.index(key)


class JointHost(AlertHost, Protocol):
    def recipients_of(self, env: Envelope) -> list[bytes]: ...


class JointDesk:
    def __init__(self, host: JointHost) -> None:
        self.host = host
        self.joints: dict[bytes, Joint] = {}
        self._early: dict[
            bytes, list[tuple[Envelope, Endorsement | Objection]]
        ] = {}  # votes before their proposal
        self._released: dict[bytes, list[bytes]] = {}  # proposal id -> release alert ids seen

    # -- what arrives (every stored envelope passes here, at start too) -----------------
    def observe(self, env: Envelope, body: Proposal | Endorsement | Objection) -> None:
        if isinstance(body, Proposal):
            self._add_proposal(env, body)
        else:
            joint = self.joints.get(body.proposal)
            if joint is None:
                self._early.setdefault(body.proposal, []).append((env, body))
            else:
                self._add_vote(joint, env, body)

    def observe_alert(self, env: Envelope) -> None:
        """An unsealed alert: when it is a release, that proposal is done."""
        try:
            release = threshold.release_of(codec.decode(env.raw)["b"])
        except ProtocolError:
            return
        if release is None:
            return
        self._released.setdefault(release.proposal, []).append(env.id)
        joint = self.joints.get(release.proposal)
        if joint is not None and env.id not in joint.releases:
            joint.releases.append(env.id)

    def _add_proposal(self, env: Envelope, body: Proposal) -> None:
        if env.author not in body.endorsers or env.id in self.joints:
            return  # the proposer is always one of the endorsers (§13.1)
        joint = Joint(env, body, body.statement(env.id, env.expires))
        joint.releases.extend(self._released.get(env.id, []))
        self.joints[env.id] = joint
        for vote_env, vote in self._early.pop(env.id, []):
            self._add_vote(joint, vote_env, vote)

    def _add_vote(self, joint: Joint, env: Envelope, body: Endorsement | Objection) -> None:
        """Keep a vote that answers this proposal: by a named endorser, about this
        alert, before the deadline; an endorsement's signature must verify. An
        organization's first vote (by time) is its vote."""
        if env.author not in joint.proposal.endorsers or body.alert != joint.statement.alert:
            return
        if env.created > joint.deadline:
            return
        if isinstance(body, Endorsement):
            try:
                joint.statement.verify(env.author, body.sig)
            except ProtocolError:
                log.warning("endorsement %s does not verify; ignored", env.id.hex()[:12])
                return
        earlier = joint.votes.get(env.author)
        if earlier is not None and earlier.created <= env.created:
            return
        joint.votes[env.author] = (
            Vote(env.author, env.created, True, sig=body.sig)
            if isinstance(body, Endorsement)
            else Vote(env.author, env.created, False, reason=body.reason)
        )

    # -- releasing --------------------------------------------------------------------
    def consider(self, proposal_id: bytes | None = None) -> None:
        """Release what this node should release now (after a vote arrives, and on every tick)."""
        now = self.host.clock()
        for joint in [self.joints[proposal_id]] if proposal_id in self.joints else list(self.joints.values()):
            try:
                env = self._due(joint, now)
                if env is None:
                    continue
                author_or_refuse(self.host, env)
            except (Refused, ProtocolError) as exc:  # never a traceback out of the mesh loop
                log.warning("could not release proposal %s: %s", joint.id.hex()[:12], exc)
                continue
            log.info("released proposal %s as alert %s", joint.id.hex()[:12], env.id.hex()[:12])

    def _due(self, joint: Joint, now: int) -> Envelope | None:
        me = self.host.identity.sign_public
        if joint.releases or now > joint.deadline or me not in joint.proposal.endorsers:
            return None
        held = joint.endorsements
        if len(held) < joint.proposal.threshold:
            return None
        if joint.held_since is None:
            joint.held_since = now
        if now < joint.held_since + joint.rank(me) * RELEASE_STAGGER_MS:
            return None
        release = Release(
            joint.id, joint.proposal.endorsers, joint.proposal.threshold, joint.proposal.life,
            joint.deadline, tuple((v.endorser, v.sig) for v in held),
        )  # fmt: skip
        # not noted in joint.releases here: storing it does that (observe_alert), so a
        # release the node refuses to store is tried again at the next tick
        return sign_release(self.host.identity, joint.proposal.alert, release, created=now)

    # -- what a person does -----------------------------------------------------------
    def propose(self, doc: dict[str, Any]) -> dict[str, Any]:
        """A new proposal from what a person entered, and this node's own endorsement."""
        refuse_if_compromised(self.host)
        host = self.host
        me = host.identity.sign_public
        endorsers = resolve_endorsers(host, doc.get("endorsers") or [])
        if me not in endorsers:
            endorsers.insert(0, me)
        if len(endorsers) > MAX_ENDORSERS:
            raise Refused(f"endorsers: at most {MAX_ENDORSERS} organizations")
        if len(endorsers) < 2:
            raise Refused("endorsers: name at least one other organization")
        k = doc.get("threshold")
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= len(endorsers):
            raise Refused(
                f"threshold: a number from 1 to {len(endorsers)} (the endorsers, this node included)"
            )
        scope = str(doc.get("scope") or "public")
        if scope == "restricted":
            raise Refused("scope: a joint release is public or members, never restricted")
        alert = alert_from_request(doc | {"scope": scope}, near=tuple(host.desk.watch))
        life = parse_duration(doc["expires"], "expires") if doc.get("expires") else DEFAULT_TTL_MS
        deadline = parse_duration(doc["deadline"], "deadline") if doc.get("deadline") else DEFAULT_DEADLINE_MS
        if not MIN_DEADLINE_MS <= deadline <= MAX_DEADLINE_MS:
            raise Refused("deadline: between 5 seconds and 7 days")
        try:
            proposal = Proposal(alert, tuple(endorsers), k, life)
        except ProtocolError as exc:
            raise Refused(exc.message) from None
        now = host.clock()
        recipients = [host.enc_keys[k] for k in endorsers]
        env = seal_envelope(host.identity, proposal, created=now, expires=now + deadline, recipients=recipients,
                            random=os.urandom)  # fmt: skip
        author_or_refuse(host, env)
        self.vote(env.id.hex(), endorse=True)
        return {"id": env.id.hex(), "created": env.created, "deadline": env.expires,
                "endorsers": [k.hex() for k in endorsers], "threshold": k}  # fmt: skip

    def vote(self, ident: str, *, endorse: bool, reason: str = "") -> dict[str, Any]:
        """This organization endorses or objects, sealed to the proposal's organizations."""
        refuse_if_compromised(self.host)
        joint = self.find(ident)
        host, me, now = self.host, self.host.identity.sign_public, self.host.clock()
        if me not in joint.proposal.endorsers:
            raise CannotVote("this organization is not among the proposal's endorsers")
        if joint.state(now) != "open":
            raise CannotVote(f"the proposal is {joint.state(now)}: nothing more can be endorsed or objected")
        if me in joint.votes:
            done = "endorsed" if joint.votes[me].endorsed else "objected to"
            raise CannotVote(f"this organization already {done} this proposal")
        if len(reason) > MAX_OBJECTION:
            raise Refused(f"reason: at most {MAX_OBJECTION} characters")
        try:
            body: Endorsement | Objection = (
                Endorsement(joint.id, joint.statement.alert, joint.statement.sign(host.identity.signing_key))
                if endorse
                else Objection(joint.id, joint.statement.alert, reason)
            )
        except ProtocolError as exc:
            raise Refused(exc.message) from None
        recipients = host.recipients_of(joint.envelope) or [host.identity.enc_public]
        env = seal_envelope(host.identity, body, created=now, expires=joint.deadline, recipients=recipients,
                            random=os.urandom)  # fmt: skip
        author_or_refuse(host, env)
        return {"id": env.id.hex(), "proposal": joint.id.hex(), "vote": "endorsed" if endorse else "objected"}

    def find(self, ident: str) -> Joint:
        ident = ident.strip().lower()
        found = [j for pid, j in self.joints.items() if len(ident) >= 8 and pid.hex().startswith(ident)]
        if len(found) != 1:
            raise ProposalNotFound(f"no proposal with id {ident!r} (see `amparo alert proposals`)")
        return found[0]

    def listing(self) -> list[dict[str, Any]]:
        """Every proposal this node can read, newest first."""
        now = self.host.clock()
        joints = sorted(self.joints.values(), key=lambda j: (j.envelope.created, j.id), reverse=True)
        return [self.to_json(j, now) for j in joints]

    def to_json(self, joint: Joint, now: int) -> dict[str, Any]:
        names, me = self.host.author_names(), self.host.identity.sign_public
        alert = joint.proposal.alert
        state = joint.state(now)
        return {
            "id": joint.id.hex(),
            "proposer": joint.envelope.author.hex(),
            "proposer_name": names.get(joint.envelope.author, ""),
            "created": joint.envelope.created,
            "deadline": joint.deadline,
            "state": state,
            "threshold": joint.proposal.threshold,
            "endorsed": len(joint.endorsements),
            "objected": len(joint.objections),
            "releases": [r.hex() for r in joint.releases],
            "waiting_for_me": state == "open" and me in joint.proposal.endorsers and me not in joint.votes,
            "headline": alert.headline,
            "severity": alert.severity,
            "scope": alert.scope,
            "regions": [a.region for a in alert.areas],
            "description": alert.description,
            "instruction": alert.instruction,
            "endorsers": [_endorser_json(joint, key, names.get(key, "")) for key in joint.proposal.endorsers],
        }


def _endorser_json(joint: Joint, key: bytes, name: str) -> dict[str, Any]:
    vote = joint.votes.get(key)
    doc: dict[str, Any] = {"key": key.hex(), "name": name or fingerprint(key), "vote": None}
    if vote is not None:
        doc |= {
            "vote": "endorsed" if vote.endorsed else "objected",
            "at": vote.created,
            "reason": vote.reason,
        }
    return doc


def resolve_endorsers(host: JointHost, named: Sequence[object]) -> list[bytes]:
    """Organization names (as this node knows them) or 64-hex keys → signing keys,
    each with a known encryption key (to seal the proposal to it)."""
    names = host.author_names()
    by_name: dict[str, list[bytes]] = {}
    for key in names:  # a rotated organization is one, under its newest key
        found = by_name.setdefault(names[key].casefold(), [])
        if host.author_of(key) not in found:
            found.append(host.author_of(key))
    keys: list[bytes] = []
    for item in named:
        text = str(item).strip()
        found = [k] if (k := _as_key(text)) is not None else by_name.get(text.casefold(), [])
        if len(found) != 1:
            why = "no organization" if not found else "more than one organization"
            raise Refused(f"endorsers: {why} called {text!r} (see `amparo peer list`)")
        key = found[0]
        if key not in host.enc_keys:
            raise Refused(
                f"endorsers: no encryption key known for {text!r} yet (its node record has not arrived)"
            )
        if key not in keys:
            keys.append(key)
    return keys


def _as_key(text: str) -> bytes | None:
    if len(text) != 64:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None


def is_release(alert: Alert | None, raw: bytes) -> bool:
    """Cheap test before decoding: only a plain alert whose bytes name ``release`` may be one."""
    return alert is not None and b"\xa7release" in raw
