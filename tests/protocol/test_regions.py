"""Regions (SPEC §2): ISO 3166 codes, hierarchical matching and typo suggestions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given

from protocol import errors as err
from protocol import regions
from tests.strategies import REGION_SAMPLE
from tests.strategies import regions as region_codes


@pytest.mark.parametrize("code", ["*", "MX", "MX-OAX", "FR-75C", "FR-IDF", "GB-LND", "US-CA", "CO-ANT"])
def test_valid_codes(code: str) -> None:
    assert regions.is_known(code) and regions.is_well_formed(code)
    assert regions.check(code) == code
    assert regions.check_wire(code) == code


@pytest.mark.parametrize("code", ["XZ-QQQ", "XX", "MX-ZZZ", "QM-1", "AA-A1"])
def test_well_formed_codes_the_catalogue_does_not_know(code: str) -> None:
    """The wire takes them (a pycountry update must not split the mesh); a
    person typing one is told it is unknown."""
    assert regions.is_well_formed(code) and not regions.is_known(code)
    assert regions.check_wire(code, "alert.areas[0].region") == code
    with pytest.raises(err.BadField, match="unknown region"):
        regions.check(code)
    assert regions.ancestors(code)[-1] == "*"
    assert regions.matches(code[:2], code) and regions.matches("*", code)
    assert regions.name(code) == code


@pytest.mark.parametrize(
    "code", ["", "mx", "Mx", "mx-oax", "MX-oax", "MX-", "MX-OAXX", "MEX", "**", " MX", "M", "MX_OAX", "MX-OA-X"]
)
def test_invalid_codes(code: str) -> None:
    """One spelling per region: lower case is refused even where pycountry would
    match it, so that matching and ids never depend on case."""
    assert not regions.is_well_formed(code) and not regions.is_known(code)
    for check in (regions.check, regions.check_wire):
        with pytest.raises(err.BadField) as info:
            check(code, "alert.areas[0].region")
        assert info.value.field == "alert.areas[0].region"


@pytest.mark.parametrize("value", [None, 5, b"MX", "X" * 11, ["MX"]])
def test_non_text_or_long_values(value: object) -> None:
    for check in (regions.check, regions.check_wire):
        with pytest.raises(err.BadField, match="ISO 3166"):
            check(value)


def test_every_catalogued_code_is_well_formed() -> None:
    """Syntax alone accepts everything the catalogue holds (the wire refuses
    nothing a person can pick)."""
    import pycountry

    codes = [c.alpha_2 for c in pycountry.countries] + [s.code for s in pycountry.subdivisions]
    assert len(codes) > 5000
    assert all(regions.is_well_formed(c) for c in codes)


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [("MX-OAXX", "MX-OAX"), ("mx-oax", "MX-OAX"), ("mx", "MX"), ("FR-75", "FR-75C"), ("US-CAA", "US-CA")],
)
def test_suggestions(typo: str, suggestion: str) -> None:
    assert suggestion in regions.suggest(typo)
    with pytest.raises(err.BadField, match=f"did you mean .*{suggestion}"):
        regions.check(typo)


def test_no_suggestion_for_nonsense() -> None:
    assert regions.suggest("QQQQQQQQ") == []
    with pytest.raises(err.BadField) as info:
        regions.check("QQQQQQQQ")
    assert "did you mean" not in info.value.message


@pytest.mark.parametrize(
    ("subscription", "alert_region", "expected"),
    [
        ("MX", "MX-OAX", True),
        ("MX-OAX", "MX-OAX", True),
        ("*", "MX-OAX", True),
        ("*", "*", True),
        ("MX-OAX", "MX", False),  # a country-wide alert is not inside one state
        ("GT", "MX-OAX", False),
        ("MX-OAX", "MX-CHP", False),
        ("FR-IDF", "FR-75C", True),  # subdivision inside a parent subdivision
        ("FR", "FR-75C", True),
        ("GB-ENG", "GB-LND", True),
        ("MX", "*", False),
    ],
)
def test_hierarchical_matching(subscription: str, alert_region: str, expected: bool) -> None:
    assert regions.matches(subscription, alert_region) is expected


@given(region_codes)
def test_every_region_is_inside_itself_its_country_and_everywhere(code: str) -> None:
    chain = regions.ancestors(code)
    assert chain[0] == code and chain[-1] == "*"
    assert len(set(chain)) == len(chain)
    assert all(regions.is_known(c) for c in chain)
    assert regions.matches(code, code) and regions.matches("*", code)
    if code != "*":
        assert regions.matches(code.split("-")[0], code)


def test_names() -> None:
    assert regions.name("MX") == "Mexico"
    assert regions.name("MX-OAX") == "Oaxaca"
    assert regions.name("*") == "everywhere"


def test_sample_is_broad() -> None:
    assert len(REGION_SAMPLE) > 400
    assert any(regions.ancestors(c)[1:2] and "-" in regions.ancestors(c)[1] for c in REGION_SAMPLE)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Alemania", "DE"),  # Spanish
        ("Deutschland", "DE"),  # German
        ("Allemagne", "DE"),  # French
        ("alemanha", "DE"),  # Portuguese, lower case
        ("México", "MX"),
        ("mexico", "MX"),  # accents ignored
        ("Oaxaca", "MX-OAX"),
    ],
)
def test_search_finds_a_region_by_its_name_in_another_language(text: str, code: str) -> None:
    found = regions.search(text)
    assert found and found[0][0] == code, found



def test_load_catalogue_reads_the_subdivisions_up_front() -> None:
    """A node reads the catalogue before it listens, not while storing its first
    alert; in a fresh interpreter nothing has read it until then."""
    script = (
        "import pycountry\n"
        "from protocol import regions\n"
        "before = (pycountry.countries._is_loaded, pycountry.subdivisions._is_loaded)\n"
        "regions.load_catalogue()\n"
        "print(before, (pycountry.countries._is_loaded, pycountry.subdivisions._is_loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2]
    )
    assert out.stdout.split() == ["(False,", "False)", "(True,", "True)"]
