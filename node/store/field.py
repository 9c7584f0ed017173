"""Queries for field safety: people in the field, phone numbers, and each
person's standing SOS/check-in link (``node.response.field`` owns their meaning)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import delete, select, update

from node.store.database import Database
from node.store.models import FieldPersonModel, ResponderModel, SosLinkModel


@dataclass(frozen=True, slots=True)
class PersonRow:
    """Someone in the field: a field person (``kind`` "person") or a responder."""

    name: str
    phone: str
    lang: str = "en"
    kind: str = "person"


@dataclass(frozen=True, slots=True)
class LinkRow:
    person: str
    token_hash: str  # what a request is looked up by; the token itself is never stored plain
    token_sealed: str  # the token sealed to this node's own key (hex), to print the link again
    region: str
    recipients: list[str] = field(default_factory=list)  # peers' keys (hex) an SOS is sealed to
    pin: str = ""  # keyed hashes (node.response.field.PinKey), "" when none
    duress_pin: str = ""
    created: int = 0
    last_ok: int = 0
    sos_at: int = 0


class FieldQueries(Database):
    # -- people ---------------------------------------------------------------------------
    def put_person(self, row: PersonRow, now: int) -> None:
        with self._write() as session:
            session.merge(FieldPersonModel(name=row.name, phone=row.phone, lang=row.lang, updated=now))

    def get_person(self, name: str) -> PersonRow | None:
        """A field person, else a responder of that name (they may have a link too)."""
        with self._read() as session:
            person = session.get(FieldPersonModel, name)
            if person is not None:
                return PersonRow(person.name, person.phone, person.lang)
            responder = session.get(ResponderModel, name)
            if responder is not None:
                return PersonRow(responder.name, responder.phone or "", responder.lang or "en", "responder")
        return None

    def list_people(self) -> list[PersonRow]:
        statement = select(FieldPersonModel).order_by(FieldPersonModel.updated, FieldPersonModel.name)
        with self._read() as session:
            return [PersonRow(m.name, m.phone, m.lang) for m in session.scalars(statement)]

    def delete_person(self, name: str) -> bool:
        with self._write() as session:
            result = session.connection().execute(
                delete(FieldPersonModel).where(FieldPersonModel.name == name)
            )
            return bool(result.rowcount)

    def people_by_phone(self, phone: str) -> list[PersonRow]:
        """Everyone with this number, field people first (an SMS names no one)."""
        if not phone:
            return []
        with self._read() as session:
            people = [
                PersonRow(m.name, m.phone, m.lang)
                for m in session.scalars(select(FieldPersonModel).where(FieldPersonModel.phone == phone))
            ]
            people += [
                PersonRow(m.name, m.phone, m.lang or "en", "responder")
                for m in session.scalars(select(ResponderModel).where(ResponderModel.phone == phone))
            ]
        return people

    def set_responder_phone(self, name: str, phone: str) -> None:
        with self._write() as session:
            session.execute(update(ResponderModel).where(ResponderModel.name == name).values(phone=phone))

    # -- standing links -------------------------------------------------------------------
    def put_link(self, row: LinkRow) -> None:
        with self._write() as session:
            session.merge(
                SosLinkModel(
                    person=row.person,
                    token_hash=row.token_hash,
                    token_sealed=row.token_sealed,
                    region=row.region,
                    recipients=list(row.recipients),
                    pin=row.pin,
                    duress_pin=row.duress_pin,
                    created=row.created,
                    last_ok=row.last_ok,
                    sos_at=row.sos_at,
                )
            )

    def get_link(self, person: str) -> LinkRow | None:
        with self._read() as session:
            model = session.get(SosLinkModel, person)
            return None if model is None else _link(model)

    def link_by_token(self, token_hash: str) -> LinkRow | None:
        with self._read() as session:
            model = session.scalars(select(SosLinkModel).where(SosLinkModel.token_hash == token_hash)).first()
            return None if model is None else _link(model)

    def delete_link(self, person: str) -> bool:
        with self._write() as session:
            result = session.connection().execute(delete(SosLinkModel).where(SosLinkModel.person == person))
            return bool(result.rowcount)

    def mark_link(self, person: str, **marks: int) -> None:
        """``last_ok`` or ``sos_at`` of a link: a check-in or an SOS from it."""
        with self._write() as session:
            session.execute(update(SosLinkModel).where(SosLinkModel.person == person).values(**marks))


def _link(m: SosLinkModel) -> LinkRow:
    return LinkRow(
        m.person,
        m.token_hash,
        m.token_sealed,
        m.region,
        list(m.recipients),
        m.pin,
        m.duress_pin,
        m.created,
        m.last_ok,
        m.sos_at,
    )
