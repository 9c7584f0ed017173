"""Regions as people type them (issue 13, item 7): ``protocol.regions.resolve``
turns codes in any letters and names in any accents into the code, before an
envelope is made; the wire itself stays strict."""

from __future__ import annotations

import pytest

from protocol.errors import BadField
from protocol.regions import UnknownRegion, check_wire, label, resolve


@pytest.mark.parametrize(
    ("typed", "code", "how"),
    [
        ("MX-OAX", "MX-OAX", "code"),
        ("mx-oax", "MX-OAX", "case"),
        ("  Mx-Oax ", "MX-OAX", "case"),
        ("mx", "MX", "case"),
        ("*", "*", "code"),
        ("Oaxaca", "MX-OAX", "name"),
        ("OAXACA", "MX-OAX", "name"),
        ("Estado de México", "MX-MEX", "name"),
        ("estado de mexico", "MX-MEX", "name"),
        ("Ciudad de Mexico", "MX-CMX", "name"),
        ("CDMX", "MX-CMX", "name"),
        ("Michoacán", "MX-MIC", "name"),  # the catalogue says "Michoacán de Ocampo"
        ("michoacan", "MX-MIC", "name"),
        ("Nuevo Leon", "MX-NLE", "name"),
        ("México", "MX", "name"),  # the country, not the state of the same name
        ("Alemania", "DE", "name"),  # a country's Spanish name
        ("Brasil", "BR", "name"),
    ],
)
def test_codes_in_any_letters_and_names_in_any_accents_resolve(typed: str, code: str, how: str) -> None:
    resolved = resolve(typed)
    assert (resolved.code, resolved.how) == (code, how)
    assert resolved.changed == (how != "code")


def test_the_wire_stays_strict_about_letters() -> None:
    with pytest.raises(BadField):
        check_wire("mx-oax")
    assert check_wire(resolve("mx-oax").code) == "MX-OAX"


def test_a_name_several_countries_share_is_refused_with_the_candidates() -> None:
    with pytest.raises(UnknownRegion) as refused:
        resolve("Córdoba")
    assert refused.value.ambiguous
    assert {"AR-X", "CO-COR", "ES-CO"} <= {code for code, _ in refused.value.candidates}
    assert "Córdoba" in refused.value.message and "AR-X" in refused.value.message


def test_the_likely_country_settles_a_shared_name() -> None:
    assert resolve("Córdoba", near=("AR",)).code == "AR-X"
    assert resolve("cordoba", near=("ES-SE", "ES-MA")).code == "ES-CO"


def test_suggestions_stay_in_the_likely_country() -> None:
    with pytest.raises(UnknownRegion) as refused:
        resolve("Oaxka", near=("MX",))
    assert [code for code, _ in refused.value.candidates] == ["MX-OAX"]
    assert refused.value.message == "unknown region 'Oaxka': did you mean MX-OAX (Oaxaca, Mexico)?"


def test_the_country_prefix_typed_is_the_likely_country() -> None:
    with pytest.raises(UnknownRegion) as refused:
        resolve("mx-oaxx")
    codes = [code for code, _ in refused.value.candidates]
    assert codes[0] == "MX-OAX" and all(c.startswith("MX-") for c in codes)


def test_oaxaca_never_suggests_azerbaijan() -> None:
    for typed in ("Oaxka", "Oaxacca", "Oaxca", "oajaca"):
        try:
            resolve(typed, near=("MX-CHP",))
        except UnknownRegion as exc:
            assert not any(code.startswith("AZ") for code, _ in exc.candidates), typed
            assert exc.candidates and exc.candidates[0][0] == "MX-OAX", typed


def test_errors_speak_the_words_typed_not_field_paths() -> None:
    with pytest.raises(UnknownRegion) as refused:
        resolve("Xyzzyqq")
    assert refused.value.message.startswith("unknown region 'Xyzzyqq'")
    assert "areas" not in refused.value.message and "[" not in refused.value.message
    for empty in ("", "   ", None, 7):
        with pytest.raises(UnknownRegion):
            resolve(empty)


def test_labels_name_the_country_in_the_readers_language() -> None:
    assert label("MX-OAX") == "Oaxaca, Mexico"
    assert label("MX-OAX", "es") == "Oaxaca, México"
    assert label("DE", "es") == "Alemania"
    assert resolve("Oaxaca").to_doc() == {
        "typed": "Oaxaca",
        "code": "MX-OAX",
        "how": "name",
        "name": "Oaxaca, Mexico",
    }
