"""A page sent by SMS carries the alert's short code and how to reply with it,
in the responder's language; other channels of the same person do not. Real
Apprise (its SMSEagle plugin, an SMS gateway on the local network) posts to a
local HTTP catcher; fake clock, real store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from node.config import Config
from node.response import sms
from node.store import Store
from tests.e2e.test_escalation import Catcher
from tests.response.test_page_language import deliver, pages_to
from tests.response.test_page_outcome import T0, FakeNode


@pytest.fixture
def node(store_url: str) -> Iterator[FakeNode]:
    store = Store(store_url)
    config = Config(name="Brigada Ejemplo", watch_regions=["MX"], allow_private_targets=["127.0.0.0/8"])
    yield FakeNode(store, [T0], config)
    store.close()


@pytest.fixture
def catcher() -> Iterator[Catcher]:
    c = Catcher()
    yield c
    c.server.shutdown()
    c.server.server_close()


def sms_sent(catcher: Catcher) -> list[str]:
    """The text of each SMS the gateway was asked to send (SMSEagle's JSON-RPC)."""
    return [doc["params"]["message"] for path, doc in catcher.pages if path.startswith("/jsonrpc/sms")]


def sms_url(catcher: Catcher) -> str:
    return f"smseagle://token@127.0.0.1:{catcher.port}/+5215550001111"


def test_a_page_by_sms_carries_the_short_code_and_the_reply(node: FakeNode, catcher: Catcher) -> None:
    node.desk.add_responder("Lucía", "responder", [sms_url(catcher), catcher.url("lucia")], None, lang="es")
    node.desk.add_shift("Lucía", T0, 24, None, False)
    alert = deliver(node)
    (text,) = sms_sent(catcher)
    code = alert[:4].upper()
    assert f"Responda por SMS: ACK {code}" in text
    (other,) = pages_to(catcher, "lucia")  # the same person's other channel: no reply line
    assert "ACK" not in other["message"] and "Responda" not in other["message"]


def test_the_short_code_names_one_open_incident() -> None:
    first = "7f3a" + "0" * 60
    second = "7f3a9" + "1" * 59
    assert sms.short_code(first, [first]) == "7F3A"
    assert sms.short_code(first, [first, second]) == "7F3A0"
    assert sms.short_code(second, [first, second]) == "7F3A9"
    assert sms.resolve("7F3A0", [first, second]) == first
    assert sms.resolve("7f3a", [first, second]) is None  # ambiguous: refused, never a guess


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("OK", sms.Reply("ok")),
        (" ok 4821 ", sms.Reply("ok", "4821")),
        ("SOS", sms.Reply("sos")),
        ("sos 9153.", sms.Reply("sos", "9153")),
        ("Ack 7f3a", sms.Reply("ack", "7F3A")),
    ],
)
def test_replies_people_type(text: str, reply: sms.Reply) -> None:
    assert sms.parse(text) == reply


@pytest.mark.parametrize("text", ["", "hola", "OK 12", "OK abcd", "ACK 7F", "ACK zzzz", "SOS 1234 5678", "x" * 600])
def test_anything_else_is_refused_without_repeating_it(text: str) -> None:
    with pytest.raises(sms.SmsRefused) as refused:
        sms.parse(text)
    assert (text.strip() or "@@") not in refused.value.message


def test_numbers_in_international_form() -> None:
    assert sms.phone_number("+52 1 555-000-1111") == "+5215550001111"
    assert sms.phone_number("0052 15550001111") == "+5215550001111"
    for bad in ("5550001111", "+52abc", "+1234567", ""):
        with pytest.raises(sms.SmsRefused):
            sms.phone_number(bad)


def test_seen_key_keeps_neither_text_nor_pin() -> None:
    key: Any = sms.seen_key(b"k" * 32, "+5215550001111", "OK 4821", "id-1")
    assert "4821" not in key and key != sms.seen_key(b"j" * 32, "+5215550001111", "OK 4821", "id-1")


# -- the SMS desk with a clock moved by hand (the real-process stories: tests/e2e/test_inbound_sms.py)
LUCIA = "+5215550001111"


@pytest.fixture
def field_node(node: FakeNode) -> FakeNode:
    node.desk.field.add_person("Lucía Ficticia", LUCIA, "es")
    node.desk.field.link("Lucía Ficticia", pin="4821", duress_pin="9153")
    return node


def test_five_wrong_pins_lock_pins_from_that_number_for_an_hour(field_node: FakeNode) -> None:
    from node.response.field import REASONS
    from node.response.sms_desk import SmsDesk

    desk = SmsDesk(field_node)  # type: ignore[arg-type]
    for i in range(5):
        answer = desk.receive(LUCIA, f"OK {1000 + i}", f"m{i}")
        assert not answer.acted and answer.reason in (REASONS["wrong-pin"], REASONS["locked"])
    locked = desk.receive(LUCIA, "OK 4821", "m5")
    assert not locked.acted and "too many wrong PINs" in locked.reason
    assert locked.reply == "Ese PIN no es correcto. No se envió nada."  # the same words as a wrong PIN
    field_node.now[0] += 30 * 60 * 1000  # the field desk's own wait is over, this number's is not
    assert "too many wrong PINs from this number" in desk.receive(LUCIA, "OK 4821", "m6").reason
    field_node.now[0] += 30 * 60 * 1000 + 1
    assert desk.receive(LUCIA, "OK 4821", "m7").acted


def test_a_bare_ok_is_not_counted_as_a_guess(field_node: FakeNode) -> None:
    from node.response.sms_desk import SmsDesk

    desk = SmsDesk(field_node)  # type: ignore[arg-type]
    for i in range(6):
        assert not desk.receive(LUCIA, "OK", f"m{i}").acted
    field_node.now[0] += 20 * 60 * 1000  # past the field desk's 15 minutes, well inside this number's hour
    assert desk.receive(LUCIA, "OK 4821", "m9").acted


def test_replay_windows(field_node: FakeNode) -> None:
    from node.response.sms_desk import REPEAT_WINDOW_MS, SmsDesk

    desk = SmsDesk(field_node)  # type: ignore[arg-type]
    assert desk.receive(LUCIA, "OK 4821", "gw-1").acted
    assert desk.receive(LUCIA, "OK 4821", "gw-1").reason == "replayed message"
    assert desk.receive(LUCIA, "OK 4821").acted  # no gateway id: the same text is refused for two minutes
    assert desk.receive(LUCIA, "OK 4821").reason == "replayed message"
    field_node.now[0] += REPEAT_WINDOW_MS
    assert desk.receive(LUCIA, "OK 4821").acted
    assert desk.receive(LUCIA, "OK 4821", "gw-1").reason == "replayed message"  # with an id: a day
