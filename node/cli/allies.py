"""``amparo subscribe`` (allies' subscriptions) and ``amparo regions``."""

from __future__ import annotations

from typing import Any

import click

from node.cli.base import CliContext, emit, fail, json_option
from node.cli.client import LocalClient
from node.cli.region_input import resolve_all
from protocol import regions
from protocol.alert import SEVERITIES


@click.group("subscribe")
def subscribe_group() -> None:
    """Allies' subscriptions: which alerts go to which webhook or Apprise channel."""


@subscribe_group.command("add")
@click.option("--region", "region_codes", multiple=True, required=True, help="MX, MX-OAX, a name such as Oaxaca, or * (repeatable).")
@click.option("--webhook", help="POST each alert as signed JSON to this https:// URL.")
@click.option("--apprise", "apprise_url", help="Send each alert through this Apprise URL (mailto://, signal://, ntfy://…).")
@click.option(
    "--min-severity", type=click.Choice(SEVERITIES), default="unknown", show_default=True,
    help="Only alerts at least this severe (unknown = everything).",
)
@click.option("--exercises/--no-exercises", default=False, show_default=True, help="Include drills and tests.")
@click.option(
    "--scope", "scopes", default="public,members", show_default=True,
    help="Scopes to deliver (comma-separated). restricted must be asked for: the channel carries the text off this machine.",
)
@click.option("--label", default="", help="A name for this subscription, e.g. who receives it.")
@click.option("--lang", default="en", show_default=True, help="Language of the texts an Apprise channel gets (en, es).")
@click.option(
    "--batch/--no-batch", default=False, show_default=True,
    help="Webhook only: alerts that queue up go several per request, as a list (see docs/allies.md).",
)
@json_option
@click.pass_obj
def add(
    ctx: CliContext,
    region_codes: tuple[str, ...],
    webhook: str | None,
    apprise_url: str | None,
    min_severity: str,
    exercises: bool,
    scopes: str,
    label: str,
    lang: str,
    batch: bool,
    as_json: bool,
) -> None:
    """Subscribe a channel to alerts for one or more regions."""
    if bool(webhook) == bool(apprise_url):
        fail("give exactly one channel: --webhook URL or --apprise URL")
    channel = {"kind": "webhook", "url": webhook} if webhook else {"kind": "apprise", "url": apprise_url}
    codes, resolved = resolve_all(ctx.home, region_codes, as_json=as_json)
    doc = LocalClient(ctx.home).post(
        "/api/v1/subscriptions",
        {
            "regions": codes,
            "channel": channel,
            "min_severity": min_severity,
            "exercises": exercises,
            "scopes": [s.strip() for s in scopes.split(",") if s.strip()],
            "label": label,
            "lang": lang,
            **({"batch": True} if batch else {}),
        },
    )
    doc = doc | {"resolved": resolved}
    human = f"Subscription {doc['id']}: {_describe(doc)}"
    if doc.get("secret"):
        human += (
            f"\nWebhook signing secret (shown once; give it to the receiver):\n  {doc['secret']}"
            "\nReceivers check the Amparo-Signature header: see docs/allies.md."
        )
    emit(doc, as_json, human)


@subscribe_group.command("list")
@json_option
@click.pass_obj
def list_subscriptions(ctx: CliContext, as_json: bool) -> None:
    """Subscriptions and what each has delivered, is still trying, or gave up on."""
    doc = LocalClient(ctx.home).get("/api/v1/subscriptions")
    lines = [f"{s['id']}  {_describe(s)}\n      {_counts(s['deliveries'])}" for s in doc["subscriptions"]]
    emit(doc, as_json, "\n".join(lines) or "No subscriptions yet: amparo subscribe add --region MX --webhook URL")


@subscribe_group.command("remove")
@click.argument("subscription_id")
@json_option
@click.pass_obj
def remove(ctx: CliContext, subscription_id: str, as_json: bool) -> None:
    """Remove a subscription (and whatever it had not delivered yet)."""
    doc = LocalClient(ctx.home).delete(f"/api/v1/subscriptions/{subscription_id}")
    emit(doc, as_json, f"Removed subscription {subscription_id}.")


@click.group("regions")
def regions_group() -> None:
    """ISO 3166 region codes: find the one you mean."""


@regions_group.command("search")
@click.argument("text")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 100))
@json_option
def search(text: str, limit: int, as_json: bool) -> None:
    """Find region codes by name, in any language (Oaxaca, Alemania, Ciudad de México…)."""
    found = regions.search(text, limit=limit)
    data = [{"code": code, "name": name} for code, name in found]
    if not found and not as_json:
        fail(f"no region name contains {text!r}")
    emit(data, as_json, "\n".join(f"{code:<8} {name}" for code, name in found))


def _describe(doc: dict[str, Any]) -> str:
    filters = [f"≥ {doc['min_severity']}" if doc["min_severity"] != "unknown" else "any severity"]
    filters.append("with drills" if doc["exercises"] else "no drills")
    filters.append("/".join(doc["scopes"]))
    if doc.get("batch"):
        filters.append("batched")
    label = f" [{doc['label']}]" if doc.get("label") else ""
    channel = doc["channel"]
    return f"{', '.join(doc['regions'])} → {channel['kind']} {channel['url']}{label} ({'; '.join(filters)})"


def _counts(c: dict[str, Any]) -> str:
    text = f"delivered {c.get('delivered', 0)}, pending {c.get('pending', 0)}, failed {c.get('failed', 0)}"
    return text + (f"  (last error: {c['last_error']})" if c.get("last_error") else "")
