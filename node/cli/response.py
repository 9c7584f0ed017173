"""``amparo responder``, ``amparo oncall``, ``amparo alert note``, ``amparo
checkin`` and ``amparo drill``: thin clients of the node's local API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from node.cli.base import CliContext, emit, json_option, when
from node.cli.client import LocalClient


@click.group("responder")
def responder_group() -> None:
    """People of this organization who respond to alerts."""


@responder_group.command("add")
@click.argument("name")
@click.option(
    "--role", type=click.Choice(["admin", "responder", "viewer"]), default="responder", show_default=True
)
@click.option("--channel", "channels", multiple=True, help="Apprise URL to page this person (repeatable).")
@click.option("--password", is_flag=True, help="Ask for a dashboard password (stored as an Argon2id hash).")
@click.option(
    "--password-file", type=click.Path(dir_okay=False, path_type=Path),
    help="Read the dashboard password from this file (its first line), never from the command line.",
)
@click.option("--drills", is_flag=True, help="Also page this person for other organizations' drills.")
@click.option(
    "--lang", type=click.Choice(["es", "en"]), default="en", show_default=True, help="Language of this person's pages."
)
@click.option(
    "--tz", default="", metavar="ZONE",
    help="IANA time zone of this person's pages, e.g. America/Mexico_City (default: the node's timezone).",
)
@click.option("--phone", default="", metavar="+E164", help="Their phone number, for SMS replies (OK, SOS, ACK code).")
@json_option
@click.pass_obj
def add(
    ctx: CliContext,
    name: str,
    role: str,
    channels: tuple[str, ...],
    password: bool,
    password_file: Path | None,
    drills: bool,
    lang: str,
    tz: str,
    phone: str,
    as_json: bool,
) -> None:
    """Add (or replace) responder NAME."""
    if password and password_file:
        raise click.UsageError("give --password (to be asked) or --password-file, not both")
    secret = (
        _password_from(password_file)
        if password_file
        else click.prompt("Dashboard password", hide_input=True, confirmation_prompt=True, err=True)
        if password
        else None
    )
    doc = LocalClient(ctx.home).post(
        "/api/v1/responders",
        {"name": name, "role": role, "channels": list(channels), "password": secret, "drills": drills, "lang": lang,
         "tz": tz, "phone": phone},
    )
    zone = f", times in {doc['tz']}" if doc.get("tz") else ""
    emit(doc, as_json, f"Responder {doc['name']!r} ({doc['role']}, {doc['channels']} channel(s){zone}).")


def _password_from(path: Path) -> str:
    """The first line of ``path``: a password never goes in argv, where every
    user of the machine can read it in the process list and shell history."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read the password file {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"the password file {path} is not UTF-8 text") from None
    line = text.split("\n", 1)[0].rstrip("\r")
    if not line.strip():
        raise click.ClickException(f"the password file {path} is empty: write the password on its first line")
    return line


@responder_group.command("list")
@json_option
@click.pass_obj
def list_responders(ctx: CliContext, as_json: bool) -> None:
    """List responders."""
    doc = LocalClient(ctx.home).get("/api/v1/responders")
    lines = [
        f"{r['name']:<24} {r['role']:<10} {r['channels']} channel(s)  {r.get('lang', 'en')}  {r.get('tz') or 'node time zone'}"
        for r in doc["responders"]
    ]
    emit(doc, as_json, "\n".join(lines) or "No responders yet: amparo responder add NAME --channel URL")


@responder_group.command("remove")
@click.argument("name")
@json_option
@click.pass_obj
def remove(ctx: CliContext, name: str, as_json: bool) -> None:
    """Remove responder NAME."""
    doc = LocalClient(ctx.home).delete(f"/api/v1/responders/{name}")
    emit(doc, as_json, f"Removed {name!r}.")


@click.group("oncall")
def oncall_group() -> None:
    """The on-call rotation: who answers right now."""


@oncall_group.command("show")
@json_option
@click.pass_obj
def show(ctx: CliContext, as_json: bool) -> None:
    """Who is on call now, the coming shifts, and any gaps in the next week."""
    doc = LocalClient(ctx.home).get("/api/v1/oncall")
    now = doc["now"]
    lines = [
        f"On call now: {now['responder']} (backup {now['backup'] or 'none'}) until {when(now['end'])}"
        if now
        else click.style("NOBODY IS ON CALL NOW", fg="red", bold=True)
    ]
    lines += [f"  {when(s['start'])} → {when(s['end'])}  {s['responder']}" for s in doc["shifts"]]
    lines += [click.style(f"  GAP {when(g['start'])} → {when(g['end'])}", fg="yellow") for g in doc["gaps"]]
    lines += [
        f"  hand-over {when(h['at'])}: {h['outgoing']} → {h['incoming']} {h['note']}"
        + (f" [told: {_told(h['notified'])}]" if h.get("notified") else "")
        for h in doc["handovers"]
    ]
    emit(doc, as_json, "\n".join(lines))


