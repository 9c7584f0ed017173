"""Every ``config.toml`` setting is in the operator guide's settings table.

A setting an operator cannot find is a setting nobody uses or everybody guesses
at; this test makes adding a field to :class:`node.config.Config` without a row
in docs/operators.md §7 a failure that names the field.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from node.config import Config

OPERATORS = Path(__file__).resolve().parents[2] / "docs" / "operators.md"
_ROW_KEY = re.compile(r"^\|\s*`([a-z_][a-z0-9_]*)`\s*\|")


def settings_table_keys(markdown: str) -> set[str]:
    """The keys in the first column of the table under the ``Settings`` heading."""
    keys: set[str] = set()
    in_settings = False
    for line in markdown.splitlines():
        if line.startswith("## "):
            in_settings = "Settings" in line
        elif in_settings and (match := _ROW_KEY.match(line)):
            keys.add(match.group(1))
    return keys


def undocumented(config_type: type, markdown: str) -> list[str]:
    documented = settings_table_keys(markdown)
    return [f.name for f in dataclasses.fields(config_type) if f.name not in documented]


def test_every_config_setting_is_in_the_settings_table() -> None:
    missing = undocumented(Config, OPERATORS.read_text("utf-8"))
    assert not missing, f"settings missing from docs/operators.md §7 (Settings): {missing}"


def test_the_check_catches_a_planted_undocumented_setting() -> None:
    planted = dataclasses.make_dataclass(
        "Planted", [("dawn_chorus", str, dataclasses.field(default=""))], bases=(Config,), frozen=True
    )
    assert undocumented(planted, OPERATORS.read_text("utf-8")) == ["dawn_chorus"]


def test_only_the_settings_table_counts() -> None:
    """A key named in some other table (the home's files, error codes) is not documented as a setting."""
    markdown = "## 2. Files\n| `name` | x |\n## 7. Settings (`config.toml`)\n| `listen` | y |\n## 8. Backups\n| `local` | z |\n"
    assert settings_table_keys(markdown) == {"listen"}
