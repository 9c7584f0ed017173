"""``amparo keys rotate`` (new keys, peers follow), ``amparo keys compromised``
(the self-revocation every node honours forever), and pre-rotation: ``amparo keys
export-next`` (the committed next key, sealed for offline keeping) and ``amparo
keys recover`` (after a raid, take over with it on a new machine)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from node.cli.base import CliContext, emit, fail, json_option, warn
from node.cli.client import LocalClient
from node.config import ConfigError, load

if TYPE_CHECKING:
    from node import prerotation
    from protocol.keys import Identity


@click.group("keys")
def keys_group() -> None:
    """This node's keys."""


@keys_group.command("compromised")
@click.option("--reason", default="", help="Shown to allies with the revocation.")
@click.option("--yes", is_flag=True, help="Do not ask; confirm with the node's name non-interactively.")
@json_option
@click.pass_obj
def compromised(ctx: CliContext, reason: str, yes: bool, as_json: bool) -> None:
    """Declare this node's key compromised. Irreversible: every node refuses
    anything new signed with it, forever. Then create a new node and pair again."""
    name = load(ctx.home).name
    if not yes:
        typed = click.prompt(f"This cannot be undone. Type the node's name ({name}) to confirm", err=True)
        if typed != name:
            raise click.ClickException("not confirmed: nothing was published")
    doc = LocalClient(ctx.home).post("/api/v1/keys/compromised", {"confirm": name, "reason": reason})
    emit(
        doc,
        as_json,
        "Revocation published; allies will refuse this key from now on.\n"
        "Create a new node with `amparo init` and pair with your allies again.",
    )


@keys_group.command("rotate")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--next-key",
    "next_key_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The file from `amparo keys export-next`, when the next key is no longer in the home.",
)
@json_option
@click.pass_obj
def rotate(ctx: CliContext, yes: bool, next_key_file: Path | None, as_json: bool) -> None:
    """Replace this node's keys with new ones; peers follow without pairing again.

    The running node publishes a record of the new key signed by the old one and
    signs with the new key at once: no restart. Anything signed later with the
    old key is refused everywhere. Use this on a schedule or after a scare; if the
    old key may be in someone else's hands, use `amparo keys compromised` instead.

    The signing key (the node's identity) is replaced by the next key it committed
    to (kept in the home, or exported: give the file with --next-key), and a new
    next key is made. The encryption key is kept, so restricted alerts and sealed
    notes this node already holds stay readable.
    """
    import nacl.public

    from node import keystore, prerotation, records
    from node.cli.identity import guarded_prompt
    from node.config import KEY_FILE
    from protocol import Identity, NodeRecord, fingerprint, rotation_payload, sign_envelope
    from protocol.signing import PURPOSE_ROTATE, next_key_commitment, sign

    config = load(ctx.home)
    if not yes:
        click.confirm("Rotate this node's keys now?", abort=True, err=True)
    old, passphrase = keystore.unlock_with_passphrase(ctx.home, guarded_prompt(ctx.home))
    committed = _next_key(ctx, passphrase, next_key_file)
    new = Identity(sign_seed=committed.sign_seed, enc_secret=old.enc_secret)
    after = prerotation.new_identity()  # the key the new one commits to, for the rotation after this
    client = LocalClient(ctx.home)
    client.get("/api/v1/status")  # the running node publishes the hand-over: it must be up
    pending = ctx.home / (KEY_FILE + ".new")
    keystore.store_at(pending, new, passphrase, config.kdf_profile)  # Argon2id: seconds
    posted = False
    try:
        # The record's time is taken after the slow sealing, so the node hardly
        # signs anything with the old key after it (the node refuses the record
        # if it did: that envelope would be refused as signed by a retired key).
        now = client.get("/api/v1/status")["now"]
        current = records.node_record(
            ctx.home, config, new, now, next_key=next_key_commitment(after.sign_public)
        ).body
        assert isinstance(current, NodeRecord)
        hand_over = sign(old.signing_key, PURPOSE_ROTATE, rotation_payload(new.sign_public, now))
        record = sign_envelope(new, replace(current, prev=old.sign_public, prev_sig=hand_over), created=now, expires=0)
        # The node switches to the new key live; the seed travels sealed to the
        # node's own X25519 key, which only the running node (and this process) holds.
        seed = nacl.public.SealedBox(nacl.public.PublicKey(old.enc_public)).encrypt(new.sign_seed)
        posted = True
        doc = client.post("/api/v1/keys/rotate", {"record": record.raw.hex(), "seed": seed.hex()})
    except Exception:
        if not posted:
            pending.unlink(missing_ok=True)
            raise
        if not _node_switched(client, pending, new.sign_public):
            raise
        doc = {"record": record.id.hex(), "key": new.sign_public.hex(), "fingerprint": fingerprint(new.sign_public)}
    os.replace(pending, ctx.home / KEY_FILE)
    prerotation.write_next(ctx.home, after, passphrase, config.kdf_profile)
    doc["old_fingerprint"] = fingerprint(old.sign_public)
    emit(
        doc,
        as_json,
        f"New key {doc['fingerprint']} (was {doc['old_fingerprint']}).\n"
        "The node signs with the new key from now on (no restart needed); "
        "peers are following the hand-over.",
    )


