"""``amparo peer invite|accept|list|remove|verify``: pairing with allied organizations."""

from __future__ import annotations

import time
import urllib.parse

import click

from node.cli.base import CliContext, emit, fail, json_option, when
from node.cli.client import LocalClient
from node.cli.node_commands import failure_line
from node.printable import printable


@click.group("peer")
def peer_group() -> None:
    """Pair with allied organizations' nodes and manage peers."""


@peer_group.command("invite")
@click.option("--expires", default="24h", show_default=True, help="How long the token works (e.g. 30m, 24h).")
@click.option("--qr", is_flag=True, help="Also draw the token as a QR code in the terminal.")
@json_option
@click.pass_obj
def invite(ctx: CliContext, expires: str, qr: bool, as_json: bool) -> None:
    """Print a one-time invite token to give to an ally through a safe channel."""
    doc = LocalClient(ctx.home).post("/api/v1/peers/invite", {"expires": expires})
    if qr and not as_json:
        import segno

        segno.make(doc["token"], error="l").terminal(compact=True)
    human = (
        f"Give this one-time token to your ally (valid until {when(doc['expires'])}):\n\n"
        f"{doc['token']}\n\n"
        f"Before they accept, read them this node's fingerprint by phone or in person:\n"
        f"  {doc['fingerprint']}"
    )
    emit(doc, as_json, human)


@peer_group.command("accept")
@click.argument("token")
@click.option(
    "--yes", "-y", is_flag=True, help="Do not ask to confirm the fingerprint (recorded as unverified)."
)
@json_option
@click.pass_obj
def accept(ctx: CliContext, token: str, yes: bool, as_json: bool) -> None:
    """Pair with the node that made TOKEN; both sides vouch for each other."""
    from node.pairing import PairingError, describe_record, read_invite

    try:
        record, _secret, _expires = read_invite(token, int(time.time() * 1000))
    except PairingError as exc:
        fail(str(exc))
    info = describe_record(record)
    verified = False
    if not yes:
        click.echo(f"Invite from {info['name']!r}\n  fingerprint: {info['fingerprint']}", err=True)
        verified = click.confirm("Does this fingerprint match what your ally read to you?", err=True)
        if not verified:
            fail("pairing cancelled: the fingerprint was not confirmed")
    doc = LocalClient(ctx.home).post("/api/v1/peers/accept", {"token": token, "verified": verified})
    peer = doc["peer"]
    emit(doc, as_json, f"Paired with {peer['name']!r} ({peer['fingerprint']}).")


@peer_group.command("list")
@json_option
@click.pass_obj
def list_peers(ctx: CliContext, as_json: bool) -> None:
    """List peers with their fingerprints and last contact."""
    doc = LocalClient(ctx.home).get("/api/v1/peers")
    lines: list[str] = []
    for p in doc["peers"]:
        line = (
            f"{printable(p['name']):<24} {p['fingerprint']}  verified {'yes' if p.get('verified') else 'no ':<3}  "
            f"{p.get('state') or ('up' if p['up'] else 'down'):<7} last contact {when(p['last_seen'])}"
        )
        if p.get("cut_off"):  # the node's own words (score and deadline), nothing a peer chose
            line += f"  CUT OFF ({p['cut_off']})"
        lines += [line, *failure_line(p, "    ")]
    emit(
        doc, as_json, "\n".join(lines) or "No peers yet: `amparo peer invite` or `amparo peer accept TOKEN`."
    )


@peer_group.command("remove")
@click.argument("peer")
@json_option
@click.pass_obj
def remove(ctx: CliContext, peer: str, as_json: bool) -> None:
    """Stop peering with PEER (name or key) and withdraw this node's vouch."""
    # Peer names are self-chosen text (spaces, slashes): one quoted path segment.
    doc = LocalClient(ctx.home).delete(f"/api/v1/peers/{urllib.parse.quote(peer, safe='')}")
    emit(doc, as_json, f"Removed peer {doc['name']!r}; the vouch for it is revoked across the mesh.")


@peer_group.command("verify")
@click.argument("peer")
@json_option
@click.pass_obj
def verify(ctx: CliContext, peer: str, as_json: bool) -> None:
    """Show PEER's fingerprint to compare with its operator out of band."""
    doc = LocalClient(ctx.home).get("/api/v1/peers")
    matches = [p for p in doc["peers"] if p["name"] == peer or p["key"].startswith(peer.lower())]
    if not matches:
        fail(f"no peer {peer!r}")
    p = matches[0]
    emit(
        p,
        as_json,
        f"{printable(p['name'])}\n  fingerprint: {p['fingerprint']}\n  key:         {p['key']}\n"
        "Ask their operator to read their `amparo id` fingerprint; it must match exactly.",
    )
