"""The command line starts fast because it imports lazily (docs/performance.md).

Each check runs in a fresh interpreter, so what another test imported cannot
hide an import the CLI does itself.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import click
import pytest

from node.cli import COMMANDS, cli

HEAVY = (
    "aiohttp",
    "sqlalchemy",
    "alembic",
    "nacl",
    "msgpack",
    "apprise",
    "pycountry",
    "cryptography",
    "babel",
    "jinja2",
    "asyncio",
)


def loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return sorted(set(out.split()) & set(HEAVY))


def test_the_root_group_and_its_help_import_no_heavy_library() -> None:
    assert (
        loaded_after("import node.cli\nfrom node.cli import cli\ncli.main(['--help'], standalone_mode=False)")
        == []
    )


@pytest.mark.parametrize(
    "module",
    [
        "node.cli.alert",
        "node.cli.response",
        "node.cli.allies",
        "node.cli.peer",
        "node.cli.keys",
        "node.cli.watch",
        "node.cli.node_commands",
        "node.cli.demo",
    ],
)
def test_a_command_module_imports_heavy_libraries_only_when_a_command_runs(module: str) -> None:
    assert loaded_after(f"import {module}") == []


def test_the_lazy_table_says_what_each_command_says_of_itself() -> None:
    ctx = click.Context(cli)
    for name, (_module, _attribute, summary) in COMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
        assert inspect.cleandoc(command.help or "").split("\n\n")[0] == summary, name


def test_an_unknown_command_is_refused_as_before() -> None:
    result = subprocess.run([sys.executable, "-m", "node.cli", "alrt"], capture_output=True, text=True)
    assert result.returncode == 2 and "No such command 'alrt'" in result.stderr


def test_alert_list_against_a_stopped_node_imports_no_heavy_library(tmp_path: Path) -> None:
    home = tmp_path / "home"
    init = [
        sys.executable,
        "-m",
        "node.cli",
        "--home",
        str(home),
        "init",
        "--name",
        "Colectivo Lento",
        "--no-passphrase",
        "--kdf-profile",
        "interactive",
    ]
    subprocess.run(init, capture_output=True, check=True)
    run = (
        f"from node.cli import cli\ntry:\n    cli.main(['--home', {str(home)!r}, 'alert', 'list'], "
        "standalone_mode=False)\nexcept Exception as exc:\n    assert 'cannot reach the node' in str(exc), exc"
    )
    assert loaded_after(run) == []
