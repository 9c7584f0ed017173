"""The options of a new alert, shared by ``amparo alert send|update|propose``."""

from __future__ import annotations

from typing import Any

import click

from protocol.alert import CERTAINTIES, EVENTS, URGENCIES


def alert_fields(f: Any) -> Any:
    """The options every new alert takes (`alert send`, `alert update`, `alert propose`)."""
    for option in reversed(
        [
            click.option(
                "--region",
                "regions",
                multiple=True,
                help="ISO 3166 code or a region's name, e.g. MX, mx-oax or Oaxaca (repeatable).",
            ),
            click.option("--headline", help="One line, at most 160 characters."),
            click.option("--description", help="What happened."),
            click.option("--instruction", help="The urgent action requested of allies."),
            click.option("--event", type=click.Choice(EVENTS)),
            click.option("--urgency", type=click.Choice(URGENCIES)),
            click.option("--certainty", type=click.Choice(CERTAINTIES)),
            click.option("--contact", help="How allies reach you about this alert."),
            click.option("--language", help="BCP 47 tag, e.g. es or en."),
            click.option("--expires", help="Lifetime, e.g. 6h or 2d (default 6h)."),
        ]
    ):
        f = option(f)
    return f


def payload(**kw: Any) -> dict[str, Any]:
    """What the person gave, without the options left out (the API applies its defaults)."""
    doc = {k: v for k, v in kw.items() if v not in (None, (), False, "")}
    if "regions" in doc:
        doc["regions"] = list(doc["regions"])
    if "to" in doc:
        doc["to"] = list(doc["to"])
    return doc
