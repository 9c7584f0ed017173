"""`amparo regions search` finds a code by a name in another language (CLI
parsing and output, no node needed)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from node.cli import cli


def test_region_search_command_with_a_translated_name() -> None:
    result = CliRunner().invoke(cli, ["regions", "search", "Alemania", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0] == {"code": "DE", "name": "Germany"}
    human = CliRunner().invoke(cli, ["regions", "search", "Alemania"])
    assert human.exit_code == 0 and human.output.split()[:2] == ["DE", "Germany"]
