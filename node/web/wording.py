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
    fields = {k: t.gettext(CHAIN_STEP.get(v, v)) if k == "step" else v for k, v in params.items()}
    try:
        return t.gettext(message) % fields
    except (KeyError, TypeError, ValueError):  # a translation that lost a field: never a blank step
        try:
            return message % dict(params)
        except (KeyError, TypeError, ValueError):
            return message


def generated(text: str, t: NullTranslations) -> str:
    """``text`` in the reader's language when the node generated it from a
    template (``Missed check-in: Lucía``), else as written."""
    return localized(text, t.gettext) if text else text
