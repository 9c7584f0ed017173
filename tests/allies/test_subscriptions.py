"""Which alerts a subscription wants, what allies receive, and how retries back off."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.alerts import BODY_CHARS, TITLE_CHARS, phone_text
from node.allies import messages
from node.allies.delivery import FIRST_RETRY_MS, MAX_RETRY_MS, RETRY
from node.allies.subscriptions import Subscription, SubscriptionError, parse
from node.outbound import OutboundPolicy
from protocol import Alert, Area
from protocol.alert import SEVERITIES

HOOK = {"kind": "webhook", "url": "https://aliados.example.org/amparo"}


CLOSED = OutboundPolicy()


def sub(policy: OutboundPolicy = CLOSED, **doc: Any) -> Subscription:
    return parse({"regions": ["MX"], "channel": HOOK} | doc, sub_id="s1", secret="00" * 32, now=0, policy=policy)


def alert(region: str = "MX-OAX", **kw: Any) -> Alert:
    return Alert(areas=(Area(region),), **({"severity": "severe", "headline": "Defensora amenazada"} | kw))


def test_region_hierarchy_decides() -> None:
    assert sub().wants(alert("MX-OAX"))
    assert not sub(regions=["CO"]).wants(alert("MX-OAX"))
    assert sub(regions=["*"]).wants(alert("CO-DC"))
    assert not sub(regions=["MX-OAX"]).wants(alert("MX"))  # a country-wide alert is not inside Oaxaca


@pytest.mark.parametrize("minimum", SEVERITIES)
def test_minimum_severity(minimum: str) -> None:
    rank = {s: i for i, s in enumerate(reversed(SEVERITIES))}  # unknown=0 … extreme=4
    s = sub(min_severity=minimum)
    for severity in SEVERITIES:
        assert s.wants(alert(severity=severity)) == (rank[severity] >= rank[minimum])


def test_updates_and_cancels_follow_the_alert_whatever_their_severity() -> None:
    s = sub(min_severity="severe")
    ref = (b"\x01" * 32,)
    assert s.wants(alert(severity="minor", msg_type="cancel", references=ref))
    assert not s.wants(alert(severity="minor"))


def test_drills_only_when_asked() -> None:
    assert not sub().wants(alert(status="exercise"))
    assert not sub().wants(alert(status="test"))
    assert sub(exercises=True).wants(alert(status="exercise"))


def test_restricted_needs_an_explicit_opt_in() -> None:
    assert not sub().wants(alert(scope="restricted"))
    assert sub(scopes=["restricted"]).wants(alert(scope="restricted"))
    assert not sub(scopes=["public"]).wants(alert(scope="members"))


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"regions": []}, "regions"),
        ({"regions": ["MX-OAXX"]}, "MX-OAX"),  # the error suggests the close code
        ({"min_severity": "huge"}, "min_severity"),
        ({"scopes": ["everyone"]}, "scopes"),
        ({"exercises": "yes"}, "exercises"),
        ({"channel": {"kind": "pigeon", "url": "x"}}, "channel.kind"),
        ({"channel": {"kind": "webhook", "url": "ftp://x"}}, "channel.url"),
        ({"channel": {"kind": "webhook", "url": "http://aliados.example.org/"}}, "https"),
        ({"channel": {"kind": "webhook", "url": "https://h:99999/"}}, "port"),
        ({"channel": "https://x"}, "channel"),
        ({"label": "x" * 200}, "label"),
    ],
)
def test_bad_input_names_the_field(doc: dict[str, Any], field: str) -> None:
    with pytest.raises(SubscriptionError, match=field):
        sub(**doc)


def test_plain_http_and_loopback_only_when_the_operator_opens_the_range() -> None:
    for url in ("http://127.0.0.1:9/x", "http://localhost/x", "https://127.0.0.1:9/x"):
        with pytest.raises(SubscriptionError, match="allow_private_targets"):
            sub(channel={"kind": "webhook", "url": url})
    opened = OutboundPolicy.from_setting(["127.0.0.0/8"])
    assert sub(opened, channel={"kind": "webhook", "url": "http://127.0.0.1:9/x"}).channel.kind == "webhook"
    assert sub(opened, channel={"kind": "webhook", "url": "http://localhost/x"}).channel.kind == "webhook"


def test_listings_hide_credentials_and_the_secret() -> None:
    s = sub(channel={"kind": "apprise", "url": "mailtos://ana:contraseña@correo.example.org"})
    shown = s.public_doc()
    assert "contraseña" not in str(shown) and "secret" not in shown
    hook = sub(channel={"kind": "webhook", "url": "https://h.example.org/p?token=abc"})
    assert "abc" not in str(hook.public_doc())
    assert Subscription.from_doc(hook.to_doc()) == hook


@given(st.binary(max_size=2000), st.integers(0, 2**40))
def test_signature_verifies_and_any_change_breaks_it(body: bytes, t: int) -> None:
    secret = b"k" * 32
    header = messages.sign(secret, t, body)
    assert messages.verify(secret, header, body, now=t)
    assert not messages.verify(secret, header, body + b"x", now=t)
    assert not messages.verify(b"j" * 32, header, body, now=t)
    assert not messages.verify(secret, header, body, now=t + 301)  # stale: a replay


def test_verify_rejects_garbage_headers() -> None:
    for header in ("", "t=1", "v1=00", "t=x,v1=00", "nonsense"):
        assert not messages.verify(b"k", header, b"{}", now=1)


def test_phone_text_fits_and_labels_drills() -> None:
    long = alert(status="exercise", instruction="Acudir " * 200, headline="H" * 160)
    title, body = phone_text(long, link="http://127.0.0.1:7000/ui/alerts/ab")
    assert title.startswith("[DRILL] SEVERE · Oaxaca (MX-OAX)")
    assert len(title) <= TITLE_CHARS and len(body) <= BODY_CHARS
    assert body.endswith("http://127.0.0.1:7000/ui/alerts/ab")
    title, _ = phone_text(alert(msg_type="cancel", references=(b"\x01" * 32,)), link="l")
    assert title.startswith("CANCELLED: ")


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    delays = [RETRY.delay_ms(n, rng) for n in range(1, 31)]
    assert FIRST_RETRY_MS // 2 <= delays[0] < FIRST_RETRY_MS
    assert all(MAX_RETRY_MS // 2 <= d < MAX_RETRY_MS for d in delays[9:])
    for n, delay in enumerate(delays[:9]):
        assert FIRST_RETRY_MS * 2**n // 2 <= delay < FIRST_RETRY_MS * 2**n


def test_an_apprise_channel_has_a_language() -> None:
    assert sub().lang == "en"
    spanish = sub(lang="es")
    assert spanish.lang == "es" and Subscription.from_doc(spanish.to_doc()).lang == "es"
    assert Subscription.from_doc({k: v for k, v in spanish.to_doc().items() if k != "lang"}).lang == "en"
    with pytest.raises(SubscriptionError, match="lang"):
        sub(lang="fr")
    title, _ = phone_text(alert(), link="https://amparo.example.org/ui/alerts/x", lang=spanish.lang)
    assert title.startswith("GRAVE")


def test_a_webhook_may_opt_in_to_several_alerts_per_request() -> None:
    assert not sub().batch  # one alert per request unless asked
    batched = sub(batch=True)
    assert batched.batch and Subscription.from_doc(batched.to_doc()).batch
    assert not Subscription.from_doc({k: v for k, v in batched.to_doc().items() if k != "batch"}).batch  # older records
    assert batched.public_doc()["batch"] is True
    with pytest.raises(SubscriptionError, match="batch: must be true or false"):
        sub(batch="yes")
    with pytest.raises(SubscriptionError, match="batch: only a webhook"):
        sub(batch=True, channel={"kind": "apprise", "url": "mailtos://ana:clave@correo.example.org"})


def test_a_batch_body_is_the_sorted_json_of_its_deliveries_in_order() -> None:
    """Each item is exactly the body that delivery alone would have had; the
    whole is what ``json.dumps(sort_keys=True)`` writes, so the signature covers it."""
    items = [
        messages.webhook_body({"id": f"{k:02x}", "headline": "Bloqueo ñ"}, delivery=f"s1-{k:02x}", subscription="s1", link="l")
        for k in range(3)
    ]
    body = messages.batch_body(items, subscription="s1")
    doc = json.loads(body)
    assert doc["event"] == messages.BATCH_EVENT and doc["subscription"] == "s1"
    assert [d["delivery"] for d in doc["deliveries"]] == ["s1-00", "s1-01", "s1-02"]
    assert body == json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
