"""One incident history for the CLI and the dashboard: steps by time, whatever
their source (envelopes from the mesh, this node's own notes)."""

from __future__ import annotations

from typing import Any

from node.timeline import history

T0 = 1_800_000_000_000


def detail() -> dict[str, Any]:
    """The shape ``incidents.alert_detail`` returns, trimmed to what matters."""
    return {
        "created": T0,
        "headline": "Detención arbitraria en Tlaxiaco",
        "author_name": "Colectivo Sierra",
        "timeline": [
            {
                "type": "ack",
                "created": T0 + 60_000,
                "state": "responding",
                "note": "vamos",
                "author_name": "Red Valle",
            },
            {
                "type": "alert",
                "msg_type": "update",
                "created": T0 + 120_000,
                "headline": "Trasladada a la fiscalía",
                "author_name": "Colectivo Sierra",
            },
            {
                "type": "alert",
                "msg_type": "cancel",
                "created": T0 + 600_000,
                "headline": "Detención arbitraria en Tlaxiaco",
                "description": "Liberada sin cargos",
                "author_name": "Colectivo Sierra",
            },
        ],
        "notes": [  # the desk lists notes first and separately
            {"at": T0 + 30_000, "kind": "escalation", "text": "paged on-call Ana", "author": ""},
            {
                "at": T0 + 900_000,
                "kind": "debrief",
                "text": "La fiscalía respondió en 40 min",
                "author": "Bruno",
            },
        ],
    }


def test_a_note_written_after_the_cancel_comes_after_the_ack_and_the_cancel() -> None:
    steps = history(detail())
    assert [s.kind for s in steps] == ["sent", "escalation", "ack", "update", "cancel", "debrief"]
    assert [s.at for s in steps] == sorted(s.at for s in steps)
    assert steps[2].state == "responding" and steps[2].who == "Red Valle" and steps[2].text == "vamos"
    assert steps[4].text == "Liberada sin cargos"  # a cancel shows its reason
    assert steps[-1].who == "Bruno"


def test_steps_in_the_same_millisecond_keep_a_readable_order() -> None:
    doc = detail() | {"notes": [{"at": T0, "kind": "escalation", "text": "paged on-call Ana"}]}
    doc["timeline"][0]["created"] = T0
    assert [s.kind for s in history(doc)][:3] == ["sent", "ack", "escalation"]
