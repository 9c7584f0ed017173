"""The ``amparo`` command line (SPEC §5.3): click groups by noun.

Human output by default, ``--json`` for scripts; errors go to stderr with a
non-zero exit code (1 for known errors, 70 for unexpected ones, whose traceback
goes to a file: node/cli/base.py) and never as a traceback.

Every command starts in well under a third of a second (docs/performance.md,
``bench/cli_start.py``): the root group knows its commands by name and one line
of help, and imports a command's module only when that command runs. Modules
import the heavy libraries (aiohttp, SQLAlchemy, PyNaCl, Apprise, pycountry)
inside the commands that need them; ``tests/node/test_cli_start.py`` checks it.
"""

from __future__ import annotations

import importlib

import click

from node.cli.base import AmparoGroup, CliContext

# name: (module, attribute, first paragraph of its help). The help is the
# command's own (a test checks they agree), kept here so `amparo --help`
# imports no command module.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("node.cli.identity", "init_command", "Create a node: home directory, configuration and sealed keys."),
    "id": ("node.cli.identity", "id_command", "Show this node's name, keys, fingerprint and addresses."),
    "run": ("node.cli.node_commands", "run_command",
            "Run the node in the foreground (mesh and local listeners) until SIGTERM/SIGINT."),
    "status": ("node.cli.node_commands", "status_command", "Health of the running node: peers, traffic, rejections."),
    "peer": ("node.cli.peer", "peer_group", "Pair with allied organizations' nodes and manage peers."),
    "alert": ("node.cli.alert", "alert_group", "Send, list, show, update and cancel alerts."),
    "demo": ("node.cli.demo", "demo_command",
             "Start NODES real nodes on loopback, pair them, send an alert, watch it arrive."),
    "watch": ("node.cli.watch", "watch_command", "Show alerts live as they reach this node (Ctrl-C to stop)."),
    "keys": ("node.cli.keys", "keys_group", "This node's keys."),
    "responder": ("node.cli.response", "responder_group", "People of this organization who respond to alerts."),
    "person": ("node.cli.response", "person_group",
               "People in the field who are not responders: their phone and language."),
    "sos": ("node.cli.response", "sos_group", "Standing SOS/check-in links for people in the field and responders."),
    "inbound": ("node.cli.inbound", "inbound_group", "Messages people send to the node from their phones (SMS)."),
    "oncall": ("node.cli.response", "oncall_group", "The on-call rotation: who answers right now."),
    "checkin": ("node.cli.response", "checkin_group", "Check-ins for people travelling or at public events."),
    "drill": ("node.cli.response", "drill_group", "Rehearse scenarios on the live mesh, labelled DRILL everywhere."),
    "subscribe": ("node.cli.allies", "subscribe_group",
                  "Allies' subscriptions: which alerts go to which webhook or Apprise channel."),
    "regions": ("node.cli.allies", "regions_group", "ISO 3166 region codes: find the one you mean."),
    "backup": ("node.cli.maintenance", "backup_command",
               "Write one encrypted archive of this node (keys stay sealed; safe while it runs)."),
    "restore": ("node.cli.maintenance", "restore_command",
                "Restore a backup into an empty (or new) home: same identity, alerts, peers, settings."),
    "wipe": ("node.cli.maintenance", "wipe_command",
             "Destroy this node: stop it, erase the keys first, then the data, then the home."),
}


class LazyGroup(AmparoGroup):
    """The root group: lists commands from ``COMMANDS`` and imports one only to run it."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute, _help = COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)
        rows = [(name, click.Command(name, help=COMMANDS[name][2]).get_short_help_str(limit)) for name in sorted(COMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Node home directory (default: $AMPARO_HOME or ~/.local/share/amparo).",
)
@click.option(
    "--utc", is_flag=True, help="Show times in UTC instead of the node's time zone (`timezone` setting)."
)
@click.version_option(package_name="amparo")
@click.pass_context
def cli(ctx: click.Context, home: str | None, utc: bool) -> None:
    """Amparo: a federated alert mesh for allied human-rights organizations."""
    from pathlib import Path

    from node.config import default_home

    ctx.obj = CliContext(Path(home).expanduser() if home else default_home(), utc)


def main() -> None:
    cli.main(prog_name="amparo")


if __name__ == "__main__":  # pragma: no cover
    main()
