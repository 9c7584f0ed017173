"""The outbound URL policy on a real node: whoever may subscribe cannot point a
webhook or an Apprise channel at the cloud metadata service, loopback or the
LAN, nor send in plain text; the operator can open a range explicitly; and a
channel that passed when added is checked again at every delivery (a name that
later resolves to a private address, or a range the operator closed)."""

from __future__ import annotations

from typing import Any

import pytest

from node.devmesh import LocalNode
from tests.e2e.test_allies import Receiver, receiver, subscribe  # noqa: F401 - the fixture
from tests.e2e.test_gossip import wait_until

pytestmark = pytest.mark.slow


def refused(node: LocalNode, *args: str) -> str:
    result = node.amparo(*args, check=False)
    assert result.returncode != 0, result.stdout
    return result.stderr


def test_private_and_plain_text_targets_are_refused_unless_the_operator_opens_them(mesh_factory: Any) -> None:
    (node,) = mesh_factory(1).nodes
    metadata = refused(
        node, "subscribe", "add", "--region", "MX", "--webhook", "http://169.254.169.254/latest/meta-data/"
    )
    assert "169.254.169.254, a link-local address" in metadata and "allow_private_targets" in metadata
    metadata = refused(
        node, "subscribe", "add", "--region", "MX", "--webhook", "https://169.254.169.254/latest/"
    )
    assert "169.254.169.254" in metadata and "link-local" in metadata and "allow_private_targets" in metadata
    lan = refused(node, "subscribe", "add", "--region", "MX", "--apprise", "jsons://192.168.1.10/hook")
    assert "private address" in lan and "allow_private_targets" in lan
    assert "not encrypted" in refused(
        node, "subscribe", "add", "--region", "MX", "--apprise", "json://93.184.215.14/x"
    )
    loopback = refused(
        node, "subscribe", "add", "--region", "MX", "--webhook", "https://[::ffff:127.0.0.1]:9/x"
    )
    assert "loopback" in loopback
    assert "loopback" in refused(node, "subscribe", "add", "--region", "MX", "--webhook", "https://127.1:9/x")
    responder = refused(node, "responder", "add", "Ana", "--channel", "jsons://10.0.0.5/page")
    assert "private address" in responder and "allow_private_targets" in responder
    assert node.api.get("/api/v1/subscriptions")["subscriptions"] == []

    node.stop()
    node.configure(allow_private_targets=["169.254.169.254/32", "192.168.1.0/24", "10.0.0.0/8"])
    node.start()
    subscribe(node, "--region", "MX", "--webhook", "https://169.254.169.254/latest/")
    subscribe(
        node, "--region", "MX", "--apprise", "json://192.168.1.10/hook"
    )  # plain text, inside an opened range
    node.amparo("responder", "add", "Ana", "--channel", "jsons://10.0.0.5/page")
    assert len(node.api.get("/api/v1/subscriptions")["subscriptions"]) == 2
    assert "not encrypted" in refused(
        node, "subscribe", "add", "--region", "MX", "--apprise", "json://93.184.215.14/x"
    )


def test_deliveries_are_checked_again_when_they_are_sent(mesh_factory: Any, receiver: Receiver) -> None:  # noqa: F811
    mesh = mesh_factory(1, allow_private_targets=["127.0.0.0/8"])
    (node,) = mesh.nodes
    subscribe(node, "--region", "MX", "--webhook", receiver.url("hook"))
    subscribe(node, "--region", "MX", "--apprise", f"json://127.0.0.1:{receiver.port}/phone")
    node.send(headline="While the range is open")
    wait_until(lambda: len(receiver.got) == 2, timeout=30, what="both deliveries")

    # The operator closes the range (or a name now resolves to 127.0.0.1): nothing more leaves.
    node.stop()
    node.configure(allow_private_targets=[])
    node.start()
    node.send(headline="After the range was closed")

    def errors() -> list[str]:
        return [s["deliveries"].get("last_error", "") for s in node.api.get("/api/v1/status")["deliveries"]]

    wait_until(lambda: all("outbound policy" in e for e in errors()), timeout=30, what="both refusals")
    assert len(receiver.got) == 2
    assert all("127.0.0.1, a loopback address" in e for e in errors()), errors()
