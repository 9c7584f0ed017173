"""``amparo backup``, ``amparo restore`` and ``amparo wipe``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from node import backup
from node import wipe as panic
from node.cli.base import CliContext, emit, json_option, warn
from node.cli.client import LocalClient
from node.config import ConfigError, load

PASSPHRASE_ENV = "AMPARO_BACKUP_PASSPHRASE_FILE"
MIN_CHARS = 8
passphrase_file_option = click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"Read the backup passphrase from this file (or set {PASSPHRASE_ENV}).",
)


def _passphrase(path: Path | None, confirm: bool) -> bytes:
    source = path or (Path(os.environ[PASSPHRASE_ENV]) if os.environ.get(PASSPHRASE_ENV) else None)
    if source is not None:
        try:
            value = source.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise click.ClickException(f"{source}: cannot read ({exc.strerror})") from None
    else:
        text: str = click.prompt("Backup passphrase", hide_input=True, confirmation_prompt=confirm, err=True)
        value = text.encode("utf-8")
    if len(value) < MIN_CHARS:
        raise click.ClickException(f"the backup passphrase must have at least {MIN_CHARS} characters")
    return value


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@passphrase_file_option
@json_option
@click.pass_obj
def backup_command(ctx: CliContext, file: Path, passphrase_file: Path | None, as_json: bool) -> None:
    """Write one encrypted archive of this node (keys stay sealed; safe while it runs)."""
    import hashlib

    config = load(ctx.home)
    passphrase = _passphrase(passphrase_file, confirm=True)
    click.echo("==> snapshotting the home and database …", err=True)
    try:
        fingerprint = LocalClient(ctx.home).get("/api/v1/status")["fingerprint"]
    except ConfigError:
        fingerprint = ""  # the node is not running: nothing changes under us anyway
    try:
        data, summary = backup.archive(ctx.home, config, created=int(time.time() * 1000), fingerprint=fingerprint)
        click.echo(f"==> encrypting {summary.size:,} bytes (Argon2id, {config.kdf_profile}) …", err=True)
        blob = backup.seal(data, passphrase, config.kdf_profile)
        backup.write_backup(file, blob)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    if config.database_url:
        warn("The database is PostgreSQL: it is NOT in this file. Back it up with pg_dump (docs/postgresql.md).")
    digest = hashlib.sha256(blob).hexdigest()
    doc = {"file": str(file), "bytes": len(blob), "sha256": digest, "files": summary.files,
           "database": summary.database}
    emit(doc, as_json, f"Backup written to {file} ({len(blob):,} bytes, sha256 {digest[:16]}…).\n"
         "Keep it somewhere else than this machine, and the passphrase somewhere else than the file.")


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@passphrase_file_option
@json_option
@click.pass_obj
def restore_command(ctx: CliContext, file: Path, passphrase_file: Path | None, as_json: bool) -> None:
    """Restore a backup into an empty (or new) home: same identity, alerts, peers, settings."""
    blob = file.read_bytes()
    passphrase = _passphrase(passphrase_file, confirm=False)
    click.echo("==> decrypting and checking the archive …", err=True)
    try:
        manifest = backup.restore(blob, passphrase, ctx.home)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    emit(manifest, as_json, f"Restored {manifest.get('node')!r} into {ctx.home}. Start it with `amparo run`.")


def _peer_list(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").split(",") if p.strip()]


@click.command("wipe")
@click.option("--yes", is_flag=True, help="Do not ask (for panic buttons and scripts).")
@click.option(
    "--alert",
    "alert",
    metavar="PEER[,PEER…]",
    help="First send a sealed duress alert and this node's compromise declaration to these peers "
    "(the running node signs them), wait for their acknowledgement, then erase.",
)
@click.option(
    "--alert-wait",
    default="10s",
    show_default=True,
    metavar="DURATION",
    help="How long to wait for the peers' acknowledgements before erasing anyway.",
)
@json_option
@click.pass_obj
def wipe_command(ctx: CliContext, yes: bool, alert: str | None, alert_wait: str, as_json: bool) -> None:
    """Destroy this node: stop it, erase the keys first, then the data, then the home.

    With --alert the node first warns the named peers and waits (at most
    --alert-wait) for them to acknowledge; the wipe happens whatever they
    answer. Exit status 1 then means some peer did not acknowledge both."""
    home = ctx.home
    if not home.is_dir():
        raise click.ClickException(f"{home}: no such node home")
    try:
        config = load(home)
        name, postgres = config.name, bool(config.database_url)
    except ConfigError:
        name, postgres = home.name, False
    peers = _peer_list(alert)
    if alert is not None and not peers:
        raise click.ClickException("--alert: name at least one peer (PEER[,PEER…])")
    wait_ms = _wait_ms(alert_wait)
    if not yes:
        typed = click.prompt(f"This destroys the node for good. Type its name ({name}) to confirm", err=True)
        if typed != name:
            raise click.ClickException("not confirmed: nothing was erased")
    warned = warn_peers(home, name, peers, wait_ms) if peers else None
    report = panic.wipe(home)
    if postgres:
        warn("The PostgreSQL database was not touched: drop it on its server (docs/backup-and-wipe.md).")
    doc: dict[str, object] = {
        "home": str(home),
        "erased": report.erased,
        "stopped_pid": report.stopped_pid,
        "seconds": round(report.seconds, 3),
    }
    if warned is not None:
        doc["alert"] = warned
    emit(
        doc,
        as_json,
        f"Wiped {home}: {len(report.erased)} files erased in {report.seconds:.2f} s"
        + (f" (stopped the node, pid {report.stopped_pid})" if report.stopped_pid else "")
        + "."
        + (_warned_text(warned) if warned is not None else ""),
    )
    if warned is not None and not warned["acknowledged"]:
        raise SystemExit(1)


def _wait_ms(text: str) -> int:
    from node.alerts import AlertInputError, parse_duration
    from node.wipe_alert import MAX_WAIT_MS

    try:
        value = parse_duration(text, "--alert-wait")
    except AlertInputError as exc:
        raise click.ClickException(str(exc)) from None
    if not 0 < value <= MAX_WAIT_MS:
        raise click.ClickException(f"--alert-wait: at most {MAX_WAIT_MS // 1000}s")
    return value


def warn_peers(home: Path, name: str, peers: list[str], wait_ms: int) -> dict[str, object]:
    """Ask the running node to warn ``peers`` (``node.wipe_alert``). Never stops
    the wipe: a node that is down, or a refusal, is reported and the wipe goes on."""
    try:
        client = LocalClient(home)
        client.timeout = wait_ms / 1000 + 15
        answer = client.post("/api/v1/wipe/alert", {"confirm": name, "peers": peers, "wait_ms": wait_ms})
    except (ConfigError, OSError) as exc:
        warn(f"No alert was sent ({exc}); wiping anyway.")
        return {"sent": False, "acknowledged": False, "error": str(exc)}
    acknowledged = all(all(p.values()) for p in answer["peers"].values())
    return {"sent": True, "acknowledged": acknowledged, **answer}


def _warned_text(warned: dict[str, object]) -> str:
    if not warned["sent"]:
        return "\nNo alert was sent before the wipe."
    peers = warned["peers"]
    assert isinstance(peers, dict)
    lines = [
        f"  {peer}: "
        + (
            "acknowledged"
            if all(o.values())
            else "NOT acknowledged (" + ", ".join(k for k, v in o.items() if not v) + ")"
        )
        for peer, o in peers.items()
    ]
    return "\nDuress alert and compromise declaration, before the keys were erased:\n" + "\n".join(lines)
