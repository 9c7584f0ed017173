"""``log_format = "json"``: a real node writes one JSON object per line, each with
``t``, ``level``, ``logger`` and ``msg``, for log shippers that parse lines."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from node.devmesh import LocalMesh
from tests.e2e.test_escalation import configure

pytestmark = pytest.mark.slow


def test_json_log_format_writes_one_object_per_line(tmp_path: Path) -> None:
    with LocalMesh(tmp_path, 2) as mesh:
        mesh.init_all()
        a, b = mesh.nodes
        configure(a.home, log_format="json")
        mesh.start_all()
        mesh.connect([(0, 1)])
        mesh.wait_for(a.send(headline="Logged in JSON"), [b], timeout=20)
        b.stop()  # A logs its failed calls to a peer that went away
        a.send(headline="While the peer is down")
        assert a.stop(signal.SIGTERM) == 0
    lines = (a.home / "node.log").read_text("utf-8").splitlines()
    assert len(lines) >= 2
    records = []
    for number, line in enumerate(lines, 1):
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"node.log line {number} is not JSON: {line[:200]!r}")
        assert isinstance(doc, dict), line
        assert {"t", "level", "logger", "msg"} <= set(doc), line
        assert doc["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), line
        records.append(doc)
    messages = [(r["logger"], r["msg"]) for r in records]
    assert any(logger == "amparo.run" and "up: mesh https://" in msg for logger, msg in messages), messages
    assert any(logger == "amparo.run" and msg == "shutting down" for logger, msg in messages), messages
    # The text format is still the default: B's log is not JSON.
    first = (b.home / "node.log").read_text("utf-8").splitlines()[0]
    with pytest.raises(json.JSONDecodeError):
        json.loads(first)
