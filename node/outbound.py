"""One policy for every URL the node sends alerts or pages to (webhooks, ally
Apprise channels, responders' Apprise channels), and the one Apprise sender
(``send_apprise``) that applies it.

Whoever may add a subscription must not be able to turn the node into a
proxy into its own network: the cloud metadata service (169.254.169.254,
fd00:ec2::254), the router, a database on loopback. So, unless the operator
lists a range in ``allow_private_targets``:

- the address contacted must be a public one: no loopback, link-local,
  private (RFC 1918, 100.64/10, ULA fc00::/7), unspecified, multicast or
  reserved address;
- a channel with a TLS variant must use it (``https://`` webhooks;
  ``jsons://``, ``ntfys://``, ``mailtos://`` … for Apprise).

The address is checked twice: when the channel is added (an address written
in the URL) and at every delivery, on the addresses the name resolves to at
that moment, which are the very addresses connected to: a name that resolves
to a public address when added and to 127.0.0.1 later (DNS rebinding) is
refused. Webhooks are checked by an aiohttp resolver; Apprise, which opens its
own connections (HTTP, SMTP …) in worker threads of its own, by a guard on
``socket.getaddrinfo`` that is active only in the context of a delivery (a
context variable: Apprise copies the caller's context into its workers).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SETTING = "allow_private_targets"


class OutboundRefused(OSError):
    """A target the policy forbids; the message names the rule and the setting.
    An ``OSError`` so that HTTP and SMTP clients treat it as a failed connection."""


def _kind(address: Address) -> str | None:
    """Why ``address`` is not a public target, or None when it is one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (where cloud metadata services live)"
    if any(address in net for net in _PRIVATE if net.version == address.version):
        return "a private address (RFC 1918, 100.64.0.0/10 or a ULA)"
    if address.is_multicast or address.is_reserved or not address.is_global:
        return "not a public address (multicast, reserved or documentation range)"
    return None


_PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)  # 100.64/10: carrier-grade NAT, where Alibaba's metadata service (100.100.100.200) lives


@dataclass(frozen=True)
class OutboundPolicy:
    """``allowed``: the ranges the operator opened in ``allow_private_targets``."""

    allowed: tuple[Network, ...] = ()

    @classmethod
    def from_setting(cls, ranges: Sequence[str]) -> OutboundPolicy:
        return cls(tuple(ipaddress.ip_network(r, strict=False) for r in ranges))

    def opened(self, address: Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in net for net in self.allowed if net.version == address.version)

    def check_address(self, address: Address | str, host: str = "") -> None:
        """Raise ``OutboundRefused`` unless ``address`` is public or opened by the operator."""
        if isinstance(address, str):
            address = ipaddress.ip_address(address.split("%", 1)[0])
        kind = _kind(address)
        if kind is None or self.opened(address):
            return
        named = f"{host} resolves to {address}" if host and host != str(address) else str(address)
        raise OutboundRefused(
            f"{named}, {kind}: alerts go only to public addresses unless config.toml opens the range, "
            f'e.g. {SETTING} = ["{ipaddress.ip_network(address)}"]'
        )

    def check_url(self, url: str, *, plaintext: bool) -> None:
        """At the time a channel is added (and before each webhook request): an
        address written in the URL (or ``localhost``) must pass ``check_address``,
        and a plaintext channel (``http://``, ``json://``, ``mailto://`` …) goes
        only to an address in a range the operator opened."""
        host = (urlsplit(url).hostname or "").lower()
        address = _literal(host)
        if address is not None:
            self.check_address(address, host)  # first: the most telling reason
        if plaintext and (address is None or not self.opened(address)):
            raise OutboundRefused(
                f"{urlsplit(url).scheme}:// is not encrypted: use its TLS variant (https://, jsons://, ntfys://, "
                f"mailtos:// …); plain text is allowed only to an address in {SETTING}"
            )

    @contextmanager
    def guarding(self) -> Iterator[None]:
        """While active, every name resolved in this context (this thread and the
        workers Apprise starts from it) must pass ``check_address``. Apprise turns
        every error into False, so a refusal is raised again on the way out, for
        the caller to say why."""
        _install_guard()
        watch = _Watch(self)
        token = _GUARD.set(watch)
        try:
            yield
        finally:
            _GUARD.reset(token)
        if watch.refused:
            raise watch.refused[0]

    def resolver(self) -> AbstractResolver:
        return _PolicyResolver(self)


def _literal(host: str) -> Address | None:
    """The address a host written in a URL stands for without asking DNS: an IP
    address, the legacy IPv4 forms the C library also accepts (``127.1``,
    ``2130706433``, ``0x7f.1``) and ``localhost``; None for a name."""
    host = host.rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return ipaddress.ip_address("127.0.0.1")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host)) if host else None
    except OSError:
        return None


def is_plaintext_apprise(url: str) -> bool:
    """True for the unencrypted variant of an Apprise service that has an
    encrypted one (``json://`` beside ``jsons://``, ``mailto://`` beside ``mailtos://``)."""
    import apprise

    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        return False
    insecure = getattr(plugin, "protocol", None) or ()
    insecure = (insecure,) if isinstance(insecure, str) else tuple(insecure)
    return urlsplit(url).scheme.lower() in insecure and bool(getattr(plugin, "secure_protocol", None))


def apprise_understands(url: str) -> bool:
    """Whether Apprise knows the service of ``url`` (asked when a channel is added)."""
    import apprise

    return bool(apprise.Apprise().add(url))


def send_apprise(urls: Sequence[str], title: str, body: str, policy: OutboundPolicy) -> bool:
    """The one place the node sends through Apprise (responders' pages and
    hand-over notices, allies' phone channels). Blocking: call it in a worker
    thread. True when Apprise says every channel took it; raises
    ``OutboundRefused`` when a name resolved while sending was forbidden
    (Apprise connects by itself, so ``policy.guarding`` watches this thread)."""
    import apprise

    sender = apprise.Apprise()
    for url in urls:
        sender.add(url)
    with policy.guarding():
        return bool(sender.notify(title=title, body=body))


class _PolicyResolver(AbstractResolver):
    """aiohttp resolves names through this: the addresses it returns are the ones
    connected to, so a check here cannot be raced by a second DNS answer."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self._policy = policy
        self._inner = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        for item in found:
            self._policy.check_address(item["host"], host)
        return found

    async def close(self) -> None:
        await self._inner.close()


@dataclass
class _Watch:
    policy: OutboundPolicy
    refused: list[OutboundRefused] = field(default_factory=list)  # shared by every copy of the context


_GUARD: ContextVar[_Watch | None] = ContextVar("amparo_outbound_guard", default=None)
_LOCK = threading.Lock()
_real_getaddrinfo = socket.getaddrinfo


def _guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    found = _real_getaddrinfo(host, port, *args, **kwargs)
    watch = _GUARD.get()
    if watch is not None:
        name = host.decode() if isinstance(host, bytes) else str(host)
        for *_, sockaddr in found:
            try:
                watch.policy.check_address(str(sockaddr[0]), name)
            except OutboundRefused as exc:
                watch.refused.append(exc)
                raise
    return found


def _install_guard() -> None:
    """Once per process; a pass-through wherever no delivery is running."""
    with _LOCK:
        if socket.getaddrinfo is not _guarded_getaddrinfo:
            socket.getaddrinfo = _guarded_getaddrinfo
