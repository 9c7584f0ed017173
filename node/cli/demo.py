"""``amparo demo``: a local mesh of real node processes, and one alert crossing it."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click

from node.cli.base import emit, json_option


@click.command("demo")
@click.option("--nodes", default=5, show_default=True, type=click.IntRange(2, 40), help="How many nodes.")
@click.option("--keep", is_flag=True, help="Leave the nodes running until Ctrl-C.")
@json_option
def demo_command(nodes: int, keep: bool, as_json: bool) -> None:
    """Start NODES real nodes on loopback, pair them, send an alert, watch it arrive."""
    from node.devmesh import LocalMesh

    def say(text: str) -> None:
        if not as_json:
            click.echo(text, err=True)

    with tempfile.TemporaryDirectory(prefix="amparo-demo-") as tmp, LocalMesh(Path(tmp), nodes) as mesh:
        edges = mesh.line_edges() if nodes <= 3 else mesh.mesh_edges()
        depth = mesh.trust_everyone(edges)
        say(f"Creating {nodes} nodes in {tmp} (trust depth {depth}) …")
        mesh.init_all()
        say("Starting them as separate `amparo run` processes …")
        mesh.start_all()
        say(f"Pairing {len(edges)} links (invite token + mutual vouches) …")
        for a, b in edges:
            mesh.connect([(a, b)])
            say(f"  {mesh.nodes[a].name} ⇄ {mesh.nodes[b].name}")
        author = mesh.nodes[0]
        sent = time.monotonic()
        alert_id = author.send(
            headline="Armed men outside the community radio in San Isidro",
            regions=["MX-OAX"],
            severity="severe",
            urgency="immediate",
            certainty="observed",
            event="threat",
            instruction="Call the municipal police and the state human-rights commission; ask for protection.",
        )
        say(f"\n{author.name} sent alert {alert_id[:16]}… — waiting for every node:")
        arrived = mesh.wait_for(alert_id, timeout=60)
        for name, seconds in sorted(arrived.items(), key=lambda kv: kv[1]):
            say(f"  {seconds * 1000:8.0f} ms  {name}")
        say(f"\nEvery node has the alert ({(time.monotonic() - sent) * 1000:.0f} ms end to end).")
        emit(
            {"alert": alert_id, "arrived_ms": {k: round(v * 1000) for k, v in arrived.items()}},
            as_json,
            f"Last node: {max(arrived.values()) * 1000:.0f} ms",
        )
        if keep:
            say("Nodes keep running; press Ctrl-C to stop them.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