def _told(notified: dict[str, str]) -> str:
    return ", ".join(f"{person} {state}" for person, state in notified.items())


@oncall_group.command("schedule")
@click.option("--responder", required=True)
@click.option(
    "--start", default="now", show_default=True,
    help="now, or an ISO time: 2026-12-01T08:00 is in the node's time zone; add an offset (-06:00) for another.",
)
@click.option("--hours", default=24.0, show_default=True, type=float, help="At most 24 unless --override.")
@click.option("--backup", help="Who is paged if the responder does not acknowledge.")
@click.option("--override", is_flag=True, help="Allow a shift longer than 24 h (shows a warning).")
@json_option
@click.pass_obj
def schedule(
    ctx: CliContext,
    responder: str,
    start: str,
    hours: float,
    backup: str | None,
    override: bool,
    as_json: bool,
) -> None:
    """Add a shift to the rotation."""
    doc = LocalClient(ctx.home).post(
        "/api/v1/oncall/shifts",
        {"responder": responder, "start": start, "hours": hours, "backup": backup, "override": override},
    )
    for warning in doc["warnings"]:
        click.secho(f"WARNING: {warning}", fg="yellow", err=True)
    emit(doc, as_json, f"Scheduled {responder} from {when(doc['start'])} for {hours:g} h.")


@oncall_group.command("handoff")
@click.option("--to", "to", required=True, help="Who takes over now.")
@click.option("--note", default="", help="What the next person needs to know.")
@json_option
@click.pass_obj
def handoff(ctx: CliContext, to: str, note: str, as_json: bool) -> None:
    """Hand over the on-call role now; both people are notified on their channels
    and see the record (amparo oncall show says whom the notice reached)."""
    doc = LocalClient(ctx.home).post("/api/v1/oncall/handoff", {"to": to, "note": note})
    emit(doc, as_json, f"{doc['from']} handed over to {doc['to']} at {when(doc['at'])}; notifying both.")


@click.command("note")
@click.argument("alert_id")
@click.argument("text")
@click.option("--author", default="", help="Who writes the note.")
@json_option
@click.pass_obj
def note_command(ctx: CliContext, alert_id: str, text: str, author: str, as_json: bool) -> None:
    """Add a debrief note to an alert's incident timeline."""
    doc = LocalClient(ctx.home).post(f"/api/v1/alerts/{alert_id}/note", {"text": text, "author": author})
    emit(doc, as_json, "Note added to the timeline.")


@click.group("checkin")
def checkin_group() -> None:
    """Check-ins for people travelling or at public events."""


@checkin_group.command("start")
@click.option("--who", required=True, help="The person or team checking in.")
@click.option("--region", required=True, help="Where they are: an ISO 3166 code or a name (MX-OAX, Oaxaca).")
@click.option("--in", "within", help="Single deadline from now, e.g. 2h.")
@click.option(
    "--at", "at", metavar="TIME",
    help="Single deadline at this time, e.g. 2026-12-06T18:00 (the node's time zone; or with an offset).",
)
@click.option("--every", help="Check in at this interval, e.g. 30m.")
@click.option("--grace", default="10m", show_default=True, help="Extra time before the alarm.")
@click.option("--note", default="", help="Context for responders (sent encrypted, only to --to).")
@click.option("--to", multiple=True, help="Peer organization alerted if the check-in is missed (repeatable).")
@click.option("--pin", default="", metavar="PIN", help="4-8 digits the phone page asks for (- to be asked).")
@click.option(
    "--duress-pin", default="", metavar="PIN",
    help="4-8 digits (as many as --pin) that check in like the PIN and silently raise a duress alert (- to be asked).",
)
@click.option(
    "--lang", type=click.Choice(["es", "en"]), default=None,
    help="Language of the phone page (default: the person's, else the phone's).",
)
@json_option
@click.pass_obj
def checkin_start(
    ctx: CliContext,
    who: str,
    region: str,
    within: str | None,
    at: str | None,
    every: str | None,
    grace: str,
    note: str,
    to: tuple[str, ...],
    pin: str,
    duress_pin: str,
    lang: str | None,
    as_json: bool,
) -> None:
    """Start a plan; prints the phone link (shown once: send it to the person)."""
    if sum(map(bool, (within, at, every))) != 1:
        raise click.UsageError("give one of --in, --at or --every")
    pin, duress_pin = _asked(pin, "PIN"), _asked(duress_pin, "Duress PIN")
    from node.cli.region_input import resolve_one

    region = resolve_one(ctx.home, region, as_json=as_json)[0] or region
    doc = LocalClient(ctx.home).post(
        "/api/v1/checkins",
        {
            "who": who,
            "region": region,
            "in": within,
            "at": at,
            "every": every,
            "grace": grace,
            "note": note,
            "to": list(to),
            "pin": pin or None,
            "duress_pin": duress_pin or None,
            "lang": lang or "",
        },
    )
    emit(
        doc,
        as_json,
        f"Check-in {doc['id']} for {who}: next deadline {when(doc['next_deadline'])}.\n"
        f"Phone link (keep it secret): {doc['link']}",
    )
    _loopback_warning(doc)


