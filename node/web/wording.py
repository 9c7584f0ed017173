"""The dashboard's words for texts the node wrote itself, in the reader's language.

Two kinds, two ways:

- Timeline steps (escalation, pages) are stored as a catalog message and its
  fields (``node.response.desk.note``), so they are translated when shown;
  the ``step`` field, a chain step, is translated as a word too. Notes written
  before messages were kept have only their English text, and show it.
- The alert a missed check-in raises is signed, and travels, in English (its
  headline, instruction and, on a late check-in, its cancel's reason:
  ``node.response.checkin_desk.GENERATED``). A text that is exactly one of
  those templates filled in is shown as the catalog's translation of it;
  anything else a person wrote is shown as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from gettext import NullTranslations

from node.all_clear import FIELD_WORDS
from node.response.all_clear import NOBODY
from node.response.checkin_desk import localized
from node.timeline import Step
from node.web.labels import CHAIN_STEP


def step_text(step: Step, t: NullTranslations) -> str:
    """A timeline step's text as the reader reads it."""
    if step.message:
        return said(step.message, step.params, t)
    return generated(step.text, t)


def said(message: str, params: Mapping[str, str], t: NullTranslations) -> str:
    """A catalog message with its fields; an unknown or broken one falls back to English."""
    fields = {k: _field(k, v, t) for k, v in params.items()}
    try:
        return t.gettext(message) % fields
    except (KeyError, TypeError, ValueError):  # a translation that lost a field: never a blank step
        try:
            return message % dict(params)
        except (KeyError, TypeError, ValueError):
            return message


def _field(key: str, value: str, t: NullTranslations) -> str:
    """A field of a timeline message in the reader's language: a chain step, a
    follow-up's kind, "nobody reachable" and field names are catalog words; a
    cancel's reason is translated when the node generated it; names stay."""
    if key == "step":
        return t.gettext(CHAIN_STEP.get(value, value))
    if key == "kind" or (key == "people" and value == NOBODY):
        return t.gettext(value)
    if key == "fields":
        return ", ".join(t.gettext(FIELD_WORDS.get(f, f)) for f in value.split(", "))
    if key == "reason":
        return generated(value, t)
    return value


def generated(text: str, t: NullTranslations) -> str:
    """``text`` in the reader's language when the node generated it from a
    template (``Missed check-in: Lucía``), else as written."""
    return localized(text, t.gettext) if text else text
