"""``amparo keys rotate`` (new keys, peers follow) and ``amparo keys compromised``
(the self-revocation every node honours forever)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import click

from node.cli.base import CliContext, emit, json_option
from node.cli.client import LocalClient
from node.config import load


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
@json_option
@click.pass_obj
def rotate(ctx: CliContext, yes: bool, as_json: bool) -> None:
    """Replace this node's keys with new ones; peers follow without pairing again.

    The running node publishes a record of the new key signed by the old one and
    signs with the new key at once: no restart. Anything signed later with the
    old key is refused everywhere. Use this on a schedule or after a scare; if the
    old key may be in someone else's hands, use `amparo keys compromised` instead.

    The signing key (the node's identity) is replaced; the encryption key is kept,
    so restricted alerts and sealed notes this node already holds stay readable.
    """
    import nacl.public
    import nacl.utils

    from node import keystore, records
    from node.cli.identity import guarded_prompt
    from node.config import KEY_FILE
    from protocol import Identity, NodeRecord, fingerprint, rotation_payload, sign_envelope
    from protocol.signing import PURPOSE_ROTATE, sign

    config = load(ctx.home)
    if not yes:
        click.confirm("Rotate this node's keys now?", abort=True, err=True)
    old, passphrase = keystore.unlock_with_passphrase(ctx.home, guarded_prompt(ctx.home))
    new = Identity(sign_seed=nacl.utils.random(32), enc_secret=old.enc_secret)
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
        current = records.node_record(ctx.home, config, new, now).body
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
