"""The dashboard's words for texts the node wrote itself (node.web.wording):
timeline steps kept as catalog messages are told in the reader's language with
their fields, the chain step translated too; older notes and anything a person
wrote show as written; a generated text is recognised only when it is exactly
a template filled in."""

from __future__ import annotations

from node.response import escalation
from node.timeline import Step
from node.web import i18n, wording

ES = i18n.translations("es")
EN = i18n.translations("en")


def test_a_step_kept_as_a_message_reads_in_each_language() -> None:
    step = Step(
        0,
        "escalation",
        "",
        "no acknowledgement in 5 min: paged backup",
        message=escalation.NO_ACK_PAGED,
        params={"timeout": "5 min", "step": "backup"},
    )
    assert wording.step_text(step, ES) == "sin respuesta en 5 min: se avisó a: respaldo"
    assert wording.step_text(step, EN) == "no acknowledgement in 5 min: paged backup"
    everyone = Step(0, "escalation", "", "", message=escalation.PAGED, params={"step": "all"})
    assert wording.step_text(everyone, ES) == "se avisó a: todas las personas"


def test_older_notes_and_peoples_words_show_as_written() -> None:
    assert wording.step_text(Step(0, "escalation", "", "paged on-call"), ES) == "paged on-call"
    assert wording.step_text(Step(0, "debrief", "Ana", "Missed check-in: nadie"), ES) == (
        "Reporte de llegada no recibido: nadie"  # exactly the template: it is the node's own text
    )
    assert wording.generated("Missed check-in", ES) == "Missed check-in"  # not the template filled in
    assert wording.generated("Note: Missed check-in: Lucía", ES) == "Note: Missed check-in: Lucía"
    assert wording.generated("Lucía checked in.", ES) == "Lucía se reportó."
    assert wording.generated("", ES) == ""


def test_a_broken_message_falls_back_to_english_not_to_nothing() -> None:
    step = Step(0, "escalation", "", "", message="paged %(step)s", params={})  # a field went missing
    assert wording.step_text(step, ES) == "paged %(step)s"
