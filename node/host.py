"""What the desks and the alert use cases need of the node, and nothing more.

A desk (responses, check-ins, deliveries to allies) and the alert use cases
(``node.incidents``) depend on this narrow interface, never on the whole
``NodeService``: the store, the clock, this node's identity and keys, its
configuration, a way to run work in the background (``spawn``) and a way to
publish what it signs (``author``). ``NodeService`` is the real host; a test
hands a desk a small fake with a real store and a clock it moves by hand
(tests/response/test_page_outcome.py), checked against this protocol by mypy.

Read-only members are properties, so a plain attribute satisfies them.
"""

from __future__ import annotations

from collections.abc import Coroutine, Mapping
from typing import Any, Protocol

from node.alerts import Readable
from node.config import Config
from node.store import Store, StoredEnvelope
from protocol import Envelope
from protocol.keys import Identity


class Host(Protocol):
    """The node as a desk sees it."""

    @property
    def config(self) -> Config: ...

    @property
    def store(self) -> Store: ...

    @property
    def identity(self) -> Identity:
        """The key this node signs with now (read at each signature: it rotates)."""
        ...

    def clock(self) -> int:
        """Now, in Unix ms: the only time a desk reads."""
        ...

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` in the background; its failures are logged, never fatal."""
        ...

    def author(self, env: Envelope) -> StoredEnvelope | None:
        """Publish an envelope this node signed: store, deliver locally, push to
        peers. None when the node refused it (see ``incidents.author_or_refuse``)."""
        ...

    def open(self, row: StoredEnvelope) -> Readable:
        """A stored envelope with its body opened when this node may read it."""
        ...

    def own_keys(self) -> list[bytes]:
        """This node's key, then the keys it rotated from: all of them are us."""
        ...

    def same_author(self, first: bytes, second: bytes) -> bool:
        """Whether two keys are one author (equal, or one rotation family)."""
        ...

    def author_of(self, key: bytes) -> bytes:
        """The key an author is shown under (the newest of its rotation family)."""
        ...

    def author_names(self) -> Mapping[bytes, str]:
        """Organization names by key, this node's own included."""
        ...

    def related(self, alert_id: bytes) -> list[StoredEnvelope]:
        """Updates, cancels and acks answering ``alert_id``, plain and sealed, by time."""
        ...

    def recipients_of(self, env: Envelope) -> list[bytes]:
        """X25519 keys of a sealed envelope's recipients this node can name."""
        ...
