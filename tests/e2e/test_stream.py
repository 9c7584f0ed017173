"""The live stream (SSE) and `amparo watch` against real nodes."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest

from node.devmesh import LocalNode
from node.provision import api_token

pytestmark = pytest.mark.slow

RED, YELLOW, CYAN, BLUE = "\x1b[41m", "\x1b[43m", "\x1b[46m", "\x1b[44m"  # ANSI backgrounds


def watch_in_a_terminal(node: LocalNode, *args: str, timeout: float = 30) -> str:
    """`amparo watch ARGS` with its output on a pseudo-terminal, as a person runs
    it (click drops colours when output goes to a pipe); returns what it wrote."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "node.cli", "--home", str(node.home), "watch", *args],
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=subprocess.PIPE,
    )
    os.close(terminal)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # EIO: the watcher exited and closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        proc.wait(timeout=5)
    finally:
        proc.kill()
        os.close(controller)
    return out.decode("utf-8", "replace")


def shown_with(output: str, background: str, text: str) -> bool:
    """Whether ``text`` appears styled with ``background`` (click puts the colour
    codes right before the text)."""
    start = output.find(text)
    while start != -1:
        if background in output[max(0, start - 24) : start]:
            return True
        start = output.find(text, start + 1)
    return False


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
            # from the stream's start: whether the watcher connects before or after
            # the alerts arrive, it shows each once (replayed, then live; no sleep)
            "--since",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
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


def test_watch_colours_by_severity_and_labels_drills_in_a_terminal(mesh_factory: Any) -> None:
    mesh = mesh_factory(1)
    (a,) = mesh.nodes
    a.send(headline="Defensor detenido en Juchitán", severity="extreme", instruction="Llamar a la fiscalía")
    a.send(headline="Amenazas en la radio comunitaria", severity="moderate")
    a.send(headline="Volantes con amenazas", severity="minor")
    a.send(headline="Simulacro: persona armada en la marcha", severity="severe", exercise=True)
    out = watch_in_a_terminal(a, "--since", "0", "--count", "4")
    assert "Defensor detenido en Juchitán" in out and "Simulacro: persona armada" in out, out
    assert shown_with(out, RED, " EXTREME ") and shown_with(out, RED, " SEVERE ")
    assert shown_with(out, YELLOW, " MODERATE ") and shown_with(out, CYAN, " MINOR ")
    assert shown_with(out, BLUE, " DRILL ")  # the exercise, labelled where nobody can miss it
    drill_line = next(line for line in out.splitlines() if "Simulacro" in line)
    assert " DRILL " in drill_line
    assert all(" DRILL " not in line for line in out.splitlines() if "Juchitán" in line or "Volantes" in line)
    assert "ACTION: Llamar a la fiscalía" in out
