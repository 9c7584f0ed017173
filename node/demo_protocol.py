"""A first look at Amparo without a network: init a node in a temporary home, show its
identity, and round-trip a signed alert and a sealed (restricted) one."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import nacl.utils
from click.testing import CliRunner

import protocol
from node.cli import cli
from protocol import Alert, Area, Identity


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="amparo-demo-") as tmp:
        home = Path(tmp) / "node"
        runner = CliRunner()
        for args in (["init", "--name", "Colectivo Ejemplo", "--no-passphrase"], ["id"]):
            print(f"$ amparo --home {home} {' '.join(args)}")
            result = runner.invoke(cli, ["--home", str(home), *args])
            print(result.output)
            if result.exit_code != 0:
                raise SystemExit(result.exit_code)
    author, ally, stranger = (Identity.from_random(nacl.utils.random(64)) for _ in range(3))
    now = int(time.time() * 1000)
    alert = Alert(
        headline="Community radio raided in San Isidro",
        areas=(Area("MX-OAX", "San Isidro"),),
        severity="severe",
        urgency="immediate",
        certainty="observed",
        event="raid",
        instruction="Call the state prosecutor's office and ask for the detainees' whereabouts.",
    )
    plain = protocol.sign_envelope(author, alert, created=now, expires=now + 6 * 3600_000)
    back = protocol.decode(protocol.encode(plain), now=now)
    print(
        f"signed alert: {len(plain.raw)} bytes, id {plain.id.hex()[:16]}…,"
        f" round trip ok: {back.body == alert}"
    )
    secret = Alert(
        headline="Safe house moved",
        areas=(Area("CO-ANT"),),
        severity="extreme",
        scope="restricted",
    )
    sealed = protocol.seal_envelope(
        author,
        secret,
        created=now,
        expires=now + 3600_000,
        recipients=[ally.enc_public],
        random=nacl.utils.random,
    )
    received = protocol.decode(sealed.raw, now=now)
    opened = protocol.unseal(received, ally)
    assert isinstance(opened, Alert)
    print(f"sealed alert: recipient reads {opened.headline!r}")
    try:
        protocol.unseal(received, stranger)
    except protocol.ProtocolError as exc:
        print(f"sealed alert: a non-recipient is refused ({exc.code})")


if __name__ == "__main__":
    main()
