"""The drill examples ship inside the package (a container has no ``docs/``):
setuptools copies them with the code (pyproject ``[tool.setuptools.package-data]``),
and ``amparo drill run NAME`` reads them from wherever the package is installed
(``importlib.resources``), not from a source checkout."""

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
    build = "import sys, setuptools; setuptools.setup(script_args=['-q', 'build_py', '--build-lib', sys.argv[1]])"
    subprocess.run([sys.executable, "-c", build, str(lib)], cwd=source, check=True, capture_output=True, timeout=120)
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
    assert doc["examples"] == drill.examples() == ["armed-person-at-march"]
    assert doc["name"] == "Armed person at the Saturday march" and doc["steps"] == 2


def test_the_cli_names_the_examples_and_refuses_an_unknown_one(tmp_path: Path) -> None:
    # The group on its own: invoking the whole CLI here would leave its ``-h`` in these
    # commands' help for the reference test (click caches each command's help option).
    listed = CliRunner().invoke(drill_group, ["examples"], obj=CliContext(tmp_path))
    assert listed.exit_code == 0 and listed.output.split() == drill.examples()
    unknown = CliRunner().invoke(drill_group, ["run", "armed-person-at-the-zocalo"], obj=CliContext(tmp_path))
    assert unknown.exit_code == 1
    assert "not a file, nor one of the examples (armed-person-at-march)" in unknown.output
