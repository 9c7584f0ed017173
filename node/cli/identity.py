"""``amparo init`` and ``amparo id``: create a node's home and show who it is."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path

import click

from node import duress, keystore, prerotation
from node.cli.base import CliContext, emit, fail, json_option, warn
from node.config import (
    CONFIG_FILE,
    DEFAULT_LOCAL,
    DEFAULT_MESH,
    KEY_FILE,
    Config,
    ConfigError,
    load,
    make_home,
    save,
    validate,
)
from protocol.keys import Identity, fingerprint

NO_PASSPHRASE_WARNING = (
    "WARNING: --no-passphrase stores this node's private keys UNENCRYPTED.\n"
    "Anyone who copies or seizes this machine gets the keys and can impersonate your\n"
    "organization. Use this only for demos and tests."
)


def _prompt_new_passphrase() -> bytes:
    text: str = click.prompt(
        "Passphrase for the node's keys", hide_input=True, confirmation_prompt=True, err=True
    )
    return text.encode("utf-8")


def prompt_passphrase() -> bytes:
    text: str = click.prompt("Passphrase for the node's keys", hide_input=True, err=True)
    return text.encode("utf-8")


def guarded_prompt(home: Path) -> Callable[[], bytes]:
    """The passphrase prompt of a node that may have a duress passphrase
    (``node.duress``): typed instead of the real one, the running node warns the
    chosen peers, the node is wiped, and the command fails exactly as a wrong
    passphrase does. A node that is not running has no unlocked key to sign a
    warning with: it is wiped without one."""

    def prompt() -> bytes:
        value = prompt_passphrase()
        try:
            chosen = duress.matches(home, value)
        except ConfigError:
            chosen = None  # a damaged duress file never blocks the real passphrase
        if chosen is None:
            return value
        refusal = _wrong_passphrase(home, value)
        from node import wipe as panic
        from node.cli.maintenance import warn_peers

        with contextlib.redirect_stderr(io.StringIO()), contextlib.suppress(ConfigError):
            if chosen.peers:  # nothing on the screen gives it away, and nothing stops the wipe
                warn_peers(home, load(home).name, list(chosen.peers), chosen.wait_ms)
        panic.wipe(home)
        raise ConfigError(refusal)

    return prompt


def _wrong_passphrase(home: Path, value: bytes) -> str:
    """The very message a wrong passphrase gets (``keystore.unlock``)."""
    from protocol import ProtocolError
    from protocol.keys import open_key_file

    path = home / KEY_FILE
    try:
        open_key_file(path.read_bytes(), value)
    except ProtocolError as exc:
        return f"{path}: {exc.message}"
    except OSError:
        pass
    return f"{path}: wrong passphrase"


@click.command("init")
@click.option("--name", required=True, help="Your organization's name as allies will see it.")
@click.option("--listen", default=DEFAULT_MESH, show_default=True, help="Mesh listener HOST:PORT.")
@click.option("--local", default=DEFAULT_LOCAL, show_default=True, help="Local API HOST:PORT.")
@click.option("--advertise", multiple=True, help="Address peers use to reach this node (repeatable).")
@click.option("--database-url", default="", help="SQLAlchemy URL (default: SQLite in the home).")
@click.option(
    "--trust-depth",
    type=click.IntRange(1, 6),
    default=2,
    show_default=True,
    help="Accept alerts from authors at most this many vouch hops away.",
)
@click.option(
    "--watch-region",
    "watch_regions",
    multiple=True,
    help="Region this organization responds in: its alerts page the on-call responder (repeatable).",
)
@click.option(
    "--timezone", default="UTC", show_default=True, metavar="ZONE",
    help="The node's time zone, an IANA name such as America/Mexico_City: times shown and quiet hours use it.",
)
@click.option("--no-passphrase", is_flag=True, help="Store the keys unencrypted (demos only).")
@click.option(
    "--kdf-profile",
    type=click.Choice(["interactive", "moderate", "sensitive"]),
    default="moderate",
    show_default=True,
    help="Argon2id cost for the key file (interactive is for small devices).",
)
@json_option
@click.pass_obj
def init_command(
    ctx: CliContext,
    name: str,
    listen: str,
    local: str,
    advertise: tuple[str, ...],
    database_url: str,
    trust_depth: int,
    watch_regions: tuple[str, ...],
    timezone: str,
    no_passphrase: bool,
    kdf_profile: str,
    as_json: bool,
) -> None:
    """Create a node: home directory, configuration and sealed keys."""
    home: Path = ctx.home
    if (home / KEY_FILE).exists() or (home / CONFIG_FILE).exists():
        fail(f"{home} already holds a node; choose another --home or remove it first")
    name = name.strip()
    if not name or len(name) > 64:
        fail("--name must be 1 to 64 characters")
    config = Config(
        name=name,
        listen=listen,
        local=local,
        advertise=list(advertise),
        database_url=database_url,
        trust_depth=trust_depth,
        watch_regions=list(watch_regions),
        kdf_profile=kdf_profile,
        timezone=timezone,
    )
    validate(config)
    if no_passphrase:
        warn(NO_PASSPHRASE_WARNING)
        passphrase = None
    else:
        passphrase = keystore.passphrase_from_env() or _prompt_new_passphrase()
    make_home(home)
    identity = keystore.create(home, passphrase, kdf_profile)
    prerotation.make_next(home, passphrase, kdf_profile)  # committed to in every node record
    save(home, config)
    _after_init(home, config, identity, sealed=passphrase is not None)
    summary = describe(home, config, identity)
    emit(summary, as_json, f"Created node {name!r} in {home}\n\n" + human_id(summary))


def _after_init(home: Path, config: Config, identity: Identity, sealed: bool) -> None:
    """Hook for later setup steps (TLS certificate, database) run at init."""
    from node import provision

    provision.after_init(home, config, identity, sealed)


@click.command("id")
@json_option
@click.pass_obj
def id_command(ctx: CliContext, as_json: bool) -> None:
    """Show this node's name, keys, fingerprint and addresses."""
    config = load(ctx.home)
    identity = keystore.unlock(ctx.home, guarded_prompt(ctx.home))
    summary = describe(ctx.home, config, identity)
    emit(summary, as_json, human_id(summary))


def describe(home: Path, config: Config, identity: Identity) -> dict[str, object]:
    from node import provision

    return {
        "name": config.name,
        "home": str(home),
        "sign_key": identity.sign_public.hex(),
        "enc_key": identity.enc_public.hex(),
        "fingerprint": fingerprint(identity.sign_public),
        "listen": config.listen,
        "local": config.local,
        "addresses": provision.advertised_addresses(config),
        "tls_fingerprint": provision.tls_fingerprint_hex(home),
    }


def human_id(summary: dict[str, object]) -> str:
    addresses = summary["addresses"]
    assert isinstance(addresses, list)
    return "\n".join(
        [
            f"Name:          {summary['name']}",
            f"Fingerprint:   {summary['fingerprint']}",
            f"Signing key:   {summary['sign_key']}",
            f"Encryption key:{' '}{summary['enc_key']}",
            f"Mesh listener: {summary['listen']}",
            f"Local API:     {summary['local']}",
            f"Addresses:     {', '.join(str(a) for a in addresses) or '(none advertised)'}",
            f"TLS cert:      {summary['tls_fingerprint'] or '(not yet created)'}",
            "",
            "Compare the fingerprint with your ally by phone or in person before pairing.",
        ]
    )
