"""The CLI reference in docs/ is generated from the CLI: a new or changed option
without regenerating the page fails here (Datasette's approach)."""

from pathlib import Path

from node.cli.reference import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_cli_reference_is_current() -> None:
    assert DOC.read_text("utf-8") == render(), "run: python -m node.cli.reference > docs/cli.md"


def test_every_command_has_help() -> None:
    text = render()
    for line in text.splitlines():
        if line.startswith("## `"):
            assert line.count("`") == 2
    assert "amparo peer accept" in text and "amparo alert send" in text and "amparo demo" in text
