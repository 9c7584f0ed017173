"""The outbound URL policy: which addresses a webhook or Apprise channel may
reach, how the operator opens a range, and that the check runs on the address
actually connected to (a name that resolves to 127.0.0.1 at delivery time, the
DNS-rebinding case, is refused by the aiohttp resolver and by the Apprise guard)."""

from __future__ import annotations

import asyncio
import re
import socket
from typing import Any

import pytest

from node import outbound
from node.outbound import OutboundPolicy, OutboundRefused, is_plaintext_apprise

CLOSED = OutboundPolicy()


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("169.254.169.254", "link-local"),  # AWS, GCP, Azure metadata
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "private"),  # AWS metadata over IPv6 (a ULA)
        ("100.100.100.200", "private"),  # Alibaba metadata (carrier-grade NAT range)
        ("10.0.0.5", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.10", "private"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "public"),  # multicast
        ("192.0.2.1", "public"),  # documentation range
        ("203.0.113.7", "public"),  # documentation range
    ],
)
def test_non_public_addresses_are_refused_naming_the_rule(address: str, kind: str) -> None:
    with pytest.raises(OutboundRefused, match=kind) as info:
        CLOSED.check_address(address)
    assert "allow_private_targets" in str(info.value)


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2001:4860:4860::8888"])
def test_public_addresses_pass(address: str) -> None:
    CLOSED.check_address(address)


def test_the_operator_opens_exactly_the_ranges_listed() -> None:
    opened = OutboundPolicy.from_setting(["127.0.0.0/8", "192.168.1.0/24"])
    opened.check_address("127.0.0.1")
    opened.check_address("::ffff:192.168.1.20")
    with pytest.raises(OutboundRefused):
        opened.check_address("192.168.2.1")
    with pytest.raises(OutboundRefused, match="link-local"):
        opened.check_address("169.254.169.254")


@pytest.mark.parametrize(
    "host", ["127.1", "2130706433", "0x7f.0.0.1", "localhost", "LOCALHOST.", "a.localhost"]
)
def test_hosts_that_stand_for_loopback_without_dns_are_refused_when_added(host: str) -> None:
    with pytest.raises(OutboundRefused, match="loopback"):
        CLOSED.check_url(f"https://{host}:9/x", plaintext=False)


def test_plain_text_only_to_an_opened_range() -> None:
    with pytest.raises(OutboundRefused, match="not encrypted"):
        CLOSED.check_url("http://hooks.example.org/x", plaintext=True)
    opened = OutboundPolicy.from_setting(["10.0.0.0/8"])
    opened.check_url("http://10.1.2.3/x", plaintext=True)
    with pytest.raises(OutboundRefused, match="not encrypted"):
        opened.check_url("http://hooks.example.org/x", plaintext=True)  # a name: its address may change
    CLOSED.check_url("https://hooks.example.org/x", plaintext=False)  # names are checked when sending


@pytest.mark.parametrize(
    ("url", "plain"),
    [
        ("json://hooks.example.org/x", True),
        ("jsons://hooks.example.org/x", False),
        ("mailto://ana:pw@correo.example.org", True),
        ("mailtos://ana:pw@correo.example.org", False),
        ("ntfys://ntfy.sh/topic", False),
        ("tgram://123456789:abcdefg_hijklmnop/12315544/", False),  # HTTPS only, no plain variant
    ],
)
def test_apprise_plain_text_variants_are_recognised(url: str, plain: bool) -> None:
    assert is_plaintext_apprise(url) is plain


def fake_dns(monkeypatch: pytest.MonkeyPatch, answer: str) -> None:
    """rebind.example resolves to ``answer`` (the real resolver for everything else)."""
    real = outbound._real_getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("rebind.example", b"rebind.example"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, int(port or 0)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(outbound, "_real_getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)  # what aiohttp's resolver calls


def test_the_webhook_resolver_checks_what_a_name_resolves_to_now(monkeypatch: pytest.MonkeyPatch) -> None:
    async def resolve() -> str:
        return str((await CLOSED.resolver().resolve("rebind.example", 443))[0]["host"])

    fake_dns(monkeypatch, "127.0.0.1")
    with pytest.raises(OutboundRefused, match=re.escape("rebind.example resolves to 127.0.0.1, a loopback")):
        asyncio.run(resolve())
    fake_dns(monkeypatch, "93.184.215.14")
    assert asyncio.run(resolve()) == "93.184.215.14"


def test_the_apprise_guard_checks_every_name_resolved_while_delivering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_dns(monkeypatch, "169.254.169.254")
    outbound._install_guard()
    assert socket.getaddrinfo("rebind.example", 80)  # outside a delivery: untouched
    with pytest.raises(OutboundRefused, match="link-local"), CLOSED.guarding():
        with pytest.raises(OutboundRefused):
            socket.getaddrinfo("rebind.example", 80)  # Apprise would swallow this …
    # … so the refusal is raised again when the delivery ends, for the desk to report.
    with pytest.raises(OutboundRefused, match=re.escape("rebind.example resolves to 169.254.169.254")):
        outbound.send_apprise(["jsons://rebind.example/hook"], "t", "b", CLOSED)
