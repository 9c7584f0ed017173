"""The node's home directory and ``config.toml`` (SPEC §5.2).

The home holds everything an organization's node owns: configuration, the sealed
key file, TLS material and the SQLite database. It is created mode 0700 and
secrets 0600, because the machine may be shared or seized.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tomli_w

from node import clock_text

CONFIG_FILE = "config.toml"
KEY_FILE = "identity.key"
TOKEN_FILE = "api.token"
DB_FILE = "amparo.db"
TLS_KEY = "tls.key"  # the mesh listener's key and self-signed certificate (node/tls.py)
TLS_CERT = "tls.crt"
DEFAULT_MESH = "0.0.0.0:7170"
DEFAULT_LOCAL = "127.0.0.1:7171"


class ConfigError(Exception):
    """A configuration problem an operator can fix; the message says how."""


@dataclass(frozen=True)
class Config:
    name: str
    listen: str = DEFAULT_MESH
    local: str = DEFAULT_LOCAL
    advertise: list[str] = field(default_factory=list)
    database_url: str = ""
    trust_depth: int = 2
    kdf_profile: str = "moderate"
    socks_proxy: str = ""
    log_format: str = "text"
    watch_regions: list[str] = field(default_factory=list)
    ack_timeout: str = "5m"
    repage_every: str = "10m"  # once the chain is exhausted, it is paged again this often until an ack
    # IANA name (America/Mexico_City): times shown to people, and quiet hours, are in this zone
    timezone: str = "UTC"
    quiet_hours: str = ""  # "22:00-07:00" (in `timezone`): re-paging of alerts below severe waits for the end
    escalation_chain: list[str] = field(default_factory=lambda: ["on-call", "backup", "all"])
    retention_days: int = 90  # expired alerts and finished response records are kept this long, then deleted (0 = never)
    # Where people reach the local listener from their phones (VPN, reverse proxy,
    # onion service); links in pages, check-ins and ally messages start with it.
    public_url: str = ""
    # Further host names the local listener answers to (a reverse proxy's name, a LAN
    # name); see ``served_hosts``. Any other Host header is refused (DNS rebinding).
    allowed_hosts: list[str] = field(default_factory=list)
    # Address ranges (CIDR) that webhooks and Apprise channels may reach although
    # they are not public: loopback, LAN, link-local. Plain-text channels
    # (http://, json://, mailto:// …) are allowed only to these (node/outbound.py).
    allow_private_targets: list[str] = field(default_factory=list)
    # Plumtree-style tree push (mesh.tree, node.treepush): full alerts along a tree of
    # links, ids announced on the others; False floods every alert over every link.
    tree_push: bool = False
    # Delivery receipts (node.receipts, docs/protocol.md §6.7): tell each alert's author,
    # sealed to it, that this node stored it. False: this node answers nothing (it still
    # relays others' receipts and counts the ones for its own alerts).
    delivery_receipts: bool = True
    # Processes that verify signatures of pushed envelopes (node.verifier): -1 = one per
    # core, 0 = none (verified in the node's own process: one-core boxes, debugging).
    verify_workers: int = -1

    def with_changes(self, **changes: Any) -> Config:
        return replace(self, **changes)


def quiet_window(text: str) -> tuple[int, int] | None:
    """``22:00-07:00`` as minutes after midnight (start, end); None when malformed."""
    try:
        start, end = (_minutes(part) for part in text.split("-"))
    except ValueError:
        return None
    return (start, end) if start != end else None


def _minutes(clock: str) -> int:
    hours, minutes = clock.strip().split(":")
    if not (hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60):
        raise ValueError(clock)
    return int(hours) * 60 + int(minutes)


def default_home() -> Path:
    env = os.environ.get("AMPARO_HOME")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "amparo"


def public_base(config: Config) -> str:
    """The base of every link handed to a person: ``public_url``, else the local listener."""
    return config.public_url.rstrip("/") or f"http://{config.local}"


def is_loopback_url(url: str) -> bool:
    """True when ``url`` points at this machine only (127.0.0.0/8, ::1, localhost)
    or at no machine (0.0.0.0, ::, when ``local`` listens on every interface):
    a link a phone can never open."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def served_hosts(config: Config) -> frozenset[str]:
    """The host names the local listener serves (lower case, no port).

    A browser sends the name it looked up as ``Host``, so a page on a name the
    attacker controls, once that name resolves to 127.0.0.1 (DNS rebinding),
    arrives with the attacker's name and is refused. Served: the ``local``
    listen host; the loopback names when it listens on loopback or on every
    interface; the host of ``public_url``; and ``allowed_hosts``."""
    host = parse_hostport(config.local, "local")[0].lower()
    names = {host, *(h.lower().strip("[]") for h in config.allowed_hosts)}
    if host == "localhost" or _is_ip(host, lambda a: a.is_loopback or a.is_unspecified):
        names |= LOOPBACK_NAMES
    if config.public_url:
        names.add((urlsplit(config.public_url).hostname or "").lower())
    return frozenset(names - {""})


