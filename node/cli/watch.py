"""``amparo watch``: the live alert stream in a terminal.

Colour by severity, DRILL/TEST labels that cannot be missed, ``--json`` for one
JSON object per line. Reconnects after a dropped connection with
``Last-Event-ID``, so nothing is shown twice and nothing is missed.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import click

from node.cli.base import CliContext, author_words, when
from node.cli.client import LocalClient
from node.printable import json_text, printable, printable_block
from protocol.alert import SEVERITIES

_KINDS = {"update": "UPDATE", "cancel": "CANCELLED"}
COLOURS = {"extreme": "red", "severe": "red", "moderate": "yellow", "minor": "cyan", "unknown": "white"}


def render(alert: dict[str, Any]) -> str:
    label = {"exercise": "DRILL", "test": "TEST"}.get(alert.get("status", ""), "")
    kind = alert.get("msg_type", "alert")
    severity = alert.get("severity", "unknown")
    head = click.style(f" {severity.upper()} ", fg="black", bg=COLOURS.get(severity, "white"), bold=True)
    parts = [head]
    if label:
        parts.append(click.style(f" {label} ", fg="white", bg="blue", bold=True))
    if kind != "alert":
        parts.append(click.style(_KINDS.get(kind, kind.upper()), bold=True))
    parts.append(click.style(printable(alert.get("headline", "(restricted: not readable here)")), bold=True))
    lines = [" ".join(parts)]
    change = alert.get("change") or {}
    ident = (
        f"incident {change['incident'][:12]}" if change.get("incident") else f"id {alert.get('id', '')[:12]}"
    )
    lines.append(
        f"  {when(alert.get('created'))} · {', '.join(alert.get('regions', []))} · "
        f"from {author_words(alert)} · {ident}"
    )
    if change.get("text"):  # who cancelled and why, or what an update changed
        lines.append(click.style(f"  {printable_block(change['text'], '  ')}", bold=True))
    if alert.get("instruction") and kind != "cancel":
        action = printable_block(alert["instruction"], " " * 10)
        lines.append(click.style(f"  ACTION: {action}", fg=COLOURS.get(severity, "white")))
    return "\n".join(lines)


async def _follow(client: LocalClient, params: dict[str, str], as_json: bool, once: int | None) -> None:
    import asyncio

    import aiohttp  # only once the command runs: `amparo --help` must not load it

    last_id = ""
    shown = 0
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=60)
    while True:
        headers = {"Authorization": f"Bearer {client.token}"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(f"{client.base}/api/v1/stream", params=params, headers=headers) as resp,
            ):
                if resp.status != 200:
                    raise click.ClickException(
                        f"the node refused the stream: HTTP {resp.status} {resp.reason}"
                    )
                event_id = ""
                async for raw in resp.content:
                    line = raw.decode("utf-8").rstrip("\n")
                    if line.startswith("id: "):
                        event_id = line[4:]
                    elif line.startswith("data: "):
                        alert = json.loads(line[6:])
                        click.echo(
                            json_text(json.dumps(alert, ensure_ascii=False))
                            if as_json
                            else render(alert) + "\n"
                        )
                        last_id = event_id or last_id
                        shown += 1
                        if once is not None and shown >= once:
                            return
        except (aiohttp.ClientError, TimeoutError):
            click.echo("amparo: connection to the node lost; reconnecting …", err=True)
            await asyncio.sleep(2)


@click.command("watch")
@click.option("--region", help="Only alerts inside this region (MX matches MX-OAX).")
@click.option("--severity", type=click.Choice(SEVERITIES), help="Minimum severity.")
@click.option("--no-drills", is_flag=True, help="Hide exercise and test alerts.")
@click.option("--since", "since_seq", help="Replay alerts after this stream id first.")
@click.option("--count", type=int, help="Exit after this many alerts (for scripts).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def watch_command(
    ctx: CliContext,
    region: str | None,
    severity: str | None,
    no_drills: bool,
    since_seq: str | None,
    count: int | None,
    as_json: bool,
) -> None:
    """Show alerts live as they reach this node (Ctrl-C to stop)."""
    import asyncio

    from node.cli.region_input import resolve_one

    region, _resolved = resolve_one(ctx.home, region, as_json=as_json)
    client = LocalClient(ctx.home)
    params = {k: v for k, v in {"region": region, "severity": severity, "since": since_seq}.items() if v}
    if no_drills:
        params["exercises"] = "0"
    if not as_json:
        click.echo(f"Watching alerts on {client.base} … (Ctrl-C to stop)", err=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_follow(client, params, as_json, count))
