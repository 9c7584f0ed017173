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
from node.catalogs import translations
from node.errors import Refused

# The scenario the dashboard's form starts from, in the reader's language.
EXAMPLE = {"en": "armed-person-at-march", "es": "persona-armada-en-la-marcha"}
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


# The report's words (node.web.labels marks them for translation): the file
# `amparo drill run` writes is English; the dashboard shows the same report in
# its reader's language.
TITLE = "Drill report: %(name)s"
ALL_EXERCISES = "All alerts were exercises, labelled DRILL on every channel."
STEP = "Step %(number)s: %(headline)s"
ORG_ACKED = "organization **%(org)s**: %(state)s after %(seconds)s s"
LOCAL_ACKED = "responder **%(who)s** acknowledged locally after %(seconds)s s"
NOBODY = "nobody acknowledged"
MISSED = "Missed"
NOTHING = "nothing"
CHART_TITLE = "Time to acknowledge (s)"
NO_ACKS = "No acknowledgements."
STOPPED = "The drill stopped after %(count)s step(s): %(reason)s"
MESSAGES = (
    TITLE,
    ALL_EXERCISES,
    STEP,
    ORG_ACKED,
    LOCAL_ACKED,
    NOBODY,
    MISSED,
    NOTHING,
    CHART_TITLE,
    NO_ACKS,
    STOPPED,
)


def outcome(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What each step's alert got, from the alert as the node shows it: the
    answers (each organization's, and this node's responder who acknowledged)
    in seconds after the alert. Kept with the report, so it can be told again
    in another language."""
    steps = []
    for alert in results:
        answers = [
            {
                "who": r.get("organization") or r["key"][:12],
                "local": False,
                "state": r["state"],
                "seconds": float(r["time_to_ack_s"]),
            }
            for r in alert.get("responses", [])
        ]
        escalation = alert.get("escalation") or {}
        if escalation.get("acked_by"):
            answers.append(
                {
                    "who": escalation["acked_by"],
                    "local": True,
                    "state": "responding",
                    "seconds": _local_ack_seconds(alert),
                }
            )
        steps.append({"headline": str(alert.get("headline", "")), "answers": answers})
    return steps


def told(name: str, steps: list[dict[str, Any]], lang: str = "en", *, linked: bool = True) -> tuple[str, str]:
    """The Markdown report and its chart, in ``lang``, from ``outcome``'s steps.
    A step nobody acknowledged is listed under "Missed" and drawn as such.
    ``linked``: the report links its chart's file (``drill-chart.svg`` beside
    it, as ``amparo drill run`` writes them); the dashboard shows the chart itself."""
    t = translations(lang).gettext
    lines = [f"# {t(TITLE) % {'name': name}}", "", t(ALL_EXERCISES), ""]
    rows: list[tuple[str, float | None]] = []
    missed = []
    for i, step in enumerate(steps, 1):
        lines.append(f"## {t(STEP) % {'number': i, 'headline': step['headline']}}")
        for a in step["answers"]:
            if a["local"]:
                lines.append(f"- {t(LOCAL_ACKED) % {'who': a['who'], 'seconds': a['seconds']}}")
            else:
                said = {"org": a["who"], "state": t(a["state"]), "seconds": a["seconds"]}
                lines.append(f"- {t(ORG_ACKED) % said}")
            rows.append((f"{i}: {a['who']}", float(a["seconds"])))
        if not step["answers"]:
            missed.append(step["headline"])
            lines.append(f"- **{t(NOBODY)}**")
            rows.append((f"{i}: {step['headline']}", None))
        lines.append("")
    lines += (
        [f"## {t(MISSED)}", ""]
        + ([f"- {m}" for m in missed] or [f"- {t(NOTHING)}"])
        + (["", "![chart](drill-chart.svg)", ""] if linked else [""])
    )
    return "\n".join(lines), chart(rows, lang)


def stopped(name: str, count: int, reason: str, lang: str = "en") -> str:
    """The report of a drill that could not go on."""
    t = translations(lang).gettext
    return f"# {t(TITLE) % {'name': name}}\n\n{t(STOPPED) % {'count': count, 'reason': reason}}\n"


def _local_ack_seconds(alert: dict[str, Any]) -> float:
    acked = [
        n for n in alert.get("notes", []) if n.get("kind") == "escalation" and "acknowledged" in n["text"]
    ]
    return round((acked[-1]["at"] - alert["created"]) / 1000, 1) if acked else 0.0


def chart(rows: list[tuple[str, float | None]], lang: str = "en") -> str:
    """A horizontal bar chart of time-to-acknowledge, as plain SVG (no
    dependency). A row without seconds is a step nobody acknowledged: a red
    bar across the chart, marked "nobody acknowledged"."""
    t = translations(lang).gettext
    bar_h, left, width = 26, 260, 400
    longest = max((s for _, s in rows if s is not None), default=1.0) or 1.0
    height = 40 + bar_h * max(len(rows), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 80}" height="{height}" '
        f'font-family="sans-serif" font-size="13">',
        f'<text x="10" y="20" font-weight="bold">{escape(t(CHART_TITLE))}</text>',
    ]
    for i, (label, seconds) in enumerate(rows):
        y = 32 + i * bar_h
        parts.append(f'<text x="10" y="{y + 16}">{escape(label[:36])}</text>')
        if seconds is None:
            parts.append(
                f'<rect class="missed" x="{left}" y="{y + 4}" width="{width}" height="{bar_h - 8}" '
                'fill="#fde8e8" stroke="#b30000" stroke-dasharray="4 3"/>'
            )
            parts.append(
                f'<text x="{left + 8}" y="{y + 16}" fill="#b30000" font-weight="bold">{escape(t(NOBODY))}</text>'
            )
            continue
        w = max(2, int(width * seconds / longest))
        parts.append(f'<rect x="{left}" y="{y + 4}" width="{w}" height="{bar_h - 8}" fill="#1b7f3a"/>')
        parts.append(f'<text x="{left + w + 6}" y="{y + 16}">{seconds:g}</text>')
    if not rows:
        parts.append(f'<text x="10" y="50">{escape(t(NO_ACKS))}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