def serves_host(config: Config, served: frozenset[str], host_header: str | None) -> bool:
    """Whether the local listener answers a request whose ``Host`` header is this.

    No header at all (HTTP/1.0 tools) is served: browsers always send one. An IP
    address is served when ``local`` listens on every interface: a page cannot
    rebind an address, only a name."""
    if host_header is None:
        return True
    try:
        name = (urlsplit(f"//{host_header}").hostname or "").lower()
    except ValueError:
        return False
    if name in served:
        return True
    return _is_ip(parse_hostport(config.local, "local")[0], lambda a: a.is_unspecified) and _is_ip(
        name, lambda a: True
    )


def _is_ip(host: str, test: Any) -> bool:
    try:
        return bool(test(ipaddress.ip_address(host)))
    except ValueError:
        return False


def parse_hostport(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{what} must be HOST:PORT (got {text!r})")
    return host.strip("[]"), int(port)


def load(home: Path) -> Config:
    path = home / CONFIG_FILE
    if not path.exists():
        raise ConfigError(f"no Amparo node at {home} (run `amparo init --name NAME` first)")
    try:
        doc = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    known = set(Config.__dataclass_fields__)
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    try:
        config = Config(**doc)
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    validate(config)
    return config


def validate(config: Config) -> None:
    parse_hostport(config.listen, "listen")
    parse_hostport(config.local, "local")
    if not 1 <= config.trust_depth <= 6:
        raise ConfigError("trust_depth must be between 1 and 6")
    if config.kdf_profile not in ("interactive", "moderate", "sensitive"):
        raise ConfigError("kdf_profile must be interactive, moderate or sensitive")
    if not isinstance(config.tree_push, bool):
        raise ConfigError("tree_push must be true or false")
    if not isinstance(config.delivery_receipts, bool):
        raise ConfigError("delivery_receipts must be true or false")
    if (
        isinstance(config.verify_workers, bool)
        or not isinstance(config.verify_workers, int)
        or not (-1 <= config.verify_workers <= 64)
    ):
        raise ConfigError(
            "verify_workers must be -1 (one per core), 0 (in the node's own process) or up to 64"
        )
    if config.log_format not in ("text", "json"):
        raise ConfigError("log_format must be text or json")
    from protocol import regions  # the module alone: `amparo` starts without the whole protocol
    from protocol.errors import ProtocolError

    for region in config.watch_regions:
        try:  # syntax only: a pycountry update must never stop a node from starting
            regions.check_wire(region)
        except ProtocolError as exc:
            raise ConfigError(f"watch_regions: {exc.message}") from None
    try:
        if not isinstance(config.timezone, str):
            raise clock_text.ZoneError("an IANA name in quotes, such as \"America/Mexico_City\"")
        clock_text.zone(config.timezone)
    except clock_text.ZoneError as exc:
        raise ConfigError(f"timezone: {exc}") from None
    if config.quiet_hours and quiet_window(config.quiet_hours) is None:
        raise ConfigError("quiet_hours must look like 22:00-07:00 (local time in `timezone`), or be empty")
    for key in ("ack_timeout", "repage_every"):
        value = getattr(config, key)
        if value[-1:] not in ("s", "m", "h") or not value[:-1].isdigit() or not int(value[:-1]):
            raise ConfigError(f"{key} must look like 90s, 5m or 1h")
    if isinstance(config.retention_days, bool) or not 0 <= config.retention_days <= 36_500:
        raise ConfigError("retention_days must be a number of days from 0 (keep forever) to 36500")
    if config.public_url:
        parts = urlsplit(config.public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            raise ConfigError(
                "public_url must be a base URL such as https://amparo.example.org or http://abc….onion"
            )
    for name in config.allowed_hosts:
        if not isinstance(name, str) or not name or urlsplit(f"//{name}").hostname != name.lower().strip("[]"):
            raise ConfigError(f"allowed_hosts: {name!r} is not a host name (no scheme, port or path)")
    for cidr in config.allow_private_targets:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except (TypeError, ValueError):
            raise ConfigError(
                f"allow_private_targets: {cidr!r} is not an address range such as 192.168.1.0/24 or 127.0.0.1/32"
            ) from None
    if not config.escalation_chain or not set(config.escalation_chain) <= {"on-call", "backup", "all"}:
        raise ConfigError("escalation_chain is a list of on-call, backup and all")


def save(home: Path, config: Config) -> None:
    write_private(home / CONFIG_FILE, tomli_w.dumps(asdict(config)).encode("utf-8"))


def database_url(home: Path, config: Config) -> str:
    return config.database_url or f"sqlite:///{home / DB_FILE}"


def make_home(home: Path) -> None:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(home, 0o700)


def write_private(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600: a crash leaves the old file or the new one."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
