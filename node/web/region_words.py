"""Regions as people read about them: what a name they typed was taken to mean,
and why one was refused, in their language from the dashboard's catalogs. The
dashboard's compose page and the command line (node/cli/region_input.py) say these."""

from __future__ import annotations

from node.web import labels
from node.web.i18n import translations
from protocol.regions import Resolved, UnknownRegion, label


def region_refusal(error: UnknownRegion, language: str) -> str:
    """Why a region a person typed was refused, in their language and words:
    "unknown region 'Oaxka': did you mean MX-OAX (Oaxaca, México)?"."""
    t = translations(language)
    listed = ", ".join(f"{code} ({label(code, language)})" for code, _ in error.candidates)
    if error.ambiguous:
        return t.gettext(labels.REGION_AMBIGUOUS) % {"typed": repr(error.typed), "candidates": listed}
    if listed:
        return t.gettext(labels.REGION_UNKNOWN_HINT) % {"typed": repr(error.typed), "candidates": listed}
    return t.gettext(labels.REGION_UNKNOWN) % {"typed": repr(error.typed)}


def region_resolved(resolved: Resolved, language: str) -> str:
    """What a name a person typed was taken to mean: "region Oaxaca → MX-OAX (Oaxaca, México)"."""
    text = translations(language).gettext(labels.REGION_RESOLVED)
    return text % {"typed": resolved.typed, "code": resolved.code, "name": label(resolved.code, language)}
