"""Links handed to people start with ``public_url`` (else the local listener),
point at real dashboard routes, and a loopback link is recognised as one a
phone cannot open."""

from __future__ import annotations

import pytest

from node.config import Config, ConfigError, is_loopback_url, public_base, served_hosts, serves_host, validate
from node.response.desk import page_text
from protocol import Alert, Area

ALERT = Alert(
    headline="Defensora amenazada", areas=(Area("MX-OAX"),), severity="severe", instruction="Llamar"
)
ID = "ab" * 32


def test_public_base_defaults_to_the_local_listener() -> None:
    assert public_base(Config(name="Colectivo Ejemplo")) == "http://127.0.0.1:7171"
    config = Config(name="Colectivo Ejemplo", public_url="https://amparo.colectivo.example/")
    assert public_base(config) == "https://amparo.colectivo.example"


def test_page_links_to_the_dashboard_route_under_public_url() -> None:
    _, body = page_text(ALERT, ID, "https://amparo.colectivo.example")
    assert f"https://amparo.colectivo.example/ui/alerts/{ID}" in body.splitlines()
    assert "/alerts/" + ID not in body.replace("/ui/alerts/", "")


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:7171/checkin/x", True),
        ("http://127.8.0.1/checkin/x", True),
        ("http://[::1]:7171/checkin/x", True),
        ("http://localhost:7171/checkin/x", True),
        ("http://0.0.0.0:7171/checkin/x", True),  # `local` on every interface: no address at all
        ("https://amparo.colectivo.example/checkin/x", False),
        ("http://10.8.0.1:7171/checkin/x", False),  # a VPN address a phone on the VPN can open
        ("http://abcdefghijklmnop.onion/checkin/x", False),
    ],
)
def test_loopback_links_are_recognised(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


@pytest.mark.parametrize(
    "bad", ["amparo.example.org", "ftp://amparo.example.org", "https://x.example/?a=1", "https://"]
)
def test_public_url_must_be_a_base_url(bad: str) -> None:
    with pytest.raises(ConfigError, match="public_url"):
        validate(Config(name="N", public_url=bad))
    validate(Config(name="N", public_url="http://abcdefghijklmnop.onion"))


@pytest.mark.parametrize(
    ("local", "public_url", "allowed", "host", "served"),
    [
        ("127.0.0.1:7171", "", [], "127.0.0.1:7171", True),
        ("127.0.0.1:7171", "", [], "LOCALHOST:7171", True),
        ("127.0.0.1:7171", "", [], "[::1]:7171", True),
        ("127.0.0.1:7171", "", [], None, True),  # HTTP/1.0 tools send none; browsers always do
        ("127.0.0.1:7171", "", [], "evil.example", False),  # DNS rebinding
        ("127.0.0.1:7171", "", [], "evil.example:7171", False),
        ("127.0.0.1:7171", "", [], "127.0.0.1.evil.example", False),
        ("127.0.0.1:7171", "", [], "10.8.0.1:7171", False),  # an address, but not one we listen on
        ("127.0.0.1:7171", "https://amparo.colectivo.example/x", [], "amparo.colectivo.example", True),
        ("127.0.0.1:7171", "", ["amparo.lan"], "Amparo.LAN:7171", True),
        ("10.8.0.1:7171", "", [], "10.8.0.1:7171", True),
        ("10.8.0.1:7171", "", [], "localhost:7171", False),  # not listening on loopback
        ("0.0.0.0:7171", "", [], "192.168.1.20:7171", True),  # every interface: any address …
        ("0.0.0.0:7171", "", [], "printer.lan:7171", False),  # … but only configured names
        ("127.0.0.1:7171", "", [], "bad[host", False),
    ],
)
def test_the_local_listener_serves_only_configured_host_names(
    local: str, public_url: str, allowed: list[str], host: str | None, served: bool
) -> None:
    config = Config(name="Colectivo Ejemplo", local=local, public_url=public_url, allowed_hosts=allowed)
    validate(config)
    assert serves_host(config, served_hosts(config), host) is served


@pytest.mark.parametrize("name", ["amparo.lan:7171", "https://amparo.lan", "amparo.lan/x", ""])
def test_allowed_hosts_are_names_only(name: str) -> None:
    with pytest.raises(ConfigError, match="allowed_hosts"):
        validate(Config(name="Colectivo Ejemplo", allowed_hosts=[name]))
