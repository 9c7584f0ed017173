"""Drills: rehearse a scenario on the live mesh without anyone mistaking it for
the real thing.

A scenario is a TOML file with a timeline of exercise alerts. Every alert is
sent with status ``exercise`` (every channel labels it DRILL), and while the
drill runs this node pages only the responders the scenario lists. The report
shows time-to-acknowledge per responder and per organization, and what nobody
acknowledged, in Markdown with an SVG bar chart.

This module is the scenario format and the report, with no clock and no I/O
beyond reading the examples shipped with Amparo (``scenarios/``, package data:
a container has no ``docs/``). The node runs a scenario with
``node.response.drill_runner``.

```toml
name = "Armed person at the Saturday march"
participants = ["Ana", "Bruno"]        # only they are paged during the drill
wait = "2m"                            # how long to wait for acks after the last alert
[[step]]
at = "0s"
region = "MX-CMX"
severity = "severe"
headline = "DRILL: armed person seen near the stage"
instruction = "Locate the accompaniment team; confirm everyone is safe"
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from html import escape
from importlib import resources
from typing import Any

from node.alerts import AlertInputError, parse_duration
from node.errors import Refused

EXAMPLE = "armed-person-at-march"  # the scenario the dashboard's form starts from
MAX_DRILL_MS = 24 * 3600_000  # steps and the wait for acknowledgements together


class DrillError(Refused, ValueError):
    """A scenario that cannot run; the message names the field."""


@dataclass(frozen=True)
class Step:
    at_ms: int
    alert: dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    name: str
    participants: tuple[str, ...]
    wait_ms: int
    steps: tuple[Step, ...] = field(default_factory=tuple)


def examples() -> list[str]:
    """Names of the scenarios shipped with Amparo, for ``amparo drill run NAME``."""
    folder = resources.files("node.response").joinpath("scenarios")
    return sorted(f.name.removesuffix(".toml") for f in folder.iterdir() if f.name.endswith(".toml"))


def example(name: str) -> str:
    """The text of a shipped scenario, read from the installed package."""
    if name not in examples():
        raise DrillError(f"scenario {name!r}: not a file, nor one of the examples ({', '.join(examples())})")
    return resources.files("node.response").joinpath("scenarios", f"{name}.toml").read_text("utf-8")


def wait_override(value: object) -> int | None:
    """A run's own wait for acknowledgements (``--wait``), in ms; None keeps the scenario's."""
    if value in (None, ""):
        return None
    try:
        return parse_duration(str(value), "wait")
    except AlertInputError as exc:
        raise DrillError(str(exc)) from None


def load(text: str) -> Scenario:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DrillError(f"scenario: not valid TOML ({exc})") from None
    name = doc.get("name")
    if not isinstance(name, str) or not name.strip():
        raise DrillError("name: give the scenario a name")
    participants = doc.get("participants", [])
    if not isinstance(participants, list) or not all(isinstance(p, str) for p in participants):
        raise DrillError("participants: a list of responder names")
    raw_steps = doc.get("step", [])
    if not isinstance(raw_steps, list) or not raw_steps:
        raise DrillError("step: at least one [[step]] with at, region, severity and headline")
    steps = []
    for i, raw in enumerate(raw_steps):
        if not isinstance(raw, dict):
            raise DrillError(f"step[{i}]: a table")
        try:
            at = (
                parse_duration(str(raw.get("at", "0s")), f"step[{i}].at")
                if raw.get("at") not in (None, "0", 0)
                else 0
            )
        except AlertInputError as exc:
            raise DrillError(str(exc)) from None
        alert = {k: v for k, v in raw.items() if k != "at"}
        for key in ("region", "headline"):
            if not alert.get(key):
                raise DrillError(f"step[{i}].{key}: required")
        alert.setdefault("severity", "moderate")
        alert["regions"] = [alert.pop("region")]
        alert["exercise"] = True  # drills are always exercises, whatever the file says
        alert.pop("status", None)
        steps.append(Step(at, alert))
    try:
        wait = parse_duration(str(doc.get("wait", "2m")), "wait")
    except AlertInputError as exc:
        raise DrillError(str(exc)) from None
    return Scenario(name.strip(), tuple(participants), wait, tuple(sorted(steps, key=lambda s: s.at_ms)))


def report(scenario: Scenario, results: list[dict[str, Any]]) -> tuple[str, str]:
    """Markdown report and SVG chart from each step's alert as the node shows it."""
    rows: list[tuple[str, float]] = []
    lines = [
        f"# Drill report: {scenario.name}",
        "",
        "All alerts were exercises, labelled DRILL on every channel.",
        "",
    ]
    missed = []
    for i, alert in enumerate(results, 1):
        lines.append(f"## Step {i}: {alert.get('headline', '')}")
        responses = alert.get("responses", [])
        for r in responses:
            org = r.get("organization") or r["key"][:12]
            lines.append(f"- organization **{org}**: {r['state']} after {r['time_to_ack_s']} s")
            rows.append((f"{i}: {org}", float(r["time_to_ack_s"])))
        escalation = alert.get("escalation") or {}
        if escalation.get("acked_by"):
            seconds = _local_ack_seconds(alert)
            lines.append(f"- responder **{escalation['acked_by']}** acknowledged locally after {seconds} s")
            rows.append((f"{i}: {escalation['acked_by']}", seconds))
        if not responses and not escalation.get("acked_by"):
            missed.append(alert.get("headline", ""))
            lines.append("- **nobody acknowledged**")
        lines.append("")
    lines += (
        ["## Missed", ""]
        + ([f"- {m}" for m in missed] or ["- nothing"])
        + ["", "![chart](drill-chart.svg)", ""]
    )
    return "\n".join(lines), chart(rows)


def _local_ack_seconds(alert: dict[str, Any]) -> float:
    acked = [
        n for n in alert.get("notes", []) if n.get("kind") == "escalation" and "acknowledged" in n["text"]
    ]
    return round((acked[-1]["at"] - alert["created"]) / 1000, 1) if acked else 0.0


def chart(rows: list[tuple[str, float]]) -> str:
    """A horizontal bar chart of time-to-acknowledge, as plain SVG (no dependency)."""
    bar_h, left, width = 26, 260, 400
    longest = max((s for _, s in rows), default=1.0) or 1.0
    height = 40 + bar_h * max(len(rows), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" height="{height}" '
        f'font-family="sans-serif" font-size="13">',
        '<text x="10" y="20" font-weight="bold">Time to acknowledge (s)</text>',
    ]
    for i, (label, seconds) in enumerate(rows):
        y = 32 + i * bar_h
        w = max(2, int(width * seconds / longest))
        parts.append(f'<text x="10" y="{y + 16}">{escape(label[:36])}</text>')
        parts.append(f'<rect x="{left}" y="{y + 4}" width="{w}" height="{bar_h - 8}" fill="#1b7f3a"/>')
        parts.append(f'<text x="{left + w + 6}" y="{y + 16}">{seconds:g}</text>')
    if not rows:
        parts.append('<text x="10" y="50">No acknowledgements.</text>')
    parts.append("</svg>")
    return "\n".join(parts)