def _node_switched(client: LocalClient, pending: Path, new_key: bytes) -> bool:
    """The rotate request failed; did the node switch anyway (an answer lost)?
    The pending key file is dropped only when the node certainly still uses its
    old key: a node that switched needs it, and one that cannot be asked may have
    (its next start finishes the rotation from the file, ``runner._finish_rotation``)."""
    try:
        in_use = bytes.fromhex(client.get("/api/v1/id")["key"])
    except Exception:
        click.echo(f"The node did not answer: {pending} is kept for its next start.", err=True)
        return False
    if in_use != new_key:
        pending.unlink(missing_ok=True)
        return False
    return True


def _next_key(ctx: CliContext, passphrase: bytes | None, next_key_file: Path | None) -> Identity:
    """The key this node committed to: from ``--next-key`` or the home."""
    from node import prerotation

    if next_key_file is not None:
        return _open_export(next_key_file).next_identity
    kept = prerotation.open_next(ctx.home, passphrase)
    if kept is None:
        fail("the next key was exported and is not in the home: give its file with --next-key FILE")
    assert kept is not None
    return kept


def _open_export(path: Path) -> prerotation.Exported:
    from node import prerotation

    given = prerotation.recovery_passphrase_from_env()
    if given is None:
        given = click.prompt("Recovery passphrase of the next-key file", hide_input=True, err=True).encode()
    try:
        return prerotation.read_export(path, given)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@keys_group.command("export-next")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--keep", is_flag=True, help="Also keep the next key in the home (weaker: a raid takes both).")
@click.option(
    "--qr", is_flag=True, help="Also draw the sealed key as a QR code in the terminal (no peer list)."
)
@json_option
@click.pass_obj
def export_next(ctx: CliContext, file: Path, keep: bool, qr: bool, as_json: bool) -> None:
    """Write the next key, sealed with a recovery passphrase, to FILE for offline keeping.

    Every record of this node commits to this key. After a raid, `amparo keys
    recover FILE` on a new machine makes it the node's key; peers accept it
    because it matches the commitment, and whoever holds the seized key cannot
    rotate to one of its own. The file also holds the list of peers (sealed), so
    a bare machine can reach them again: export again after pairing. The key
    leaves the home unless --keep. See docs/operators.md, "After a raid".
    """
    from node import keystore, prerotation
    from node.cli.identity import guarded_prompt

    config = load(ctx.home)
    if file.exists():
        fail(f"{file} exists; choose a new file (an old next-key file may be someone's only copy)")
    current, passphrase = keystore.unlock_with_passphrase(ctx.home, guarded_prompt(ctx.home))
    nxt = prerotation.open_next(ctx.home, passphrase)
    if nxt is None:
        fail("the next key is no longer in the home: it was exported without --keep (use that file)")
    assert nxt is not None
    recovery = prerotation.recovery_passphrase_from_env()
    if recovery is None:
        recovery = click.prompt(
            "Recovery passphrase (keep it apart from the node's)",
            hide_input=True,
            confirmation_prompt=True,
            err=True,
        ).encode()
    if len(recovery) < 12:
        fail("the recovery passphrase must have at least 12 characters")
    doc = prerotation.export_document(
        config.name, current.sign_public, nxt, recovery, _peer_snapshot(ctx.home), config.kdf_profile
    )
    from node.config import write_private

    write_private(file, (json.dumps(doc, indent=1) + "\n").encode())
    if not keep:
        from node.shred import overwrite_and_unlink

        overwrite_and_unlink(ctx.home / prerotation.NEXT_KEY_FILE)
    if qr and not as_json:
        import segno

        segno.make(f"{prerotation.EXPORT_FORMAT}:{doc['succeeds']}:{doc['key']}", error="m").terminal(
            compact=True
        )
    out = {
        "file": str(file),
        "commitment": doc["commitment"],
        "peers": len(_peer_snapshot(ctx.home)),
        "kept": keep,
    }
    emit(
        out,
        as_json,
        f"Next key written to {file}, sealed with the recovery passphrase.\n"
        "Keep the file and the passphrase apart from this machine (and from each other).\n"
        + (
            ""
            if keep
            else "The next key is no longer in the home: `amparo keys rotate` will ask for the file.\n"
        ),
    )


