"""What every command shares: the home, output in human or JSON form, and errors.

Known failures (bad configuration, a protocol rejection, an unreachable node)
become a one-line message on stderr and exit code 1. Anything unexpected is
left to click, which ends in a traceback and exit code 1.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from node.config import ConfigError
from node.printable import json_text
from protocol.errors import ProtocolError


@dataclass
class CliContext:
    home: Path


class AmparoGroup(click.Group):
    """Turns expected errors into clean stderr messages."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ConfigError, ProtocolError) as exc:
            message = exc.message if isinstance(exc, ProtocolError) else str(exc)
            raise click.ClickException(message) from None
        except OSError as exc:
            raise click.ClickException(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None


def emit(data: Any, as_json: bool, human: str) -> None:
    """Print ``human`` text, or ``data`` as JSON when the caller asked for it."""
    if as_json:
        click.echo(json_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False)))
    else:
        click.echo(human)


def warn(text: str) -> None:
    click.secho(text, fg="yellow", bold=True, err=True)


def fail(text: str) -> None:
    raise click.ClickException(text)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()
