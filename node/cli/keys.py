"""``amparo keys compromised``: the self-revocation every node honours forever."""

from __future__ import annotations

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