@keys_group.group("duress-passphrase")
def duress_group() -> None:
    """A second passphrase that alerts peers and wipes the node when typed."""


@duress_group.command("set")
@click.option(
    "--alert",
    "alert",
    metavar="PEER[,PEER…]",
    default="",
    help="Peers to send the duress alert and compromise declaration to (as `amparo wipe --alert`).",
)
@click.option(
    "--alert-wait",
    default="10s",
    show_default=True,
    metavar="DURATION",
    help="How long to wait for their acknowledgement before erasing anyway.",
)
@click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the duress passphrase from this file instead of a prompt.",
)
@json_option
@click.pass_obj
def duress_set(
    ctx: CliContext, alert: str, alert_wait: str, passphrase_file: Path | None, as_json: bool
) -> None:
    """Set the duress passphrase. Typed where the node asks for its passphrase
    (`amparo run`, `amparo id`, `amparo keys rotate`), it makes the running node
    warn the peers named here, wipes the node, and fails like a wrong passphrase."""
    from node import duress
    from node.cli.maintenance import _peer_list, _wait_ms
    from node.config import KEY_FILE, ConfigError
    from protocol import ProtocolError
    from protocol.keys import key_file_needs_passphrase, open_key_file

    peers, wait_ms = _peer_list(alert), _wait_ms(alert_wait)
    if passphrase_file is not None:
        value = passphrase_file.read_bytes().rstrip(b"\r\n")
    else:
        text: str = click.prompt("Duress passphrase", hide_input=True, confirmation_prompt=True, err=True)
        value = text.encode("utf-8")
    key_file = (ctx.home / KEY_FILE).read_bytes()
    if not key_file_needs_passphrase(key_file):
        raise click.ClickException(
            "this node's key file has no passphrase: a duress passphrase would never be asked"
        )
    try:
        open_key_file(key_file, value)
    except ProtocolError:
        pass
    else:
        raise click.ClickException("that is the node's passphrase: choose a different duress passphrase")
    if peers:
        try:
            known = {p["name"] for p in LocalClient(ctx.home).get("/api/v1/peers")["peers"]}
        except ConfigError as exc:  # the node is down: the names are checked when it is used
            click.echo(f"Peer names not checked ({exc}).", err=True)
            known = set(peers)
        unknown = [p for p in peers if p not in known]
        if unknown:
            raise click.ClickException(f"--alert: no peer called {', '.join(unknown)} (amparo peer list)")
    try:
        duress.save(ctx.home, value, peers, wait_ms)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    emit(
        {"peers": peers, "wait_ms": wait_ms},
        as_json,
        "Duress passphrase set. Typed where the node asks for its passphrase, it "
        + (
            f"alerts {', '.join(peers)}, then wipes the node."
            if peers
            else "wipes the node (no peers to alert)."
        ),
    )


def _peer_snapshot(home: Path) -> list[dict[str, object]]:
    from node.config import database_url
    from node.store import Store

    store = Store(database_url(home, load(home)))
    try:
        return [
            {
                "key": p.key.hex(),
                "name": p.name,
                "enc": p.enc_key.hex(),
                "addresses": list(p.addresses),
                "tls": p.tls_fp.hex(),
                "verified": p.verified,
            }
            for p in store.list_peers()
        ]
    finally:
        store.close()


