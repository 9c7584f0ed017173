"""What every command shares: the home, output in human or JSON form, and errors.

Known failures (bad configuration, a protocol rejection, an unreachable node)
become a one-line message on stderr and exit code 1. Anything unexpected is a
fault in Amparo: one line on stderr names the command, the exception type and
where it was raised, and where the full traceback was written (the home's
``logs/`` when the home exists, else a private temporary file), then exit code
70 (EX_SOFTWARE), so scripts can tell a bug from a refusal. The line never
carries the exception's message: it may quote a passphrase or key material.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import click

from node.config import ConfigError
from node.printable import json_text, printable

EX_SOFTWARE = 70  # sysexits.h: an internal software error
LOGS_DIR = "logs"


@dataclass
class CliContext:
    home: Path
    utc: bool = False  # --utc: show times in UTC instead of the node's time zone
    _zone: tzinfo | None = field(default=None, repr=False)

    def zone(self) -> tzinfo:
        """The zone times are shown in: UTC with ``--utc``, else the node's
        ``timezone`` setting (UTC for a home that has no configuration yet)."""
        if self._zone is None:
            from node.clock_text import zone
            from node.config import CONFIG_FILE, load

            use_node = not self.utc and (self.home / CONFIG_FILE).exists()
            self._zone = zone(load(self.home).timezone) if use_node else UTC
        return self._zone


def when(ms: int | None) -> str:
    """An instant for people: local time in the node's time zone with its
    abbreviation, or UTC with ``--utc`` (JSON output stays Unix ms)."""
    from node import clock_text

    context = click.get_current_context(silent=True)
    obj = context.find_object(CliContext) if context is not None else None
    return clock_text.when(ms, obj.zone() if obj else UTC, seconds=True, never="never")


class AmparoGroup(click.Group):
    """Turns expected errors into clean stderr messages, unexpected ones into exit 70."""

    def invoke(self, ctx: click.Context) -> Any:
        from protocol.errors import ProtocolError  # light: protocol/errors.py imports nothing

        try:
            return super().invoke(ctx)
        except (ConfigError, ProtocolError) as exc:
            message = exc.message if isinstance(exc, ProtocolError) else str(exc)
            raise click.ClickException(message) from None
        except OSError as exc:
            raise click.ClickException(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort, EOFError):
            raise  # click's own ways out, and EOF, which click turns into Abort
        except Exception as exc:
            report_unexpected(ctx, exc)
            ctx.exit(EX_SOFTWARE)


def report_unexpected(ctx: click.Context, exc: Exception) -> None:
    """One line on stderr for an unexpected exception; the traceback goes to a file."""
    command = " ".join(filter(None, [ctx.command_path, ctx.invoked_subcommand]))
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {_short_path(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""
    home = ctx.obj.home if isinstance(ctx.obj, CliContext) else None
    log = _write_traceback(home, exc)
    told = f"full traceback in {log}" if log else "the traceback could not be written anywhere"
    click.echo(f"Error: unexpected {type(exc).__name__}{where} in `{command}`; {told}", err=True)


def _short_path(filename: str) -> str:
    """The path relative to the installed packages, so the line stays short."""
    parts = Path(filename).parts
    for package in ("node", "protocol", "mesh"):
        if package in parts:
            return "/".join(parts[len(parts) - 1 - parts[::-1].index(package) :])
    return Path(filename).name


def _write_traceback(home: Path | None, exc: Exception) -> Path | None:
    """Write the traceback to the home's logs (mode 0600), else a private temp file."""
    text = "".join(traceback.format_exception(exc))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if home is not None and home.is_dir():
        try:
            logs = home / LOGS_DIR
            logs.mkdir(mode=0o700, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f"crash-{stamp}-", suffix=".log", dir=logs)
            return _fill(fd, name, text)
        except OSError:
            pass
    try:
        fd, name = tempfile.mkstemp(prefix=f"amparo-crash-{stamp}-", suffix=".log")
        return _fill(fd, name, text)
    except OSError:
        return None


def _fill(fd: int, name: str, text: str) -> Path:
    with os.fdopen(fd, "w", encoding="utf-8") as out:  # mkstemp made it 0600
        out.write(text)
    return Path(name)


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


def author_words(entry: dict[str, Any]) -> str:
    """Who sent an alert, as a person reads it: the organization's name (else its
    key's start) and how this node trusts it (``author_trust``), e.g. "Colectivo
    Sur (vouched by Brigada Solidaria Norte)". The list, ``show`` and ``watch`` use it."""
    name = printable(entry.get("author_name") or entry.get("author", "")[:12])
    trust = (entry.get("author_trust") or {}).get("text")
    return f"{name} ({printable(trust)})" if trust else name
