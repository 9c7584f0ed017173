"""``amparo alert send|list|show|update|cancel``."""

from __future__ import annotations

from typing import Any

import click

from node.cli.alert_fields import alert_fields as _fields
from node.cli.alert_fields import payload as _payload
from node.cli.base import CliContext, author_words, emit, json_option, when
from node.cli.client import LocalClient
from node.cli.region_input import resolve_all, resolve_one
from node.printable import printable, printable_block
from node.timeline import Step, history
from protocol.alert import SEVERITIES
from protocol.bodies import ACK_STATES

_SEVERITY_COLOUR = {
    "extreme": "red",
    "severe": "red",
    "moderate": "yellow",
    "minor": "cyan",
    "unknown": "white",
}

MAX_IMPORT_BYTES = 256 * 1024


@click.group("alert")
def alert_group() -> None:
    """Send, list, show, update and cancel alerts."""


@alert_group.command("send")
@_fields
@click.option("--severity", type=click.Choice(SEVERITIES), required=True)
@click.option(
    "--scope", type=click.Choice(["public", "members", "restricted"]), default="members", show_default=True
)
@click.option("--to", multiple=True, help="Recipient peer for restricted alerts (repeatable).")
@click.option(
    "--exercise", is_flag=True, help="Mark as an exercise (drill): never mistaken for a real alert."
)
@json_option
@click.pass_obj
def send(ctx: CliContext, /, as_json: bool, **kw: Any) -> None:
    """Sign and broadcast a new alert; prints its id."""
    if not kw.get("regions"):
        raise click.UsageError("give at least one --region")
    if not kw.get("headline"):
        raise click.UsageError("give a --headline")
    kw["regions"], resolved = resolve_all(ctx.home, kw["regions"], as_json=as_json)
    doc = LocalClient(ctx.home).post("/api/v1/alerts", _payload(**kw))
    emit(doc | {"resolved": resolved}, as_json, doc["id"])


@alert_group.command("list")
@click.option("--region", help="Only alerts inside this region (MX matches MX-OAX); a code or a name.")
@click.option("--since", help="Only alerts created in this window, e.g. 1h or 7d.")
@click.option("--limit", default=100, show_default=True)
@json_option
@click.pass_obj
def list_alerts(ctx: CliContext, region: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """Alerts this node holds, newest first."""
    region, resolved = resolve_one(ctx.home, region, as_json=as_json)
    doc = LocalClient(ctx.home).get("/api/v1/alerts", region=region, since=since, limit=limit)
    emit(doc | {"resolved": resolved}, as_json, "\n".join(_line(a) for a in doc["alerts"]) or "No alerts.")


def _line(a: dict[str, Any]) -> str:
    tags = []
    if a.get("status") != "actual":
        tags.append("DRILL" if a.get("status") == "exercise" else "TEST")
    if a.get("cancelled"):
        tags.append("CANCELLED")
    if a.get("sealed"):
        tags.append("restricted")
    tag = f"[{' '.join(tags)}] " if tags else ""
    severity = click.style(
        f"{a.get('severity', '?'):<8}", fg=_SEVERITY_COLOUR.get(a.get("severity", ""), "white")
    )
    return (
        f"{a['id'][:12]}  {when(a['created'])}  {severity} {','.join(a.get('regions', [])):<12} "
        f"{tag}{printable(a.get('headline', ''))}  — {author_words(a)}"
    )


@alert_group.command("show")
@click.argument("alert_id")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "cap"]), default="text", show_default=True,
    help="cap: the alert as an OASIS CAP 1.2 XML document.",
)
@json_option
@click.pass_obj
def show(ctx: CliContext, alert_id: str, fmt: str, as_json: bool) -> None:
    """One alert and its incident timeline, oldest first.

    The timeline interleaves updates, cancels, acknowledgements, escalation
    steps and notes in the order they happened (the dashboard shows the same).
    For an alert this node sent, REACHED says how many organizations stored it
    (delivery receipts), when each did, and who is still missing; with --json,
    the `receipts` object (`reached`, `of`, `organizations`, `missing`)."""
    if fmt == "cap":
        click.echo(LocalClient(ctx.home).get_text(f"/api/v1/alerts/{alert_id}/cap"), nl=False)
        return
    a = LocalClient(ctx.home).get(f"/api/v1/alerts/{alert_id}")
    lines = [
        _line(a),
        f"  id:          {a['id']}",
        f"  from:        {author_words(a)}, key {a['author_fingerprint']}",
        f"  status:      {a['status']}  scope: {a['scope']}  event: {a['event']}",
        f"  urgency:     {a['urgency']}  severity: {a['severity']}  certainty: {a['certainty']}",
        f"  regions:     {', '.join(a['regions'])}",
        *([_joint_line(a["joint"])] if a.get("joint") else []),
        f"  expires:     {when(a['expires'])}",
        *([f"  effective:   {when(a['effective'])}"] if a.get("effective") else []),
    ]
    for label, key in (("description", "description"), ("ACTION", "instruction"), ("contact", "contact")):
        if a.get(key):
            lines.append(f"  {label + ':':<12} {printable_block(a[key], ' ' * 15)}")
    for r in a.get("responses", []):
        lines.append(
            f"  RESPONSE {printable(r['organization'] or r['key'][:12])}: {r['state']} "
            f"(first ack after {r['time_to_ack_s']} s){' — ' + printable(r['note']) if r.get('note') else ''}"
        )
    lines.extend(_receipt_lines(a.get("receipts")))
    if a.get("escalation"):
        e = a["escalation"]
        lines.append(
            f"  ESCALATION: {e['state']} (step {e['step'] + 1}){' by ' + printable(e['acked_by']) if e['acked_by'] else ''}"
        )
    lines.append("  TIMELINE:")
    lines.extend(f"    {when(step.at)}  {_step_line(step)}" for step in history(a))
    emit(a, as_json, "\n".join(lines))


