"""Time zones through the real CLI and a running node: times print in the node's
``timezone`` with its abbreviation, ``amparo --utc`` prints UTC, JSON stays Unix
ms, a responder's own zone is stored and an unknown one refused, a time typed
without an offset is on the node's clock (the phone check-in page says the
deadline in it), a shift that would already have
ended and a check-in deadline in the past are refused with plain messages, and
an unknown ``timezone`` in config.toml is a one-line configuration error. The
dashboard shows times in the signed-in responder's zone, else the node's."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from node import clock_text
from tests.e2e.test_escalation import PASSWORD, open_signed_in

pytestmark = pytest.mark.slow

ZONE = "America/Mexico_City"  # UTC-6 all year (no daylight saving since 2022)


def test_times_in_the_cli_and_the_dashboard_follow_the_time_zones(mesh_factory: Any, tmp_path: Path) -> None:
    (node,) = mesh_factory(1, timezone=ZONE).nodes
    mexico = clock_text.zone(ZONE)
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")

    made = json.loads(
        node.amparo(
            "responder", "add", "Ana", "--tz", "Europe/Madrid", "--password-file", str(secret), "--json"
        ).stdout
    )
    assert made["tz"] == "Europe/Madrid"
    node.amparo("responder", "add", "Bruno", "--password-file", str(secret))
    listed = node.amparo("responder", "list").stdout
    assert "Europe/Madrid" in listed and "node time zone" in listed
    refused = node.amparo("responder", "add", "Carla", "--tz", "Mars/Olympus_Mons", check=False)
    assert refused.returncode == 1
    assert "tz: unknown time zone 'Mars/Olympus_Mons'" in refused.stderr and "Traceback" not in refused.stderr

    yesterday = datetime.fromtimestamp(time.time() - 86_400, mexico).strftime("%Y-%m-%dT08:00")
    past = node.amparo(
        "oncall", "schedule", "--responder", "Ana", "--start", yesterday, "--hours", "8", check=False
    )
    assert past.returncode == 1
    assert (
        f"start: this shift would end at {yesterday.replace('T08:00', ' 16:00')} CST, which is already past"
        in (past.stderr)
    )

    scheduled = json.loads(
        node.amparo(
            "oncall", "schedule", "--responder", "Ana", "--backup", "Bruno", "--hours", "8", "--json"
        ).stdout
    )
    start = scheduled["start"]  # JSON stays Unix ms
    assert isinstance(start, int)
    local, utc = clock_text.when(start, mexico, seconds=True), clock_text.when(start, UTC, seconds=True)
    assert local.endswith(" CST") and utc.endswith(" UTC")
    shown = node.amparo("oncall", "show").stdout
    assert f"{local} → " in shown and utc not in shown
    assert f"{utc} → " in node.amparo("--utc", "oncall", "show").stdout
    oncall_page = f"http://127.0.0.1:{node.local_port}/ui/oncall"
    assert local in open_signed_in(oncall_page, "Bruno", PASSWORD)  # no zone of his own: the node's
    assert clock_text.when(start, clock_text.zone("Europe/Madrid"), seconds=True) in open_signed_in(
        oncall_page, "Ana", PASSWORD
    )

    tomorrow = datetime.fromtimestamp(time.time() + 86_400, mexico).strftime("%Y-%m-%dT18:00")
    started = node.amparo("checkin", "start", "--who", "Lucía", "--region", "MX-OAX", "--at", tomorrow).stdout
    assert f"next deadline {tomorrow.replace('T', ' ')}:00 CST." in started
    link = started.split("Phone link (keep it secret): ")[1].strip()
    with urllib.request.urlopen(link, timeout=30) as resp:  # the person's one-tap page
        assert f"before your deadline: {tomorrow.replace('T', ' ')} CST." in resp.read().decode()
    late = node.amparo(
        "checkin", "start", "--who", "Lucía", "--region", "MX-OAX", "--at", "2026-01-05T18:00", check=False
    )
    assert (
        late.returncode == 1
        and "at: the deadline 2026-01-05 18:00 CST is already past (it is " in late.stderr
    )

    node.configure(timezone="Mars/Olympus_Mons")  # read again by the next command
    broken = node.amparo("oncall", "show", check=False)
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    assert "timezone: unknown time zone 'Mars/Olympus_Mons': use an IANA name" in broken.stderr
