"""What people read when a region they typed is taken or refused, in Spanish
and English from the dashboard's catalogs (node/web/i18n.py)."""

from __future__ import annotations

import pytest

from node.web.i18n import countries_of, from_environment
from node.web.region_words import region_refusal, region_resolved
from protocol.regions import UnknownRegion, resolve


def refusal(typed: str, near: tuple[str, ...] = ()) -> UnknownRegion:
    with pytest.raises(UnknownRegion) as refused:
        resolve(typed, near)
    return refused.value


def test_a_typo_is_answered_with_the_region_meant_in_both_languages() -> None:
    error = refusal("Oaxka", ("MX",))
    assert region_refusal(error, "en") == "unknown region 'Oaxka': did you mean MX-OAX (Oaxaca, Mexico)?"
    assert (
        region_refusal(error, "es") == "región desconocida 'Oaxka': ¿quisiste decir MX-OAX (Oaxaca, México)?"
    )


def test_an_ambiguous_name_lists_the_candidates_in_spanish() -> None:
    text = region_refusal(refusal("Santa Cruz"), "es")
    assert (
        text.startswith("'Santa Cruz' nombra más de una región:") and "AR-Z (Santa Cruz, Argentina)" in text
    )


def test_a_name_that_fits_nothing_says_what_to_type() -> None:
    assert "ISO 3166" in region_refusal(refusal("Xyzzyqq"), "en")
    assert region_refusal(refusal("Xyzzyqq"), "es").startswith("región desconocida 'Xyzzyqq'")


def test_a_resolved_name_is_told_in_the_readers_language() -> None:
    assert region_resolved(resolve("Oaxaca"), "es") == "región Oaxaca → MX-OAX (Oaxaca, México)"
    assert region_resolved(resolve("Oaxaca"), "en") == "region Oaxaca → MX-OAX (Oaxaca, Mexico)"


@pytest.mark.parametrize(
    ("environ", "language"),
    [
        ({"LANG": "es_MX.UTF-8"}, "es"),
        ({"LANG": "en_GB.UTF-8"}, "en"),
        ({}, "en"),
        ({"LANGUAGE": "es:en", "LANG": "en_US.UTF-8"}, "es"),
        ({"LC_ALL": "C", "LANG": "es_MX.UTF-8"}, "en"),
        ({"LANG": "fr_FR.UTF-8"}, "en"),
    ],
)
def test_the_terminal_language_comes_from_the_environment(environ: dict[str, str], language: str) -> None:
    assert from_environment(environ) == language


def test_a_locale_names_the_likely_country() -> None:
    assert countries_of("es-MX,es;q=0.9,en;q=0.8") == ("MX",)
    assert countries_of("es_CO.UTF-8") == ("CO",)
    assert countries_of("en, fr;q=0.5") == ()
    assert countries_of("") == ()
