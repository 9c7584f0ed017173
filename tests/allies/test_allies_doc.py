"""The webhook verification example in docs/allies.md works as written: the
Python block is run against a signature made the way the node signs deliveries."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

from node.allies import messages

DOC = Path(__file__).resolve().parents[2] / "docs" / "allies.md"
NOW = 1_795_000_000


def example() -> Any:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text("utf-8"), re.S)
    (block,) = [b for b in blocks if "def verify" in b]
    namespace: dict[str, Any] = {}
    exec(compile(block, str(DOC), "exec"), namespace)  # the doc's own code, as a receiver would paste it
    return namespace["verify"]


def test_the_documented_receiver_accepts_what_the_node_signs_and_nothing_else() -> None:
    verify = example()
    secret = secrets.token_hex(32)  # as `amparo subscribe add --json` prints it
    body = messages.webhook_body(
        {"id": "5f0c", "headline": "Defensora detenida"},
        delivery="s-5f0c",
        subscription="s",
        link="http://127.0.0.1:7171/ui/alerts/5f0c",
    )
    header = messages.sign(bytes.fromhex(secret), NOW, body)
    assert verify(secret, header, body, now=NOW)
    assert verify(secret, header, body, now=NOW + 299)
    assert not verify(secret, header, body, now=NOW + 301)  # a replay
    assert not verify(secret, header, body + b" ", now=NOW)
    assert not verify(secrets.token_hex(32), header, body, now=NOW)
    assert not verify(secret, "garbage", body, now=NOW)
    assert verify(secret, header, body) is False  # today's clock: far from NOW


def test_the_shipped_check_takes_the_secret_as_printed() -> None:
    secret = secrets.token_hex(32)
    body = b'{"event":"alert"}'
    header = messages.sign(bytes.fromhex(secret), NOW, body)
    assert messages.verify(secret, header, body, now=NOW)
    assert messages.verify(bytes.fromhex(secret), header, body, now=NOW)
    assert not messages.verify("not hex", header, body, now=NOW)


def test_the_documented_body_has_the_keys_a_delivery_has() -> None:
    text = DOC.read_text("utf-8")
    documented = set(
        re.findall(r'^  "(\w+)":', text.split("Body (keys sorted, UTF-8):", 1)[1].split("```", 2)[1], re.M)
    )
    sent = set(
        messages.webhook_body({}, delivery="d", subscription="s", link="l").decode().strip("{}").split(",")
    )
    assert documented == {k.split(":")[0].strip('"') for k in sent}
