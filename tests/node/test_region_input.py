"""Regions as people type them where the node builds alerts and subscriptions
(issue 13, item 7): normalized before an envelope is made; refusals say the
words typed, never an internal path such as ``alert.areas[0].region``."""

from __future__ import annotations

import pytest

from node.alerts import AlertInputError, alert_from_request, split_regions
from node.allies.subscriptions import SubscriptionError, parse
from node.outbound import OutboundPolicy

HOOK = {"kind": "webhook", "url": "https://aliados.example.org/amparo"}


def compose(*regions: str, near: tuple[str, ...] = ()) -> tuple[str, ...]:
    alert = alert_from_request({"regions": list(regions), "headline": "Desalojo en curso"}, near=near)
    return tuple(a.region for a in alert.areas)


def test_an_alert_takes_codes_in_any_letters_and_names() -> None:
    assert compose("mx-oax", "Chiapas", "Estado de México") == ("MX-OAX", "MX-CHP", "MX-MEX")


def test_the_other_regions_of_an_alert_settle_a_shared_name() -> None:
    assert compose("AR-B", "Córdoba") == ("AR-B", "AR-X")
    assert compose("Córdoba", near=("ES",)) == ("ES-CO",)


def test_a_refused_region_names_what_was_typed_and_the_region_meant() -> None:
    with pytest.raises(AlertInputError) as refused:
        compose("Oaxka", near=("MX",))
    assert refused.value.message == "unknown region 'Oaxka': did you mean MX-OAX (Oaxaca, Mexico)?"
    assert refused.value.region is not None and refused.value.region.typed == "Oaxka"
    with pytest.raises(AlertInputError, match="names more than one region") as ambiguous:
        compose("Santa Cruz")
    assert "areas" not in ambiguous.value.message


def test_one_box_of_regions_splits_codes_but_keeps_names_whole() -> None:
    assert split_regions("MX-OAX mx-chp") == ["MX-OAX", "mx-chp"]
    assert split_regions("Estado de México, Oaxaca") == ["Estado de México", "Oaxaca"]
    assert split_regions("MX-OAX, Estado de México,,") == ["MX-OAX", "Estado de México"]


def test_a_subscription_takes_regions_as_people_type_them() -> None:
    doc = {"regions": ["mx", "Oaxaca", "*"], "channel": HOOK}
    subscription = parse(doc, sub_id="s1", secret="00" * 32, now=0, policy=OutboundPolicy())
    assert subscription.regions == ("MX", "MX-OAX", "*")
    with pytest.raises(SubscriptionError, match=r"^regions: unknown region 'Oaxka': did you mean MX-OAX"):
        parse(
            doc | {"regions": ["MX", "Oaxka"]}, sub_id="s1", secret="00" * 32, now=0, policy=OutboundPolicy()
        )