def _asked(value: str, what: str) -> str:
    """``-``: ask for it without echo (a PIN on the command line stays in the
    shell's history and the process list)."""
    if value != "-":
        return value
    return str(click.prompt(what, hide_input=True, confirmation_prompt=True, err=True))


def _loopback_warning(doc: dict[str, Any]) -> None:
    if doc.get("loopback"):
        click.secho(
            "WARNING: this link points at a loopback (or 0.0.0.0) address, which a phone cannot open. "
            "Set public_url in config.toml to the address people reach this node at "
            "(VPN, reverse proxy or onion service; see docs/operators.md) and restart the node.",
            fg="yellow",
            err=True,
        )


@click.group("person")
def person_group() -> None:
    """People in the field who are not responders: their phone and language."""


@person_group.command("add")
@click.argument("name")
@click.option("--phone", required=True, metavar="+E164", help="Their phone number (E.164), for SMS check-ins and SOS.")
@click.option(
    "--lang", type=click.Choice(["es", "en"]), default="en", show_default=True,
    help="Language of their phone page and SMS texts.",
)
@json_option
@click.pass_obj
def person_add(ctx: CliContext, name: str, phone: str, lang: str, as_json: bool) -> None:
    """Add (or replace) person NAME."""
    doc = LocalClient(ctx.home).post("/api/v1/people", {"name": name, "phone": phone, "lang": lang})
    emit(doc, as_json, f"Person {doc['name']!r} ({doc['phone']}, pages in {doc['lang']}).")


@person_group.command("list")
@json_option
@click.pass_obj
def person_list(ctx: CliContext, as_json: bool) -> None:
    """List people in the field."""
    doc = LocalClient(ctx.home).get("/api/v1/people")
    lines = [f"{p['name']:<24} {p['phone']:<16} {p['lang']}" for p in doc["people"]]
    emit(doc, as_json, "\n".join(lines) or "No people yet: amparo person add NAME --phone +E164")


@person_group.command("remove")
@click.argument("name")
@json_option
@click.pass_obj
def person_remove(ctx: CliContext, name: str, as_json: bool) -> None:
    """Remove person NAME and their standing link."""
    doc = LocalClient(ctx.home).delete(f"/api/v1/people/{name}")
    emit(doc, as_json, f"Removed {name!r}.")


@click.group("sos")
def sos_group() -> None:
    """Standing SOS/check-in links for people in the field and responders."""


@sos_group.command("link")
@click.argument("person")
@click.option("--revoke", is_flag=True, help="Revoke the link: it opens nothing any more.")
@click.option("--pin", default="", metavar="PIN", help="4-8 digits the page asks for to check in (- to be asked).")
@click.option(
    "--duress-pin", default="", metavar="PIN",
    help="4-8 digits (as many as --pin) that check in like the PIN and silently raise a duress alert (- to be asked).",
)
@click.option("--to", multiple=True, help="Peer organization an SOS is sealed to (repeatable; default: only this one).")
@click.option("--region", help="Where the person works: an ISO 3166 code (default: everywhere, *).")
@json_option
@click.pass_obj
def sos_link(
    ctx: CliContext, person: str, revoke: bool, pin: str, duress_pin: str, to: tuple[str, ...], region: str | None,
    as_json: bool,
) -> None:
    """Print PERSON's standing SOS/check-in link (the same until revoked)."""
    client = LocalClient(ctx.home)
    if revoke:
        doc = client.delete(f"/api/v1/sos-links/{person}")
        emit(doc, as_json, f"The standing link of {person!r} is revoked; `amparo sos link {person}` makes a new one.")
        return
    pin, duress_pin = _asked(pin, "PIN"), _asked(duress_pin, "Duress PIN")
    body = {"person": person, "pin": pin or None, "duress_pin": duress_pin or None, "to": list(to) or None,
            "region": region}
    doc = client.post("/api/v1/sos-links", body)
    emit(doc, as_json, f"Standing link of {doc['person']} (keep it secret): {doc['link']}")
    _loopback_warning(doc)


@checkin_group.command("ok")
@click.argument("plan_id")
@json_option
@click.pass_obj
def checkin_ok(ctx: CliContext, plan_id: str, as_json: bool) -> None:
    """Check in for PLAN_ID."""
    doc = LocalClient(ctx.home).post(f"/api/v1/checkins/{plan_id}/ok")
    emit(doc, as_json, f"Checked in ({doc['state']}).")


