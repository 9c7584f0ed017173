"""The live stream (SSE) and `amparo watch` against real nodes."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from typing import Any

import pytest

from node.setup import api_token

pytestmark = pytest.mark.slow


def test_watch_filters_and_labels_drills(mesh_factory: Any) -> None:
    mesh = mesh_factory(2)
    a, b = mesh.nodes
    mesh.connect([(0, 1)])
    watcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "node.cli",
            "--home",
            str(b.home),
            "watch",
            "--region",
            "MX",
            "--count",
            "2",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        import time

        time.sleep(1.5)  # let the watcher connect
        a.send(headline="Colombia only", regions=["CO-ANT"])
        first = a.send(headline="Oaxaca raid", regions=["MX-OAX"])
        drill = a.send(headline="Drill: armed person at the march", regions=["MX-CMX"], exercise=True)
        out, err = watcher.communicate(timeout=30)
    finally:
        watcher.kill()
    lines = [json.loads(line) for line in out.splitlines()]
    assert [x["id"] for x in lines] == [first, drill], err
    assert lines[1]["status"] == "exercise"
    human = b.amparo("alert", "list").stdout
    assert "[DRILL]" in human


def test_stream_resumes_with_last_event_id(mesh_factory: Any) -> None:
    mesh = mesh_factory(1)
    (a,) = mesh.nodes
    ids = [a.send(headline=f"Alert {i}") for i in range(3)]

    def read_events(last_event_id: str, count: int) -> list[tuple[str, str]]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{a.local_port}/api/v1/stream",
            headers={"Authorization": f"Bearer {api_token(a.home)}", "Last-Event-ID": last_event_id},
        )
        events: list[tuple[str, str]] = []
        with urllib.request.urlopen(request, timeout=10) as resp:
            event_id = ""
            for raw in resp:
                line = raw.decode().rstrip("\n")
                if line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("data: "):
                    events.append((event_id, json.loads(line[6:])["id"]))
                    if len(events) == count:
                        return events
        return events

    everything = read_events("0", 3)
    assert [alert for _, alert in everything] == ids
    after_first = read_events(everything[0][0], 2)
    assert [alert for _, alert in after_first] == ids[1:]
