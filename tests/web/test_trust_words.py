"""How an author is trusted reads the same on the dashboard as in the API
(``author_trust.text``) and the CLI: one wording, from the dashboard's catalog,
in Spanish too."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from node.directory import Trust
from node.web import i18n

TEMPLATES = Path(i18n.__file__).parent / "templates"
TRUSTS = [
    Trust(0),
    Trust(1),
    Trust(2, ("Brigada Solidaria Norte",)),
    Trust(3, ("Casa de la Memoria", "Comité Vecinal")),
    Trust(None),
]


def trust_html(lang: str, trust: dict[str, object] | None) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, extensions=["jinja2.ext.i18n"]
    )
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env.get_template("_trust.html").render(a={"author_trust": trust})


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("trust", TRUSTS)
def test_the_dashboard_says_what_the_api_says(lang: str, trust: Trust) -> None:
    assert trust_html(lang, trust.to_json()) == f' <span class="trust">({trust.words(lang)})</span>'


def test_spanish_trust_words_are_spanish() -> None:
    assert (
        trust_html("es", TRUSTS[2].to_json())
        == ' <span class="trust">(avalado por Brigada Solidaria Norte)</span>'
    )
    assert [t.words("es") for t in (TRUSTS[0], TRUSTS[1], TRUSTS[4])] == [
        "este nodo", "aliado directo de este nodo", "fuera del horizonte de confianza",
    ]  # fmt: skip
    assert trust_html("es", None) == ""  # an entry from a node that says nothing of trust