def _receipt_lines(receipts: dict[str, Any] | None) -> list[str]:
    """Who an alert of this node reached (delivery receipts), and who not yet."""
    if receipts is None:
        return []
    lines = [f"  REACHED {receipts['reached']} of {receipts['of']} organizations"]
    for org in receipts["organizations"] + receipts["others"]:
        lines.append(f"    {printable(org['name'] or org['fingerprint'])}: stored {when(org['stored_at'])}")
    if receipts["missing"]:
        names = ", ".join(printable(org["name"] or org["fingerprint"]) for org in receipts["missing"])
        lines.append(f"    missing: {names}")
    return lines


def _joint_line(joint: dict[str, Any]) -> str:
    signed = [printable(e["name"]) for e in joint["endorsers"] if e["signed"]]
    return f"  joint:       endorsed by {', '.join(signed)} ({len(signed)} of {joint['threshold']} needed)"


def _step_line(step: Step) -> str:
    what = f"{step.kind} ({step.state})" if step.state else step.kind
    who = f" — {printable(step.who)}" if step.who else ""
    return f"{what}: {printable(step.text)}{who}" if step.text else f"{what}{who}"


@alert_group.command("update")
@click.argument("alert_id")
@_fields
@click.option("--severity", type=click.Choice(SEVERITIES))
@json_option
@click.pass_obj
def update(ctx: CliContext, /, alert_id: str, as_json: bool, **kw: Any) -> None:
    """Publish an update to an alert this node sent."""
    kw["regions"], resolved = resolve_all(ctx.home, kw.get("regions") or (), as_json=as_json)
    doc = LocalClient(ctx.home).post(f"/api/v1/alerts/{alert_id}/update", _payload(**kw))
    emit(doc | {"resolved": resolved}, as_json, updated_line(doc))