@keys_group.command("recover")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--not-compromised",
    is_flag=True,
    help="The old key was lost, not taken (a destroyed disk): retire it without declaring it compromised.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_obj
def recover(ctx: CliContext, file: Path, not_compromised: bool, yes: bool, as_json: bool) -> None:
    """After a raid: make the committed next key in FILE this node's key.

    Run it on a new machine, in a home made with `amparo init` (or restored from
    a backup), with the node stopped. The node gets the next key, a new
    encryption key and TLS certificate, and the peers listed in FILE; at its next
    start it publishes the recovery, signed by the committed key, and by default
    declares the old key compromised: everything new signed with it is refused
    everywhere. Peers move the pairing to the recovered key by themselves.
    """
    from node import keystore, prerotation, provision, tls
    from node.cli.identity import guarded_prompt
    from node.wipe import PID_FILE, _alive
    from protocol import fingerprint
    from protocol.keys import Identity

    config = load(ctx.home)
    pid_text = (ctx.home / PID_FILE).read_text().strip() if (ctx.home / PID_FILE).is_file() else ""
    if pid_text.isdigit() and _alive(int(pid_text)):
        fail("the node is running: stop it first (`amparo keys recover` changes its keys)")
    exported = _open_export(file)
    if not yes:
        click.confirm(
            f"Take over from key {exported.succeeds.hex()[:16]}… of {exported.name!r} with the key in {file}?",
            abort=True,
            err=True,
        )
    _, passphrase = keystore.unlock_with_passphrase(ctx.home, guarded_prompt(ctx.home))
    fresh = prerotation.new_identity()
    identity = Identity(sign_seed=exported.next_identity.sign_seed, enc_secret=fresh.enc_secret)
    keystore.store(ctx.home, identity, passphrase, config.kdf_profile)
    provision.make_certificate(ctx.home, config.name, tls.pem_password(identity) if passphrase else None)
    prerotation.make_next(ctx.home, passphrase, config.kdf_profile)
    prerotation.write_recovering(ctx.home, prerotation.Recovering(exported.succeeds, not not_compromised))
    added = _restore_peers(ctx.home, exported.peers)
    if not_compromised:
        warn("The old key is retired, not declared compromised: use this only if nobody else can hold it.")
    doc = {
        "key": identity.sign_public.hex(),
        "fingerprint": fingerprint(identity.sign_public),
        "recovers": exported.succeeds.hex(),
        "compromised": not not_compromised,
        "peers_added": added,
    }
    emit(
        doc,
        as_json,
        f"This node now holds the committed key {doc['fingerprint']}.\n"
        f"Start it (`amparo run`): it publishes the recovery to its {len(exported.peers)} peers, who follow it.\n"
        "Then export the new next key: `amparo keys export-next FILE`.",
    )


def _restore_peers(home: Path, peers: list[dict[str, object]]) -> int:
    """Peers from the export that this home does not have yet, as active peers."""
    import time

    from node.config import database_url
    from node.store import Store
    from node.store.rows import PeerRow

    store = Store(database_url(home, load(home)))
    added = 0
    try:
        for p in peers:
            key = bytes.fromhex(str(p["key"]))
            if store.get_peer(key) is not None:
                continue
            addresses = p["addresses"]
            assert isinstance(addresses, list)
            store.upsert_peer(
                PeerRow(
                    key=key,
                    name=str(p["name"]),
                    enc_key=bytes.fromhex(str(p["enc"])),
                    addresses=[str(a) for a in addresses],
                    tls_fp=bytes.fromhex(str(p["tls"])),
                    node_record_id=None,
                    added_at=int(time.time() * 1000),
                    verified=bool(p.get("verified", False)),
                )
            )
            added += 1
    finally:
        store.close()
    return added


@duress_group.command("clear")
@json_option
@click.pass_obj
def duress_clear(ctx: CliContext, as_json: bool) -> None:
    """Remove the duress passphrase."""
    from node import duress

    removed = duress.clear(ctx.home)
    emit(
        {"removed": removed},
        as_json,
        "Duress passphrase removed." if removed else "No duress passphrase was set.",
    )
