"""``amparo run`` and ``amparo status``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from node.cli.base import CliContext, emit, json_option, when
from node.cli.client import LocalClient
from node.config import load
from node.printable import printable

if TYPE_CHECKING:  # the CLI imports the node itself only when it runs one
    from node.service import NodeService


@click.command("run")
@click.option("--verbose", "-v", is_flag=True, help="Debug logging.")
@click.pass_obj
def run_command(ctx: CliContext, verbose: bool) -> None:
    """Run the node in the foreground (mesh and local listeners) until SIGTERM/SIGINT."""
    import asyncio
    import logging

    from node import runner
    from node.cli.identity import guarded_prompt

    config = load(ctx.home)
    runner.setup_logging(config, logging.DEBUG if verbose else logging.INFO)

    def ready(service: NodeService) -> None:
        if config.log_format == "json":
            return  # the "up" log record says it; stderr stays one JSON object per line
        click.echo(
            f"amparo: node {config.name!r} running (mesh {config.listen}, local {config.local})", err=True
        )

    asyncio.run(runner.serve(ctx.home, guarded_prompt(ctx.home), ready))


def failure_line(peer: dict[str, Any], indent: str) -> list[str]:
    """The peer's last failed call as a line of its own (empty if none): its text says
    which side failed and carries the peer's own error body, so it is escaped."""
    failure = peer.get("last_failure")
    if not failure:
        return []
    return [f"{indent}last failure {when(failure['at'])}: {printable(failure['text'])}"]


def peer_state_word(peer: dict[str, Any]) -> str:
    """up, failing (a call failed and none succeeded since) or down (silent longer
    than the liveness window); a cut-off peer says why, in this node's own words."""
    if peer.get("cut_off"):
        return f"CUT OFF ({peer['cut_off']})"
    return str(peer.get("state") or ("up" if peer["up"] else "down"))


@click.command("status")
@json_option
@click.pass_obj
def status_command(ctx: CliContext, as_json: bool) -> None:
    """Health of the running node: peers, traffic, rejections."""
    status = LocalClient(ctx.home).get("/api/v1/status")
    lines = [
        f"Node:        {status['name']}  ({status['fingerprint']})",
        f"Uptime:      {status['uptime_s']} s",
        f"Envelopes:   {status['envelopes_stored']} stored; {status['received']} received, "
        f"{status['pushed']} pushed, {status['push_failures']} push failures, {status['reconciles']} reconciles",
        f"Peers:       {status['peers_up']} of {len(status['peers'])} up",
    ]
    for peer in status["peers"]:
        state = peer_state_word(peer)
        lines.append(f"  - {printable(peer['name']):<24} {state:<7} last contact {when(peer['last_seen'])}")
        lines += failure_line(peer, "      ")
    if status.get("escalations_paging"):
        lines.append(
            click.style(
                f"Escalating:  {len(status['escalations_paging'])} alert(s) not yet acknowledged",
                fg="red",
                bold=True,
            )
        )
    checkins = status.get("checkins", {})
    if checkins.get("active") or checkins.get("missed"):
        lines.append(f"Check-ins:   {checkins.get('active', 0)} active, {checkins.get('missed', 0)} MISSED")
    for sub in status.get("deliveries", []):
        c = sub["deliveries"]
        colour = "red" if c.get("failed") or c.get("last_error") else None
        lines.append(
            click.style(
                f"Delivery:    {sub['id']} {sub['channel']['kind']} {','.join(sub['regions'])}: "
                f"{c.get('delivered', 0)} delivered, {c.get('pending', 0)} pending, {c.get('failed', 0)} failed"
                + (f" (last error: {printable(c['last_error'])})" if c.get("last_error") else ""),
                fg=colour,
            )
        )
    if status["rejected"]:
        lines.append("Rejected:    " + ", ".join(f"{k}={v}" for k, v in sorted(status["rejected"].items())))
    emit(status, as_json, "\n".join(lines))