@alert_group.command("cancel")
@click.argument("alert_id")
@click.option("--reason", help="Why it is cancelled (shown to allies).")
@json_option
@click.pass_obj
def cancel(ctx: CliContext, alert_id: str, reason: str | None, as_json: bool) -> None:
    """Cancel an alert this node sent."""
    doc = LocalClient(ctx.home).post(f"/api/v1/alerts/{alert_id}/cancel", _payload(reason=reason))
    emit(doc, as_json, cancelled_line(doc))


def updated_line(doc: dict[str, Any]) -> str:
    """What an update did, in one line per change: ``updated <incident>: headline 'a' → 'b'``
    (the incident's id, which every link uses; the update's own id is in --json)."""
    incident = str(doc.get("incident") or doc["id"])
    changed = doc.get("changed") or {}
    if not changed:
        return f"updated {incident}: nothing changed (the update repeats the current state)"
    parts = [f"{field} {_shown(old)} → {_shown(new)}" for field, (old, new) in changed.items()]
    return f"updated {incident}: " + "; ".join(parts)


def cancelled_line(doc: dict[str, Any]) -> str:
    """What a cancel did: ``cancelled <incident>: <reason>``."""
    incident = str(doc.get("incident") or doc["id"])
    reason = str(doc.get("reason") or "") or "no reason given"
    return f"cancelled {incident} ({printable(str(doc.get('headline') or ''))}): {printable(reason)}"


def _shown(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else repr(printable(str(value)))


@alert_group.command("ack")
@click.argument("alert_id")
@click.option("--state", type=click.Choice(ACK_STATES), default="responding", show_default=True)
@click.option("--note", help="A short note for the alert's author and allies.")
@click.option("--by", help="Which responder acknowledges (stops local paging; shown in drill reports).")
@json_option
@click.pass_obj
def ack(ctx: CliContext, alert_id: str, state: str, note: str | None, by: str | None, as_json: bool) -> None:
    """Acknowledge an alert for your organization: responding, seen or unable."""
    doc = LocalClient(ctx.home).post(
        f"/api/v1/alerts/{alert_id}/ack", _payload(state=state, note=note, by=by)
    )
    emit(doc, as_json, f"Acknowledged as {state} ({doc['id'][:12]}…).")


@alert_group.command("import")
@click.argument("cap_file", type=click.File("rb"))
@click.option("--region", help="Region for areas without an ISO 3166 geocode (e.g. MX-OAX).")
@click.option("--scope", type=click.Choice(["public", "members"]), help="Override the document's scope.")
@click.option("--expires", help="Override the document's expiry, e.g. 6h (default: the CAP expires, else 6h).")
@json_option
@click.pass_obj
def import_cap(
    ctx: CliContext, cap_file: Any, region: str | None, scope: str | None, expires: str | None, as_json: bool
) -> None:
    """Re-publish a CAP 1.2 alert from an outside source (e.g. civil protection)
    as an alert signed by this node; its original sender and identifier are kept."""
    region, _resolved = resolve_one(ctx.home, region, as_json=as_json)
    data = cap_file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise click.ClickException(f"{cap_file.name}: larger than {MAX_IMPORT_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{cap_file.name}: not UTF-8 text") from None
    doc = LocalClient(ctx.home).post(
        "/api/v1/alerts/import", {"cap": text, "region": region, "scope": scope, "expires": expires}
    )
    kind = doc.get("msg_type", "alert")
    answers = f" ({kind} of {', '.join(r[:16] + '…' for r in doc.get('references', []))})" if kind != "alert" else ""
    emit(doc, as_json, f"{doc['id']}\nImported from {printable(doc['source'])}{answers}")


def _add_note() -> None:
    """``amparo alert note`` lives with the response desk's commands."""
    from node.cli.response import note_command

    alert_group.add_command(note_command)


_add_note()


def _add_joint() -> None:
    """``amparo alert propose|endorse|object|proposals`` live in node.cli.joint."""
    from node.cli.joint import COMMANDS

    for command in COMMANDS:
        alert_group.add_command(command)


_add_joint()
