"""The drill examples ship inside the package (a container has no ``docs/``):
setuptools copies them with the code (pyproject ``[tool.setuptools.package-data]``),
and ``amparo drill run NAME`` reads them from wherever the package is installed
(``importlib.resources``), not from a source checkout. ``drill run`` itself
only posts the scenario and follows the node's runner: tested here against a
stand-in for the local API (real nodes: tests/e2e/test_drill.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.cli.base import CliContext
from node.cli.response import drill_group
from node.response import drill

# The group is invoked on its own, so give its context the help names the root
# `amparo` group hands down: click caches a command's help option on first use,
# and a bare context would leave `--help` alone in docs/cli.md (test_cli_reference).
AS_THE_CLI = {"help_option_names": ["-h", "--help"]}

ROOT = Path(__file__).resolve().parents[2]
READ_FROM_INSTALL = """
import json, node
from node.response import drill
plan = drill.load(drill.example("armed-person-at-march"))
print(json.dumps({"package": node.__file__, "examples": drill.examples(), "name": plan.name,
                  "steps": len(plan.steps)}))
"""


def _install(tmp: Path) -> Path:
    """What an installation copies: setuptools' ``build_py`` on a copy of the
    source tree (nothing is written into the checkout or the virtualenv)."""
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("protocol", "mesh", "node"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    lib = tmp / "lib"
    build = (
        "import sys, setuptools; setuptools.setup(script_args=['-q', 'build_py', '--build-lib', sys.argv[1]])"
    )
    subprocess.run(
        [sys.executable, "-c", build, str(lib)], cwd=source, check=True, capture_output=True, timeout=120
    )
    return lib


@pytest.mark.slow  # a copy of the tree and a setuptools build: seconds, not milliseconds
def test_the_example_loads_from_the_installed_package(tmp_path: Path) -> None:
    lib = _install(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", READ_FROM_INSTALL],
        cwd=tmp_path,
        env={"PYTHONPATH": str(lib), "PATH": "/usr/bin:/bin"},
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    doc = json.loads(out.stdout)
    assert Path(doc["package"]).is_relative_to(lib)  # the installed copy, not the checkout
    assert doc["examples"] == drill.examples() == ["armed-person-at-march", "persona-armada-en-la-marcha"]
    assert doc["name"] == "Armed person at the Saturday march" and doc["steps"] == 2


def test_the_cli_names_the_examples_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    # The group on its own: invoking the whole CLI here would leave its ``-h`` in these
    # commands' help for the reference test (click caches each command's help option).
    listed = CliRunner().invoke(drill_group, ["examples"], obj=CliContext(tmp_path), **AS_THE_CLI)
    assert listed.exit_code == 0 and listed.output.split() == drill.examples()
    unknown = CliRunner().invoke(
        drill_group, ["run", "armed-person-at-the-zocalo"], obj=CliContext(tmp_path), **AS_THE_CLI
    )
    assert unknown.exit_code == 1
    assert (
        "not a file, nor one of the examples (armed-person-at-march, persona-armada-en-la-marcha)"
        in unknown.output
    )


def test_the_spanish_example_is_the_english_one_in_spanish() -> None:
    english, spanish = (drill.load(drill.example(drill.EXAMPLE[lang])) for lang in ("en", "es"))
    assert spanish.participants == english.participants and spanish.wait_ms == english.wait_ms
    assert [(s.at_ms, s.alert["severity"], s.alert["regions"]) for s in spanish.steps] == [
        (s.at_ms, s.alert["severity"], s.alert["regions"]) for s in english.steps
    ]
    assert all(
        s.alert["headline"].startswith("SIMULACRO") and s.alert["language"] == "es" for s in spanish.steps
    )


class FakeNode:
    """The local API as ``amparo drill run`` sees it: a drill that sends one step
    per question, then ends ``done`` or ``failed``."""

    def __init__(self, home: Path, end: str = "done") -> None:
        self.end, self.asked, self.posted = end, 0, []  # type: ignore[var-annotated]

    def post(self, path: str, payload: dict[str, object] | None = None) -> dict[str, object]:
        self.posted.append((path, payload))
        return {"id": "1795000000000", "name": "Marcha", "steps": 2, "participants": ["Ana"], "sent": []}

    def get(self, path: str) -> dict[str, object]:
        assert path == "/api/v1/drills/1795000000000"
        self.asked += 1
        sent = [{"id": f"{i:064x}", "headline": f"paso {i}"} for i in range(min(self.asked, 2))]
        if self.asked < 4:
            return {"state": "running", "sent": sent, "steps": 2, "ends": 1795000300000}
        stopped = "# Drill report: Marcha\n\nThe drill stopped after 1 step(s): severity: not a severity\n"
        report = "# Drill report: Marcha\n" if self.end == "done" else stopped
        return {"id": "1795000000000", "state": self.end, "sent": sent, "markdown": report, "svg": "<svg/>"}


def test_drill_run_follows_the_node_and_writes_its_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from node.cli import response

    node = FakeNode(tmp_path)
    monkeypatch.setattr(response, "LocalClient", lambda home: node)
    monkeypatch.setattr(response, "POLL_S", 0)
    out = tmp_path / "report"
    ran = CliRunner().invoke(
        drill_group,
        ["run", "armed-person-at-march", "--out", str(out), "--wait", "30s"],
        obj=CliContext(tmp_path),
        **AS_THE_CLI,
    )
    assert ran.exit_code == 0, ran.output
    path, payload = node.posted[0]
    assert path == "/api/v1/drills" and payload == {
        "scenario": drill.example("armed-person-at-march"),
        "wait": "30s",
    }
    assert ran.output.count("sent DRILL alert") == 2  # each step told once, however often the node is asked
    assert ran.output.count("waiting until") == 1
    assert (out / "drill-report.md").read_text() == "# Drill report: Marcha\n"
    assert (out / "drill-chart.svg").read_text() == "<svg/>"
    said = f"report written to {(out / 'drill-report.md').resolve()} (chart: {(out / 'drill-chart.svg').resolve()})"
    assert said in ran.output  # where to find it, not only its text


def test_a_drill_that_stopped_is_an_error_that_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from node.cli import response

    monkeypatch.setattr(response, "LocalClient", lambda home: FakeNode(home, end="failed"))
    monkeypatch.setattr(response, "POLL_S", 0)
    ran = CliRunner().invoke(
        drill_group,
        ["run", "armed-person-at-march", "--out", str(tmp_path)],
        obj=CliContext(tmp_path),
        **AS_THE_CLI,
    )
    assert ran.exit_code == 1
    assert "Error: The drill stopped after 1 step(s): severity: not a severity" in ran.output
    assert not (tmp_path / "drill-report.md").exists()
