"""Unexpected CLI errors: exit 70, one line, the traceback in a file (node/cli/base.py).

The end-to-end case (a corrupted database under ``amparo backup``) is in
tests/e2e/test_cli.py; these pin what a real process cannot reach easily: no home
to write into, and an exception message that must never reach the terminal.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from node.cli.base import EX_SOFTWARE, AmparoGroup, CliContext


def _cli(home: Path, failure: BaseException) -> click.Group:
    @click.group(cls=AmparoGroup)
    @click.pass_context
    def cli(ctx: click.Context) -> None:
        ctx.obj = CliContext(home)

    @cli.command("boom")
    def boom() -> None:
        raise failure

    return cli


def test_without_a_home_the_traceback_goes_to_a_private_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    secret = "amparo-secret-key-material"
    result = CliRunner().invoke(_cli(tmp_path / "no-home", KeyError(secret)), ["boom"])
    assert result.exit_code == EX_SOFTWARE
    assert secret not in result.output  # the message may quote anything; only the type is shown
    [log] = scratch.iterdir()
    assert log.stat().st_mode & 0o777 == 0o600 and secret in log.read_text("utf-8")
    assert result.output.count("\n") == 1 and str(log) in result.output
    assert (
        "unexpected KeyError at " in result.output
        and "test_cli_unexpected.py:28 in `cli boom`" in result.output
    )
    assert not (tmp_path / "no-home").exists()  # a crash does not create a home


def test_known_errors_keep_their_clean_exit(tmp_path: Path) -> None:
    result = CliRunner().invoke(_cli(tmp_path, click.ClickException("refused")), ["boom"])
    assert result.exit_code == 1 and result.output == "Error: refused\n"
    assert not (tmp_path / "logs").exists()
