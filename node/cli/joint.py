"""``amparo alert propose|endorse|object|proposals``: joint releases, k of n (docs/joint.md)."""

from __future__ import annotations

from typing import Any

import click

from node.cli.alert_fields import alert_fields, payload
from node.cli.base import CliContext, emit, json_option, when
from node.cli.client import LocalClient
from node.cli.region_input import resolve_all
from node.printable import printable
from protocol.alert import SEVERITIES


@click.command("propose")
@alert_fields
@click.option("--severity", type=click.Choice(SEVERITIES), required=True)
@click.option("--scope", type=click.Choice(["public", "members"]), default="public", show_default=True)
@click.option(
    "--endorsers", required=True,
    help="Organizations that decide, comma-separated names (as `amparo peer list` shows them) or keys; "
    "this organization is always one of them.",
)  # fmt: skip
@click.option("--threshold", type=int, required=True, help="How many endorsements release the alert.")
@click.option("--deadline", help="How long the endorsers have, e.g. 30m or 2h (default 2h).")
@click.option("--exercise", is_flag=True, help="Mark as an exercise (drill).")
@json_option
@click.pass_obj
def propose(ctx: CliContext, /, as_json: bool, endorsers: str, **kw: Any) -> None:
    """Propose a joint public alert; it is released once THRESHOLD of the endorsers
    endorse it before the deadline (this organization's endorsement counts). Prints
    the proposal's id."""
    if not kw.get("regions"):
        raise click.UsageError("give at least one --region")
    if not kw.get("headline"):
        raise click.UsageError("give a --headline")
    kw["regions"], resolved = resolve_all(ctx.home, kw["regions"], as_json=as_json)
    names = [n.strip() for n in endorsers.split(",") if n.strip()]
    doc = LocalClient(ctx.home).post("/api/v1/proposals", payload(**kw) | {"endorsers": names})
    emit(doc | {"resolved": resolved}, as_json, doc["id"])


@click.command("endorse")
@click.argument("proposal_id")
@json_option
@click.pass_obj
def endorse(ctx: CliContext, proposal_id: str, as_json: bool) -> None:
    """Endorse a proposal for this organization (signed, sealed to the endorsers)."""
    doc = LocalClient(ctx.home).post(f"/api/v1/proposals/{proposal_id}/endorse", {})
    emit(doc, as_json, f"Endorsed proposal {doc['proposal'][:12]}….")


@click.command("object")
@click.argument("proposal_id")
@click.option("--reason", help="Why this organization objects (shown to the other endorsers).")
@json_option
@click.pass_obj
def object_to(ctx: CliContext, proposal_id: str, reason: str | None, as_json: bool) -> None:
    """Object to a proposal for this organization; the others see the objection."""
    doc = LocalClient(ctx.home).post(f"/api/v1/proposals/{proposal_id}/object", payload(reason=reason))
    emit(doc, as_json, f"Objected to proposal {doc['proposal'][:12]}….")


@click.command("proposals")
@json_option
@click.pass_obj
def proposals(ctx: CliContext, as_json: bool) -> None:
    """Joint proposals this organization is named in, newest first, with who endorsed or objected."""
    doc = LocalClient(ctx.home).get("/api/v1/proposals")
    emit(doc, as_json, "\n".join(_lines(p) for p in doc["proposals"]) or "No proposals.")


def _lines(p: dict[str, Any]) -> str:
    mark = " [WAITING FOR YOU]" if p["waiting_for_me"] else ""
    lines = [
        f"{p['id'][:12]}  {p['state'].upper():<8} {p['endorsed']}/{p['threshold']} of {len(p['endorsers'])}  "
        f"{printable(p['headline'])}{mark}",
        f"  proposed by {printable(p['proposer_name'] or p['proposer'][:12])}, deadline {when(p['deadline'])}",
    ]
    for e in p["endorsers"]:
        vote = e["vote"] or "waiting"
        reason = f": {printable(e['reason'])}" if e.get("reason") else ""
        lines.append(f"    {printable(e['name'])}: {vote}{reason}")
    if p["releases"]:
        lines.append(f"  released as alert {p['releases'][0]}")
    return "\n".join(lines)


COMMANDS = (propose, endorse, object_to, proposals)
