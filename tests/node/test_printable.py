"""One escaping rule for everything a peer supplies on its way to a log or a
terminal: controls, line separators and bidi overrides become visible escapes,
ordinary text in any script stays as it is, and each renderer keeps one row per
item whatever the text holds."""

from __future__ import annotations

import json
import logging

import click
import pytest

from node.cli.alert import _line, _step_line
from node.cli.watch import render
from node.printable import json_text, printable, printable_block
from node.runner import JsonFormatter, TextFormatter
from node.timeline import Step

UNSAFE = "\n\r\t\x00\x07\x1b\x7f\x85\x9b\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
HOSTILE = "Raid\n3f2a9c1e0b7d  All clear\x1b[2K\r\u2028\u202eenalp"


@pytest.mark.parametrize("char", list(UNSAFE), ids=[f"U+{ord(c):04X}" for c in UNSAFE])
def test_every_unsafe_character_becomes_a_visible_escape(char: str) -> None:
    shown = printable(f"a{char}b")
    assert char not in shown and shown.startswith("a\\") and shown.endswith("b")
    assert shown == "a" + repr(char)[1:-1] + "b"  # Python's own escape, familiar to anyone reading a log


def test_ordinary_text_in_any_script_is_untouched() -> None:
    text = "Defensora detenida — مداهمة \u200f פשיטה \u200e 👩🏽‍⚖️ naïve \\n literal"
    assert printable(text) == text


def test_a_block_keeps_its_lines_but_indents_them_under_the_value() -> None:
    assert printable_block("one\ntwo\tcols\r\x1b[2K", "    ") == "one\n    two\tcols\\r\\x1b[2K"


def test_json_output_stays_the_same_value_without_raw_controls() -> None:
    doc = {"headline": HOSTILE + "\x9b"}
    dumped = json_text(json.dumps(doc, ensure_ascii=False))
    assert json.loads(dumped) == doc
    assert not any(c in dumped for c in UNSAFE)
    indented = json_text(json.dumps(doc, ensure_ascii=False, indent=2))  # as `--json` prints it
    assert json.loads(indented) == doc and indented.count("\n") == 2


def test_alert_list_and_watch_keep_one_row_per_alert() -> None:
    alert = {
        "id": "ab" * 32, "created": 1_800_000_000_000, "severity": "severe", "regions": ["MX-OAX"],
        "headline": HOSTILE, "author": "cd" * 32, "author_name": "Colectivo\nfalso\u202e", "status": "actual",
        "instruction": "Call\nthe lawyer\x1b[31m", "author_trust": {"text": "vouched by Brigada\nfalsa"},
    }  # fmt: skip
    row = click.unstyle(_line(alert))
    assert (
        "\n" not in row and "\\n3f2a9c1e0b7d" in row and "\\u202eenalp" in row and "Colectivo\\nfalso" in row
    )
    assert "(vouched by Brigada\\nfalsa)" in row
    shown = click.unstyle(render(alert))
    assert len(shown.splitlines()) == 4  # head, meta, ACTION and its indented second line
    assert shown.splitlines()[3] == "          the lawyer\\x1b[31m"
    step = Step(at=0, kind="note", state="", who="Ana\r", text="ok\nfake row")
    assert "\n" not in _step_line(step) and "\r" not in _step_line(step)


@pytest.mark.parametrize("formatter", [TextFormatter("%(levelname)s %(name)s: %(message)s"), JsonFormatter()])
def test_one_log_record_is_one_line(formatter: logging.Formatter) -> None:
    record = logging.LogRecord(
        "amparo.node", logging.INFO, __file__, 1, "push to %s failed: %s", ("ab", HOSTILE), None
    )
    line = formatter.format(record)
    assert "\n" not in line and not any(c in line for c in "\r\x1b\u2028\u202e")
    assert "All clear" in line
