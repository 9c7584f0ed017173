"""Who the authors this node accepts are: their names, from signed ``node``
records and vouches, and how this node trusts each one ("vouched by Brigada
Solidaria Norte").

Every key inside the trust horizon got there through a vouch, and every vouch
names its subject, so this node can name any author it accepts from the moment
it accepts it. The author's own ``node`` record, once here, gives the name the
organization chose for itself: the newest record of its rotation family wins
over what a voucher called it. Records and vouches are envelopes in the store,
so the directory is rebuilt from them at start (``NodeService`` shows it every
stored envelope) and kept current as they arrive: it writes nothing of its own.

A name alone would let an author call itself anything, so a name is shown with
how this node trusts its author (``Trust``): this node itself, a peer, or
vouched for by the named organizations one hop closer to this node. That is
read from the trust graph when asked, so a revocation shows at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mesh import TrustGraph
from node.catalogs import translations
from protocol import Envelope, NodeRecord, Vouch, fingerprint

# (created, id, name): the newest word about a name; later (created, id) wins.
_Named = tuple[int, bytes, str]

# How a trust depth reads (msgids of the dashboard's catalog: node/web/templates/_trust.html).
SELF_WORDS = "this node"
PEER_WORDS = "peer of this node"
VOUCHED_WORDS = "vouched by %(names)s"
OUTSIDE_WORDS = "outside the trust horizon"


@dataclass(frozen=True)
class Trust:
    """How this node trusts an author: ``depth`` vouch hops from this node (0 this
    node, 1 a peer, None outside the horizon: no longer vouched for or revoked),
    and for 2 and more the names of the vouchers one hop closer to this node."""

    depth: int | None
    vouched_by: tuple[str, ...] = ()

    def words(self, lang: str = "en") -> str:
        """One line a person reads next to the name, in ``lang`` (the dashboard's catalog)."""
        t = translations(lang).gettext
        if self.depth == 0:
            return t(SELF_WORDS)
        if self.depth == 1:
            return t(PEER_WORDS)
        if self.depth is None or not self.vouched_by:
            return t(OUTSIDE_WORDS)
        return t(VOUCHED_WORDS) % {"names": ", ".join(self.vouched_by)}

    def to_json(self) -> dict[str, Any]:
        return {"depth": self.depth, "vouched_by": list(self.vouched_by), "text": self.words()}


class Directory:
    """The names authors gave themselves (``node`` records) and the names their
    vouchers gave them (vouches), newest of each; fed every verified envelope."""

    def __init__(self) -> None:
        self._records: dict[bytes, _Named] = {}  # author -> its newest node record
        self._vouched: dict[tuple[bytes, bytes], _Named] = {}  # (voucher, subject) -> newest vouch

    def observe(self, env: Envelope) -> None:
        """Take a verified envelope into account (anything but a record or vouch is ignored)."""
        body = env.body
        if isinstance(body, NodeRecord):
            _keep_newest(self._records, env.author, (env.created, env.id, body.name))
        elif isinstance(body, Vouch):
            _keep_newest(self._vouched, (env.author, body.subject), (env.created, env.id, body.name))

    def record_id(self, author: bytes) -> bytes | None:
        """The id of the newest ``node`` record ``author`` signed, if this node holds one."""
        named = self._records.get(author)
        return None if named is None else named[1]

    def has_record(self, keys: set[bytes]) -> bool:
        return any(key in self._records for key in keys)

    def record_name(self, keys: set[bytes]) -> str:
        """The name in the newest ``node`` record signed by any of ``keys`` (one family)."""
        named = max((self._records[k] for k in keys if k in self._records), default=None)
        return "" if named is None else named[2]

    def vouch_name(self, subject: bytes, voucher: bytes) -> str:
        named = self._vouched.get((voucher, subject))
        return "" if named is None else named[2]

    def any_vouch_name(self, keys: set[bytes]) -> str:
        """The newest name any voucher, current or not, gave one of ``keys``."""
        named = max((v for (_, s), v in self._vouched.items() if s in keys), default=None)
        return "" if named is None else named[2]


def _keep_newest(table: dict[Any, _Named], key: Any, named: _Named) -> None:
    current = table.get(key)
    if current is None or current[:2] < named[:2]:
        table[key] = named


class Names(Mapping[bytes, str]):
    """Organization names by key, as this node knows them now, and how each is
    trusted (``trust``). Resolved per key on first use, so asking for the few
    authors a page shows costs nothing for the thousands it does not.

    A name is, in order: this node's own (its keys); the newest ``node`` record
    of the key's rotation family; the name a peer was paired under; the name
    given by the voucher closest to this node; any vouch's name. A key none of
    these name is not in the mapping (its fingerprint is shown instead)."""

    def __init__(
        self,
        directory: Directory,
        trust: TrustGraph,
        *,
        own: Mapping[bytes, str],
        peers: Mapping[bytes, str],
    ) -> None:
        self._directory, self._trust, self._own, self._peers = directory, trust, own, peers
        self._cache: dict[bytes, str] = {}

    def __getitem__(self, key: bytes) -> str:
        if key not in self._cache:
            self._cache[key] = self._resolve(key)
        if not self._cache[key]:
            raise KeyError(key)
        return self._cache[key]

    def __iter__(self) -> Iterator[bytes]:
        """Every key this node can name right now: its own, its peers', the horizon's."""
        keys = dict.fromkeys([*self._own, *self._peers, *self._trust.horizon()])
        return iter([k for k in keys if self.get(k)])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def _resolve(self, key: bytes) -> str:
        family = self._trust.family(key)
        for member in sorted(family):
            if member in self._own:
                return self._own[member]
        name = self._directory.record_name(family)
        if name:
            return name
        for member in sorted(family):
            if self._peers.get(member):
                return self._peers[member]
        for _, voucher in self._vouchers(family):
            for member in sorted(family):
                if name := self._directory.vouch_name(member, voucher):
                    return name
        return self._directory.any_vouch_name(family)

    def trust(self, key: bytes) -> Trust:
        """How this node trusts ``key``'s organization right now."""
        family = self._trust.family(key)
        if any(member in self._own for member in family):
            return Trust(0)
        depth = self._trust.depth_of(key)
        if depth is None or depth <= 1:
            return Trust(depth)
        closer = {self._trust.newest(v) for d, v in self._vouchers(family) if d == depth - 1}
        return Trust(depth, tuple(sorted(self.get(v) or fingerprint(v) for v in closer)))

    def _vouchers(self, family: set[bytes]) -> list[tuple[int, bytes]]:
        """(depth, key) of the current vouchers of ``family`` inside the horizon,
        closest to this node first."""
        found = set()
        for member in family:
            for voucher in self._trust.vouchers(member):
                depth = self._trust.depth_of(voucher)
                if depth is not None and voucher not in family:
                    found.add((depth, voucher))
        return sorted(found)
