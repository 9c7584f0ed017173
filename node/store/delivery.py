"""Queries for ally subscriptions and the delivery outbox.

The outbox is a FIFO per subscription: only the oldest pending row of each
subscription is ever due, so a receiver sees an alert before its update and a
receiver that was down gets the backlog in order once it is back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update

from node.store import engine as engines
from node.store.database import Database
from node.store.models import DeliveryModel, SubscriptionModel


@dataclass(frozen=True)
class Delivery:
    subscription_id: str
    envelope_id: bytes
    seq: int
    attempts: int
    next_attempt: int
    created: int


class DeliveryQueries(Database):
    # -- subscriptions --------------------------------------------------------------------
    def put_subscription(self, sub_id: str, doc: dict[str, Any], now: int) -> None:
        with self._write() as session:
            session.add(SubscriptionModel(id=sub_id, doc=doc, created=now))

    def list_subscriptions(self) -> list[dict[str, Any]]:
        statement = select(SubscriptionModel).order_by(SubscriptionModel.created, SubscriptionModel.id)
        with self._read() as session:
            return [dict(row.doc) for row in session.scalars(statement)]

    def delete_subscription(self, sub_id: str) -> bool:
        """Remove a subscription and whatever it still had to deliver."""
        with self._write() as session:
            connection = session.connection()
            connection.execute(delete(DeliveryModel).where(DeliveryModel.subscription_id == sub_id))
            gone = connection.execute(delete(SubscriptionModel).where(SubscriptionModel.id == sub_id))
            return bool(gone.rowcount)

    # -- outbox ---------------------------------------------------------------------------
    @property
    def single_connection(self) -> bool:
        """An in-memory SQLite database is one connection, which one thread at a
        time may use: its callers keep every write on the event loop."""
        return self.dialect == "sqlite" and engines.sqlite_path(self._engine) is None

    def enqueue_deliveries(self, pairs: list[tuple[str, bytes, int]], now: int) -> int:
        """Queue (subscription, envelope id, seq) triples; a pair already queued
        (or already delivered) is ignored, which is what makes it exactly once.
        One statement compiled once (cached) and run for every row: a burst's
        thousands of rows go in one transaction, not one compile each."""
        if not pairs:
            return 0
        rows = [
            {
                "subscription_id": sub,
                "envelope_id": env,
                "seq": seq,
                "state": "pending",
                "attempts": 0,
                "next_attempt": now,
                "created": now,
            }
            for sub, env, seq in pairs
        ]
        statement = self._insert(DeliveryModel).on_conflict_do_nothing()
        with self._write() as session:
            result = session.connection().execute(
                statement, rows, execution_options={"preserve_rowcount": True}
            )
            return max(0, result.rowcount)

    def queued_for(self, envelope_id: bytes, subscriptions: list[str]) -> set[str]:
        """Which of ``subscriptions`` queued ``envelope_id`` (delivered, pending or
        given up): an alert's updates and cancel follow it to each of them. One
        primary-key range per subscription, however long the outbox."""
        if not subscriptions:
            return set()
        statement = select(DeliveryModel.subscription_id).where(
            DeliveryModel.subscription_id.in_(subscriptions), DeliveryModel.envelope_id == envelope_id
        )
        with self._read() as session:
            return set(session.scalars(statement))

    def due_deliveries(self, now: int, limit: int = 256) -> list[Delivery]:
        """The head of each subscription's queue, when its time has come."""
        heads = (
            select(DeliveryModel.subscription_id, func.min(DeliveryModel.seq).label("seq"))
            .where(DeliveryModel.state == "pending")
            .group_by(DeliveryModel.subscription_id)
            .subquery()
        )
        statement = (
            select(DeliveryModel)
            .join(
                heads,
                (DeliveryModel.subscription_id == heads.c.subscription_id)
                & (DeliveryModel.seq == heads.c.seq),
            )
            .where(DeliveryModel.state == "pending", DeliveryModel.next_attempt <= now)
            .order_by(DeliveryModel.next_attempt)
            .limit(limit)
        )
        with self._read() as session:
            return [_delivery(row) for row in session.scalars(statement)]

    def next_delivery_at(self, after: int = -1) -> int | None:
        """When the next pending row comes due, counting only times after ``after``
        (the retries still to come, not the rows already being worked on)."""
        with self._read() as session:
            value = session.scalar(
                select(func.min(DeliveryModel.next_attempt)).where(
                    DeliveryModel.state == "pending", DeliveryModel.next_attempt > after
                )
            )
            return int(value) if value is not None else None

    def pending_for(self, sub_id: str, now: int, limit: int, after_seq: int = -1) -> list[Delivery]:
        """The next rows of one subscription's queue, in order, if its head is due;
        ``after_seq`` skips what the caller already sent (answered, but its commit
        is still to come)."""
        statement = (
            select(*_COLUMNS)  # plain rows, not ORM objects: this runs once per batch of a burst
            .where(
                DeliveryModel.subscription_id == sub_id,
                DeliveryModel.state == "pending",
                DeliveryModel.seq > after_seq,
            )
            .order_by(DeliveryModel.seq)
            .limit(limit)
        )
        with self._read() as session:
            rows = [Delivery(*row) for row in session.execute(statement)]
        return rows if rows and rows[0].next_attempt <= now else []

    def finish_deliveries(self, done: list[Delivery], state: str, now: int, error: str | None = None) -> None:
        """``delivered`` or ``failed`` (gave up), in one transaction and one
        statement run for every row; the rows stay as the record that stops the
        same alert from going out again."""
        if not done:
            return
        statement = (
            update(DeliveryModel)
            .where(
                DeliveryModel.subscription_id == bindparam("b_sub"),
                DeliveryModel.envelope_id == bindparam("b_env"),
            )
            .values(state=state, attempts=bindparam("b_attempts"), done_at=now, last_error=error)
        )
        rows = [
            {"b_sub": d.subscription_id, "b_env": d.envelope_id, "b_attempts": d.attempts + 1} for d in done
        ]
        with self._write() as session:
            session.connection().execute(statement, rows)

    def retry_delivery(self, d: Delivery, at: int, error: str) -> None:
        with self._write() as session:
            self._update_delivery(
                session, d, attempts=d.attempts + 1, next_attempt=at, last_error=error[:200]
            )

    @staticmethod
    def _update_delivery(session: Any, d: Delivery, **values: Any) -> None:
        statement = (
            update(DeliveryModel)
            .where(
                DeliveryModel.subscription_id == d.subscription_id,
                DeliveryModel.envelope_id == d.envelope_id,
            )
            .values(**values)
        )
        session.connection().execute(statement)

    def delivery_counts(self) -> dict[str, dict[str, Any]]:
        """Per subscription: counts by state and the last error, for status."""
        out: dict[str, dict[str, Any]] = {}
        statement = select(DeliveryModel.subscription_id, DeliveryModel.state, func.count()).group_by(
            DeliveryModel.subscription_id, DeliveryModel.state
        )
        errors = (
            select(DeliveryModel.subscription_id, DeliveryModel.last_error)
            .where(DeliveryModel.last_error.is_not(None), DeliveryModel.state != "delivered")
            .order_by(DeliveryModel.seq)
        )
        with self._read() as session:
            for sub, state, count in session.execute(statement):
                out.setdefault(sub, {"pending": 0, "delivered": 0, "failed": 0})[state] = count
            for sub, error in session.execute(errors):
                out.setdefault(sub, {"pending": 0, "delivered": 0, "failed": 0})["last_error"] = error
        return out


_COLUMNS = (
    DeliveryModel.subscription_id,
    DeliveryModel.envelope_id,
    DeliveryModel.seq,
    DeliveryModel.attempts,
    DeliveryModel.next_attempt,
    DeliveryModel.created,
)


def _delivery(row: DeliveryModel) -> Delivery:
    return Delivery(
        row.subscription_id, row.envelope_id, row.seq, row.attempts, row.next_attempt, row.created
    )
