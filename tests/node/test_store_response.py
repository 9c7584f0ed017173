"""The response desks' tables, on both backends: what the tick asks for is only
what is due, finished records are pruned, and revision 0005 moves every kind of
record out of the old ``response_records`` documents (and back on downgrade)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import JSON, column, event, insert, select, table

from node.store import (
    EscalationRow,
    HandoverRow,
    NoteRow,
    PageRow,
    PlanRow,
    ResponderRow,
    ShiftRow,
    Store,
)
from node.store.engine import alembic_config, open_engine, writer

T0 = 1_795_000_000_000
DAY = 86_400_000
ALERT_A, ALERT_B, ALERT_C = "aa" * 32, "bb" * 32, "cc" * 32


def plan(
    plan_id: str, *, state: str = "active", deadline: int = T0, grace: int = 600_000, **kw: Any
) -> PlanRow:
    return PlanRow(plan_id, "Lucía", "MX-OAX", deadline, 0, grace, state, f"hash-{plan_id}", **kw)


# -- responders, shifts, hand-overs ---------------------------------------------------------
def test_responders_round_trip_and_keep_their_order(store: Store) -> None:
    store.put_responder(ResponderRow("Ana", "admin", ["json://127.0.0.1:1/x"], "$argon2id$x", True), 1)
    store.put_responder(ResponderRow("Bruno", "viewer"), 2)
    store.put_responder(ResponderRow("Ana", "responder"), 3)  # an edit replaces every field
    assert store.get_responder("Ana") == ResponderRow("Ana", "responder", [], None, False)
    assert [r.name for r in store.list_responders()] == ["Bruno", "Ana"]
    assert store.delete_responder("Bruno") and not store.delete_responder("Bruno")
    assert store.get_responder("Bruno") is None


def test_shifts_are_replaced_at_once_and_handovers_listed_newest_last(store: Store) -> None:
    store.add_shift(ShiftRow("Ana", T0, T0 + DAY, "Bruno"))
    store.add_shift(ShiftRow("Bruno", T0 + DAY, T0 + 2 * DAY, "Ana"))
    split = [ShiftRow("Ana", T0, T0 + 10), ShiftRow("Carmen", T0 + 10, T0 + DAY, "Ana", True)]
    store.replace_shifts(split)
    assert store.list_shifts() == split
    for at in (T0 + 3, T0 + 1, T0 + 2):
        store.add_handover(HandoverRow(at, "Ana", "Carmen", "llaves en la oficina", {"Ana": "pending"}))
    store.set_handover_notified(T0 + 3, {"Ana": "sent"})
    recent = store.recent_handovers(2)
    assert [h.at for h in recent] == [T0 + 2, T0 + 3] and recent[-1].notified == {"Ana": "sent"}


# -- escalations, pages, notes --------------------------------------------------------------
def test_only_due_escalations_are_returned(store: Store) -> None:
    store.put_escalation(EscalationRow(ALERT_A, T0, 0, T0 + 60_000), T0)
    store.put_escalation(EscalationRow(ALERT_B, T0, 1, T0 + 30_000), T0)
    store.put_escalation(EscalationRow(ALERT_C, T0, 2, 0, "acknowledged", "Ana"), T0)  # nothing pending
    assert store.due_escalations(T0 + 29_999) == []
    assert [e.alert_id for e in store.due_escalations(T0 + 30_000)] == [ALERT_B]
    assert [e.alert_id for e in store.due_escalations(T0 + 10 * DAY)] == [ALERT_B, ALERT_A]  # by deadline
    assert store.get_escalation(ALERT_C) == EscalationRow(ALERT_C, T0, 2, 0, "acknowledged", "Ana")
    assert store.open_escalations() == [ALERT_A, ALERT_B]


def test_a_page_is_written_once_and_listed_until_finished(store: Store) -> None:
    assert store.add_page(PageRow(ALERT_A, 0, "on-call", at=T0), T0)
    assert not store.add_page(PageRow(ALERT_A, 0, "on-call", at=T0 + 5), T0 + 5)  # decided before a crash
    store.add_page(PageRow(ALERT_A, 1, "backup", at=T0), T0)
    store.put_page(PageRow(ALERT_A, 0, "on-call", "sent", ["Ana"], ["Ana"], T0), T0 + 1)
    assert [(p.step, p.state) for p in store.unfinished_pages()] == [(1, "pending")]
    assert store.pages_of(ALERT_A)[0] == PageRow(ALERT_A, 0, "on-call", "sent", ["Ana"], ["Ana"], T0)
    assert store.get_page(ALERT_B, 0) is None


def test_notes_come_back_in_timeline_order(store: Store) -> None:
    for at, text_ in ((T0 + 2, "segunda"), (T0 + 1, "primera"), (T0 + 2, "tercera")):
        store.add_note(NoteRow(ALERT_A, at, "debrief", text=text_, author="Ana"))
    store.add_note(NoteRow(ALERT_B, T0, "escalation", sealed=b"\x00\xff"))
    assert [n.text for n in store.notes_of(ALERT_A)] == ["primera", "segunda", "tercera"]
    assert store.notes_of(ALERT_B) == [NoteRow(ALERT_B, T0, "escalation", b"\x00\xff")]


# -- check-in plans -------------------------------------------------------------------------
def test_only_overdue_active_plans_are_returned(store: Store) -> None:
    store.put_plan(plan("c1", deadline=T0, grace=600_000), T0)
    store.put_plan(plan("c2", deadline=T0 + 60_000, grace=0, recipients=["ab" * 32], note="00ff"), T0)
    store.put_plan(plan("c3", deadline=T0 - DAY, state="missed", alert=ALERT_A), T0)  # already raised
    store.put_plan(plan("c4", deadline=T0 - DAY, state="stopped"), T0)
    assert store.overdue_plans(T0 + 59_999) == []
    assert [p.id for p in store.overdue_plans(T0 + 60_000)] == ["c2"]
    assert [p.id for p in store.overdue_plans(T0 + 600_000)] == ["c2", "c1"]  # by when the alarm fell due
    assert store.plan_by_token("hash-c2") == plan(
        "c2", deadline=T0 + 60_000, grace=0, recipients=["ab" * 32], note="00ff"
    )
    assert store.plan_by_token("hash-nobody") is None
    assert [p.id for p in store.list_plans()] == ["c1", "c2", "c3", "c4"]


# -- the small documents --------------------------------------------------------------------
def test_documents_round_trip_and_moved_kinds_are_refused(store: Store) -> None:
    store.put_record("cap-import", "k", {"id": "ab"}, 1)
    store.put_record("cap-import", "k", {"id": "cd"}, 2)
    assert store.get_record("cap-import", "k") == {"id": "cd"}
    assert store.delete_record("cap-import", "k") and not store.delete_record("cap-import", "k")
    for moved in ("responder", "escalation", "page", "checkin"):
        with pytest.raises(ValueError, match="unknown response record kind"):
            store.list_records(moved)


# -- pruning ----------------------------------------------------------------------------------
def test_prune_removes_finished_records_and_keeps_open_work(store: Store) -> None:
    old, keep_from = T0, T0 + 90 * DAY
    store.put_escalation(EscalationRow(ALERT_A, old, 2, 0, "acknowledged", "Ana"), old)
    store.put_escalation(EscalationRow(ALERT_B, old, 0, old + 60_000), old)  # still paging: stays
    store.put_escalation(EscalationRow(ALERT_C, old, 1, 0, "cancelled"), keep_from)  # ended recently: stays
    store.add_page(PageRow(ALERT_A, 0, "on-call", "sent", at=old), old)
    store.add_page(PageRow(ALERT_B, 0, "on-call", "sending", ["Ana"], at=old), old)
    store.put_plan(plan("c1", state="stopped"), old)
    store.put_plan(plan("c2", state="missed"), old)
    store.add_note(NoteRow(ALERT_A, old, "debrief", text="viejo"))
    store.add_note(NoteRow(ALERT_A, keep_from, "debrief", text="reciente"))
    store.add_shift(ShiftRow("Ana", old, old + DAY))
    store.add_shift(ShiftRow("Ana", keep_from, keep_from + DAY))
    store.add_handover(HandoverRow(old, "Ana", "Bruno"))
    store.put_record("signin", "x", {"at": old}, old)

    assert store.prune_response(keep_from) == 7
    assert store.get_escalation(ALERT_A) is None
    assert {store.get_escalation(a) is not None for a in (ALERT_B, ALERT_C)} == {True}
    assert [(p.alert_id, p.state) for p in store.unfinished_pages()] == [(ALERT_B, "sending")]
    assert store.pages_of(ALERT_A) == []
    assert [p.id for p in store.list_plans()] == ["c2"]
    assert [n.text for n in store.notes_of(ALERT_A)] == ["reciente"]
    assert [s.start for s in store.list_shifts()] == [keep_from]
    assert store.recent_handovers(10) == [] and store.list_records("signin") == []
    assert store.prune_response(keep_from) == 0


# -- the tick's queries use the indexes -----------------------------------------------------
def test_the_due_queries_are_index_range_scans(tmp_path: Path) -> None:
    """SQLite's plan for the very statements the tick sends, with many finished
    records: a search on the deadline index, never a scan of the table."""
    with Store(f"sqlite:///{tmp_path / 'amparo.db'}") as store:
        for n in range(200):
            store.put_escalation(EscalationRow(f"{n:064x}", T0, 2, 0, "acknowledged"), T0)
            store.put_plan(plan(f"s{n}", state="stopped"), T0)
        store.put_escalation(EscalationRow(ALERT_A, T0, 0, T0 + 1), T0)
        sent: list[tuple[str, Any]] = []

        def capture(
            _conn: Any, _cursor: Any, statement: str, params: Any, _context: Any, _many: bool
        ) -> None:
            sent.append((statement, params))

        event.listen(store._engine, "before_cursor_execute", capture)
        assert [e.alert_id for e in store.due_escalations(T0 + 1)] == [ALERT_A]
        assert store.overdue_plans(T0) == []
        event.remove(store._engine, "before_cursor_execute", capture)
        tick = [(sql, params) for sql, params in sent if sql.lstrip().startswith("SELECT")]
        assert len(tick) == 2
        with store._engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
            plans = [
                " ".join(row[-1] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))
                for sql, params in tick
            ]
        assert "USING INDEX ix_escalations_deadline (deadline<?)" in plans[0], plans[0]
        assert "USING INDEX ix_checkin_plans_alarm_at (alarm_at<?)" in plans[1], plans[1]


# -- the migration from revision 0004 ---------------------------------------------------------
RECORDS = table("response_records", column("kind"), column("key"), column("doc", JSON), column("updated"))
SEALED_HEX = "00ff10"


def _old_records() -> list[dict[str, Any]]:
    """One record of every kind, as the desks wrote them up to revision 0004."""
    page = {
        "alert": ALERT_A,
        "step": 1,
        "targets": "backup",
        "state": "sending",
        "tried": ["Bruno"],
        "reached": [],
        "at": T0 + 60_000,
    }
    checkin = {
        "plan": {
            "id": "c1a",
            "who": "Lucía",
            "region": "MX-OAX",
            "next_deadline": T0 + DAY,
            "interval_ms": 3_600_000,
            "grace_ms": 600_000,
            "note": "",
            "state": "active",
            "link_token": "f0" * 32,
            "last_ok": T0,
        },
        "note": SEALED_HEX,
        "to": ["ab" * 32],
        "alert": "",
    }
    docs = [
        (
            "responder",
            "Ana",
            {
                "role": "admin",
                "channels": ["json://127.0.0.1:9/Ana"],
                "drills": True,
                "password": "$argon2id$v=19$x",
            },
        ),
        ("responder", "Bruno", {"role": "responder", "channels": []}),  # from before drills and passwords
        (
            "shift",
            f"{T0:016d}",
            {"responder": "Ana", "start": T0, "end": T0 + DAY, "backup": "Bruno", "override": False},
        ),
        (
            "handover",
            f"{T0 + 5:016d}",
            {
                "at": T0 + 5,
                "outgoing": "Ana",
                "incoming": "Bruno",
                "note": "",
                "notified": {"Ana": "sent", "Bruno": "unreachable"},
            },
        ),
        (
            "escalation",
            ALERT_A,
            {
                "alert_id": ALERT_A,
                "started": T0,
                "step": 1,
                "deadline": T0 + 120_000,
                "state": "paging",
                "acked_by": "",
            },
        ),
        (
            "escalation",
            ALERT_B,
            {
                "alert_id": ALERT_B,
                "started": T0,
                "step": 0,
                "deadline": 0,
                "state": "acknowledged",
                "acked_by": "Ana",
            },
        ),
        ("page", f"{ALERT_A}:01", page),
        (
            "note",
            f"{ALERT_A}:{T0 + 2:016d}:000002ab12cd",
            {"alert": ALERT_A, "at": T0 + 2, "kind": "escalation", "sealed": SEALED_HEX},
        ),
        (
            "note",
            f"{ALERT_A}:{T0 + 1:016d}:000001",
            {"alert": ALERT_A, "at": T0 + 1, "kind": "debrief", "text": "nota en claro", "author": "Bruno"},
        ),
        ("checkin", "c1a", checkin),
        ("cap-import", "sender|id", {"sender": "s", "identifier": "id", "sent": "t", "id": ALERT_C}),
        ("drill", "active", {"name": "marcha", "participants": ["Ana"], "until": T0 + DAY}),
        ("signin", "k", {"at": T0}),
    ]
    return [{"kind": k, "key": key, "doc": doc, "updated": T0 + n} for n, (k, key, doc) in enumerate(docs)]


@pytest.fixture
def at_0004(store_url: str) -> Iterator[str]:
    """A database at revision 0004 holding records of every kind."""
    engine = open_engine(store_url)
    config = alembic_config()
    with writer(engine).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
        connection.execute(insert(RECORDS), _old_records())
    engine.dispose()
    yield store_url


def test_revision_0005_moves_every_kind_of_record(at_0004: str) -> None:
    with Store(at_0004) as store:
        assert [(r.name, r.role, r.drills, r.password is not None) for r in store.list_responders()] == [
            ("Ana", "admin", True, True),
            ("Bruno", "responder", False, False),
        ]
        assert store.list_shifts() == [ShiftRow("Ana", T0, T0 + DAY, "Bruno", False)]
        assert store.recent_handovers(10) == [
            HandoverRow(T0 + 5, "Ana", "Bruno", "", {"Ana": "sent", "Bruno": "unreachable"})
        ]
        assert store.get_escalation(ALERT_A) == EscalationRow(ALERT_A, T0, 1, T0 + 120_000, "paging", "")
        assert store.get_escalation(ALERT_B) == EscalationRow(ALERT_B, T0, 0, 0, "acknowledged", "Ana")
        assert [e.alert_id for e in store.due_escalations(T0 + 120_000)] == [ALERT_A]
        assert store.unfinished_pages() == [
            PageRow(ALERT_A, 1, "backup", "sending", ["Bruno"], [], T0 + 60_000)
        ]
        assert store.notes_of(ALERT_A) == [
            NoteRow(ALERT_A, T0 + 1, "debrief", None, "nota en claro", "Bruno"),
            NoteRow(ALERT_A, T0 + 2, "escalation", bytes.fromhex(SEALED_HEX)),
        ]
        moved = store.get_plan("c1a")
        assert moved == PlanRow(
            "c1a",
            "Lucía",
            "MX-OAX",
            T0 + DAY,
            3_600_000,
            600_000,
            "active",
            "f0" * 32,
            T0,
            SEALED_HEX,
            ["ab" * 32],
            "",
        )
        assert [p.id for p in store.overdue_plans(T0 + DAY + 600_000)] == ["c1a"]
        assert store.get_record("cap-import", "sender|id") == {
            "sender": "s",
            "identifier": "id",
            "sent": "t",
            "id": ALERT_C,
        }
        assert store.get_record("drill", "active") is not None and store.get_record("signin", "k") is not None
        with store._engine.connect() as connection:
            kinds = set(connection.scalars(select(RECORDS.c.kind)))
        assert kinds == {"cap-import", "drill", "signin"}


def test_downgrading_0005_puts_the_records_back(at_0004: str) -> None:
    Store(at_0004).close()  # up to head
    engine = open_engine(at_0004)
    config = alembic_config()
    with writer(engine).begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")
        back = {(r.kind, r.key): r.doc for r in connection.execute(select(RECORDS))}
    engine.dispose()
    before = {(r["kind"], r["key"]): r["doc"] for r in _old_records()}

    def without_notes(keys: Any) -> set[tuple[str, str]]:
        return {k for k in keys if k[0] != "note"}  # notes get new keys (their row ids); the rest keep theirs

    assert without_notes(back) == without_notes(before)
    for key, doc in before.items():
        if key[0] not in ("note", "responder"):
            assert back[key] == doc, key
    assert back[("responder", "Bruno")] == {"role": "responder", "channels": [], "drills": False}
    assert sorted(d["at"] for k, d in back.items() if k[0] == "note") == [T0 + 1, T0 + 2]