@checkin_group.command("stop")
@click.argument("plan_id")
@json_option
@click.pass_obj
def checkin_stop(ctx: CliContext, plan_id: str, as_json: bool) -> None:
    """End plan PLAN_ID (explicit: a plan never ends by itself)."""
    doc = LocalClient(ctx.home).post(f"/api/v1/checkins/{plan_id}/stop")
    emit(doc, as_json, "Check-in plan stopped.")


@checkin_group.command("list")
@json_option
@click.pass_obj
def checkin_list(ctx: CliContext, as_json: bool) -> None:
    """Active and past check-in plans."""
    doc = LocalClient(ctx.home).get("/api/v1/checkins")
    lines = [
        f"{c['id']:<16} {c['who']:<20} {c['region']:<8} {c['state']:<8} next {when(c['next_deadline'])}"
        for c in doc["checkins"]
    ]
    emit(doc, as_json, "\n".join(lines) or "No check-in plans.")


@click.group("drill")
def drill_group() -> None:
    """Rehearse scenarios on the live mesh, labelled DRILL everywhere."""


POLL_S = 0.5  # how often `drill run` asks the node how its drill is going


@drill_group.command("run")
@click.argument("scenario")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Where to write drill-report.md and drill-chart.svg.",
)
@click.option("--wait", help="Override the scenario's wait for acknowledgements, e.g. 30s.")
@json_option
@click.pass_obj
def drill_run(ctx: CliContext, scenario: str, out: str, wait: str | None, as_json: bool) -> None:
    """Run SCENARIO on this node, then write the report.

    SCENARIO is a TOML file, or the name of an example shipped with Amparo
    (see `amparo drill examples`). The node sends its exercise alerts on time
    (the dashboard's "Run drill" does the same); this command follows along."""
    from pathlib import Path

    text = _scenario_text(scenario)
    client = LocalClient(ctx.home)
    run = client.post("/api/v1/drills", {"scenario": text, "wait": wait})
    click.echo(
        f"DRILL {run['name']!r} ({run['id']}): {run['steps']} exercise alert(s); paging only "
        f"{', '.join(run['participants']) or 'nobody'}",
        err=True,
    )
    done = _follow(client, run["id"])
    if done["state"] != "done":
        raise click.ClickException(done["markdown"].strip().splitlines()[-1])
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    report, chart = (target / "drill-report.md").resolve(), (target / "drill-chart.svg").resolve()
    report.write_text(done["markdown"], "utf-8")
    chart.write_text(done["svg"], "utf-8")
    emit(
        {"id": done["id"], "alerts": [s["id"] for s in done["sent"]], "report": str(report), "chart": str(chart)},
        as_json,
        done["markdown"],
    )
    if not as_json:
        click.echo(f"report written to {report} (chart: {chart}); the dashboard's Drills page shows it too", err=True)


@drill_group.command("finish")
@click.argument("drill_id")
@json_option
@click.pass_obj
def drill_finish(ctx: CliContext, drill_id: str, as_json: bool) -> None:
    """Stop waiting for acknowledgements of drill DRILL_ID: every answer is in.

    The report is written as soon as the last step is sent; `amparo drill run`
    then writes it out."""
    doc = LocalClient(ctx.home).post(f"/api/v1/drills/{drill_id}/finish")
    emit(doc, as_json, f"DRILL {doc['name']!r}: the report follows the last step.")


@drill_group.command("examples")
def drill_examples() -> None:
    """Scenarios shipped with Amparo, to run by name or copy and edit."""
    from node.response import drill

    for name in drill.examples():
        click.echo(name)


def _scenario_text(scenario: str) -> str:
    """A file's text, else a shipped example's; the node checks what it says."""
    from pathlib import Path

    from node.response import drill

    path = Path(scenario)
    try:
        return path.read_text("utf-8") if path.is_file() else drill.example(scenario)
    except (OSError, UnicodeDecodeError, drill.DrillError) as exc:
        raise click.ClickException(str(exc)) from None


def _follow(client: LocalClient, run_id: str) -> dict[str, Any]:
    """Tell each step as the node sends it; answer the finished drill."""
    import time

    told, waiting = 0, False
    while True:
        run = client.get(f"/api/v1/drills/{run_id}")
        for step in run["sent"][told:]:
            click.echo(f"  sent DRILL alert {step['id'][:12]}: {step['headline']}", err=True)
        told = len(run["sent"])
        if run["state"] != "running":
            return dict(run)
        if told == run["steps"] and not waiting:
            waiting = True
            click.echo(
                f"waiting until {when(run['ends'])} for acknowledgements "
                f"(`amparo drill finish {run_id}` ends the wait) …",
                err=True,
            )
        time.sleep(POLL_S)
