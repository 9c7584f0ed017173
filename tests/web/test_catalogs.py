"""The translation template is what the code says, and Spanish is complete.

After changing any dashboard text, regenerate (from node/web):
    ../../.venv/bin/pybabel extract -F babel.cfg --project=Amparo -o locale/amparo.pot .
    ../../.venv/bin/pybabel update -i locale/amparo.pot -d locale -D amparo --no-fuzzy-matching --ignore-obsolete
then translate the new, empty entries of locale/es/LC_MESSAGES/amparo.po.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from node.response import checkin_plan, desk, escalation
from node.timeline import KINDS
from node.web import i18n, labels
from protocol import ACK_STATES, CERTAINTIES, EVENTS, MSG_TYPES, SCOPES, SEVERITIES, STATUSES, URGENCIES

WEB = Path(labels.__file__).parent
POT = WEB / "locale" / "amparo.pot"
HOW = "regenerate it as the docstring of tests/web/test_catalogs.py says"


def load(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def entries(catalog: Catalog) -> list[tuple[str, tuple[tuple[str, int | None], ...], tuple[str, ...]]]:
    return [(str(m.id), tuple(m.locations), tuple(sorted(m.flags))) for m in catalog if m.id]


def test_the_committed_template_equals_a_fresh_extraction(tmp_path: Path) -> None:
    fresh = tmp_path / "amparo.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
         "--project=Amparo", "-o", str(fresh), "."],
        cwd=WEB, check=True, capture_output=True,
    )
    assert entries(load(fresh)) == entries(load(POT)), f"locale/amparo.pot is out of date: {HOW}"


@pytest.mark.parametrize("language", [lang for lang in i18n.available() if lang != i18n.DEFAULT])
def test_every_message_has_a_translation(language: str) -> None:
    catalog = load(WEB / "locale" / language / "LC_MESSAGES" / "amparo.po", language)
    have = {str(m.id): m for m in catalog if m.id}
    template = [str(m.id) for m in load(POT) if m.id]
    assert [i for i in template if i not in have or not have[i].string] == [], f"untranslated in {language}"
    assert [i for i in template if have[i].fuzzy] == [], f"fuzzy (unchecked) entries in {language}"
    assert sorted(set(have) - set(template)) == [], f"obsolete entries in {language}: {HOW}"


def states(table: dict[tuple[str, str], str]) -> set[str]:
    return {state for state, _ in table} | set(table.values())


def test_every_word_shown_from_data_is_marked_for_translation() -> None:
    marked = {m for group in (labels.SEVERITY, labels.URGENCY, labels.CERTAINTY, labels.STATUS, labels.MSG_TYPE,
                              labels.SCOPE, labels.ACK_STATE, labels.ROLE, labels.CHECKIN_STATE,
                              labels.ESCALATION_STATE) for m in group}
    vocabulary = {*SEVERITIES, *URGENCIES, *CERTAINTIES, *STATUSES, *MSG_TYPES, *SCOPES, *ACK_STATES, *desk.ROLES,
                  *states(checkin_plan.TRANSITIONS), *states(escalation.TRANSITIONS)}
    assert sorted(vocabulary - marked) == []
    assert set(labels.STEP) == set(KINDS)
    assert set(labels.EVENT) == set(EVENTS)


def test_event_names_read_as_words_in_spanish() -> None:
    spanish = i18n.translations("es")
    assert spanish.gettext(labels.EVENT["legal-harassment"]) == "hostigamiento judicial"
    assert spanish.gettext(labels.EVENT["checkin-missed"]) == "reporte de llegada no recibido"


def test_a_refusal_is_translated_with_its_role() -> None:
    spanish = i18n.translations("es")
    assert spanish.gettext(labels.ROLE_CANNOT) % {"role": spanish.gettext("viewer")} == (
        "El rol «solo lectura» no puede hacer esto."
    )


def test_every_text_the_node_writes_for_people_is_marked_for_translation() -> None:
    """The timeline's steps, the drill report and the alert a missed check-in
    raises are written outside node/web; labels.py marks the same strings so
    the extraction finds them, and the dashboard shows them translated."""
    from node.response import all_clear, checkin_desk, drill

    marked = {*labels.TIMELINE, *labels.GENERATED, *labels.DRILL_REPORT}
    written = {
        *escalation.MESSAGES, *desk.MESSAGES, *checkin_desk.GENERATED, *drill.MESSAGES, *all_clear.MESSAGES,
        all_clear.NOBODY, "all-clear",
    }
    assert sorted(written - marked) == [] and sorted(marked - written) == []
    assert set(labels.CHAIN_STEP) == {*escalation.DEFAULT_CHAIN, escalation.ROUND}


def test_every_sms_text_comes_from_the_catalog() -> None:
    """What an SMS says (a page's reply line, the answers to replies) is marked
    for extraction and has a Spanish translation that keeps its fields."""
    from node.response import sms

    assert sorted(set(sms.MESSAGES) ^ set(labels.SMS)) == []
    spanish = i18n.translations("es")
    fields = {"code": "7F3A", "time": "14:02"}
    for message in sms.MESSAGES:
        said = spanish.gettext(message)
        assert said != message and said % fields != message % fields, message


def test_the_hand_over_notice_comes_from_the_catalog() -> None:
    from datetime import UTC

    from node.response.rotation import HandOver

    assert sorted(set(desk.HAND_OVER) ^ set(labels.HAND_OVER)) == []
    record = HandOver(at=1_795_000_000_000, outgoing="Ana", incoming="Bruno", note="caso abierto")
    title, body = desk.hand_over_text(record, "Ana", "https://amparo.example.org", UTC, "es")
    assert title == "Relevo de guardia: Ana → Bruno"
    assert body.splitlines()[:2] == ["Bruno está de guardia desde 2026-11-18 11:06 UTC (respaldo: Ana).",
                                     "Nota: caso abierto"]


def test_seen_is_visto() -> None:
    spanish = i18n.translations("es")
    assert (spanish.gettext("Seen"), spanish.gettext("seen")) == ("Visto", "visto")
