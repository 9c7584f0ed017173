"""The ``amparo`` command line (SPEC §5.3): click groups by noun.

Human output by default, ``--json`` for scripts; errors go to stderr with a
non-zero exit code (1 for known errors, 70 for unexpected ones, whose traceback
goes to a file: node/cli/base.py) and never as a traceback.
"""

from __future__ import annotations

import click

from node.cli.alert import alert_group
from node.cli.allies import regions_group, subscribe_group
from node.cli.base import AmparoGroup, CliContext
from node.cli.demo import demo_command
from node.cli.identity import id_command, init_command
from node.cli.keys import keys_group
from node.cli.maintenance import backup_command, restore_command, wipe_command
from node.cli.node_commands import run_command, status_command
from node.cli.peer import peer_group
from node.cli.response import checkin_group, drill_group, note_command, oncall_group, responder_group
from node.cli.watch import watch_command
from node.config import default_home


@click.group(cls=AmparoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Node home directory (default: $AMPARO_HOME or ~/.local/share/amparo).",
)
@click.version_option(package_name="amparo")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """Amparo: a federated alert mesh for allied human-rights organizations."""
    from pathlib import Path

    ctx.obj = CliContext(Path(home).expanduser() if home else default_home())


cli.add_command(init_command)
cli.add_command(id_command)
cli.add_command(run_command)
cli.add_command(status_command)
cli.add_command(peer_group)
cli.add_command(alert_group)
cli.add_command(demo_command)
cli.add_command(watch_command)
cli.add_command(keys_group)
cli.add_command(responder_group)
cli.add_command(oncall_group)
cli.add_command(checkin_group)
cli.add_command(drill_group)
alert_group.add_command(note_command)
cli.add_command(subscribe_group)
cli.add_command(regions_group)
cli.add_command(backup_command)
cli.add_command(restore_command)
cli.add_command(wipe_command)


def main() -> None:
    cli.main(prog_name="amparo")


if __name__ == "__main__":  # pragma: no cover
    main()
