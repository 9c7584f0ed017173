"""``amparo inbound sms`` (a reply by SMS, also as gammu-smsd's RunOnReceive
hook) and ``amparo inbound gateway-key`` (for SMS-gateway apps)."""

from __future__ import annotations

import os

import click

from node.cli.base import CliContext, emit, json_option
from node.cli.client import LocalClient
from node.config import load, public_base

# What gammu-smsd's RunOnReceive puts in the environment (one SMS: part 1;
# a long SMS joined: DECODED_1_TEXT).
GAMMU_NUMBER, GAMMU_TEXT, GAMMU_DECODED = "SMS_1_NUMBER", "SMS_1_TEXT", "DECODED_1_TEXT"


@click.group("inbound")
def inbound_group() -> None:
    """Messages people send to the node from their phones (SMS)."""


@inbound_group.command("sms")
@click.option("--from", "sender", metavar="+E164", help=f"The sender's number (default: ${GAMMU_NUMBER}).")
@click.option("--text", metavar="TEXT", help=f"The message (default: ${GAMMU_DECODED} or ${GAMMU_TEXT}).")
@click.option("--id", "message_id", default="", help="The gateway's id or time for this SMS (replays are refused).")
@click.argument("gammu_ids", nargs=-1, metavar="[MESSAGE_ID]...")
@json_option
@click.pass_obj
def sms_command(
    ctx: CliContext, sender: str | None, text: str | None, message_id: str, gammu_ids: tuple[str, ...], as_json: bool
) -> None:
    """Act on an SMS reply: OK [PIN] checks in, SOS [PIN] asks for help, ACK CODE
    acknowledges the alert whose code a page carried.

    Prints the text to send back (nothing for an unknown number). Exit status 0
    when the node acted on it, 1 with a one-line reason when it refused it. With
    no options it reads gammu-smsd's RunOnReceive environment, and the message
    ids gammu appends become the SMS's id."""
    sender = sender if sender is not None else os.environ.get(GAMMU_NUMBER)
    text = text if text is not None else os.environ.get(GAMMU_DECODED) or os.environ.get(GAMMU_TEXT)
    if not sender or text is None:
        raise click.ClickException(f"give --from and --text (or run as gammu-smsd's RunOnReceive: ${GAMMU_NUMBER})")
    doc = LocalClient(ctx.home).post(
        "/api/v1/inbound/sms", {"from": sender, "text": text, "id": message_id or " ".join(gammu_ids)}
    )
    emit(doc, as_json, doc["reply"])
    if not doc["acted"]:
        click.echo(f"refused: {doc['reason']}", err=True)
        raise SystemExit(1)


@inbound_group.command("gateway-key")
@click.option("--new", is_flag=True, help="Replace the key (the gateway app must be given the new one).")
@json_option
@click.pass_obj
def gateway_key_command(ctx: CliContext, new: bool, as_json: bool) -> None:
    """Print the key an SMS-gateway app signs with, and the URL it posts to
    (made on first use). Keep it like a password."""
    from node.response.sms_routes import gateway_key

    key = gateway_key(ctx.home, new=new)
    url = f"{public_base(load(ctx.home))}/sms/v1/inbound"
    emit({"key": key, "url": url}, as_json, f"Gateway key: {key}\nWebhook URL: {url}\n"
         "Signed: X-Signature = hex HMAC-SHA256(key, body + X-Timestamp). See docs/field.md.")
