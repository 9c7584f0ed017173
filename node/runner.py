"""``amparo run``: the node in the foreground, until SIGTERM or SIGINT.

Starts the mesh listener (HTTPS, TLS 1.3) and the local listener (HTTP on
loopback), then lets ``NodeService`` carry out the mesh's actions. Shutdown is
orderly: stop accepting, cancel background tasks, close the store.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import resource
import signal
import sqlite3
import ssl
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from aiohttp import web

from node import backup, keystore, listener, local_api, mesh_api, prerotation, tls
from node.config import DB_FILE, KEY_FILE, Config, database_url, load, parse_hostport, write_private
from node.printable import printable
from node.service import NodeService
from node.store import Store, head_revision
from node.wipe import PID_FILE
from protocol import ProtocolError, keys, regions
from protocol.keys import Identity

log = logging.getLogger("amparo.run")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "t": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": printable(record.getMessage()),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """One record, one line: whatever a message quotes (a peer's name or error
    body) is escaped, so it cannot start a forged log line or move the cursor.
    Only a traceback, which the node itself writes, spans lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))


def setup_logging(config: Config, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if config.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


async def serve(home: Path, prompt: Callable[[], bytes] | None, ready: Callable[[NodeService], None]) -> None:
    config = load(home)
    identity, passphrase = keystore.unlock_with_passphrase(home, prompt)
    tls_password = _seal_tls_key(home, identity, sealed=passphrase is not None)
    _backup_before_migrating(home, config)
    store = Store(database_url(home, config))
    pid_file = home / PID_FILE
    pid_file.write_text(f"{os.getpid()}\n")
    service = NodeService(home, config, identity, store)
    _keep_the_commitment(home, service, passphrase, config.kdf_profile)
    _finish_rotation(home, service, passphrase)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runners: list[web.AppRunner] = []
    try:
        regions.load_catalogue()  # not on the first alert's path (``regions.load_catalogue``)
        await service.start()
        # What start-up made lives as long as the process (modules, the catalogue, the
        # schema, the trust graph): out of the collector's sight, so its full
        # collections under load walk only what serving makes (docs/performance.md).
        gc.freeze()
        mesh_host, mesh_port = parse_hostport(config.listen, "listen")
        local_host, local_port = parse_hostport(config.local, "local")
        descriptors = raise_descriptor_limit()
        runners.append(
            await _mesh_site(
                mesh_api.make_app(service),
                mesh_host,
                mesh_port,
                tls.server_context(home, tls_password),
                service.counters.reject,
                listener.ConnectionCount(total=listener.total_for(descriptors)),
            )
        )
        runners.append(await _site(local_api.make_app(service), local_host, local_port, None))
        log.info(
            "node %r up: mesh https://%s:%d, local http://%s:%d",
            config.name,
            mesh_host,
            mesh_port,
            local_host,
            local_port,
        )
        ready(service)
        await stop.wait()
        log.info("shutting down")
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        await service.stop()
        store.close()
        pid_file.unlink(missing_ok=True)


def _keep_the_commitment(home: Path, service: NodeService, passphrase: bytes | None, profile: str) -> None:
    """Every record must commit to the same next key (peers refuse a change). A home
    made before pre-rotation gets its next key now; a home that lost ``next.commit``
    (restored from an old backup) gets back the commitment its records made, since a
    new one would be refused: the key itself must then come from its exported file."""
    if prerotation.commitment(home) is not None:
        return
    published = service.trust.commitment(service.key)
    if published is None:
        prerotation.make_next(home, passphrase, profile)
        log.info("made this node's next key; keep it offline: amparo keys export-next FILE")
        return
    write_private(home / prerotation.NEXT_COMMIT_FILE, published.hex().encode("ascii"))
    log.warning(
        "the next key this node committed to is not in the home; a rotation needs its exported file "
        "(amparo keys rotate --next-key FILE)"
    )


def _finish_rotation(home: Path, service: NodeService, passphrase: bytes | None) -> None:
    """A rotation cut short between the node's switch and the CLI's rename leaves
    the new key in ``identity.key.new`` and the retired one in place: finish it
    when the stored rotation record names that key as this key's successor."""
    pending = home / (KEY_FILE + ".new")
    if not pending.is_file():
        return
    try:
        new = keys.open_key_file(pending.read_bytes(), passphrase)
    except ProtocolError as exc:
        log.warning("%s cannot be opened (%s); left alone", pending, exc.message)
        return
    if new.sign_public == service.key or service.author_of(service.key) != new.sign_public:
        log.warning("%s is not the key this node handed over to; left alone", pending)
        return
    os.replace(pending, home / KEY_FILE)
    service.switch_identity(new)
    log.info("finished an interrupted key rotation: now signing as %s", new.sign_public.hex()[:16])


def _seal_tls_key(home: Path, identity: Identity, sealed: bool) -> bytes:
    """The TLS key's password; a plain key on a node with a passphrase (made by an
    older version) is sealed now, its plain file overwritten."""
    password = tls.pem_password(identity)
    if sealed and tls.seal_key(home, password):
        log.info("the TLS key is now sealed with this node's keys (it was a plain PEM)")
    return password


def _backup_before_migrating(home: Path, config: Config) -> None:
    """Alembic migrates on open; an SQLite database behind the newest schema is
    copied first (home/backups/), so an upgrade can always be undone by hand."""
    if config.database_url or not (home / DB_FILE).is_file():
        return
    try:
        with closing(sqlite3.connect(f"file:{home / DB_FILE}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return
    if row is None or row[0] == head_revision():
        return
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    copy = backup.before_migration(home, config, str(row[0]), stamp)
    log.info("database at schema %s will be migrated to %s; copy saved at %s", row[0], head_revision(), copy)


def raise_descriptor_limit() -> int:
    """Raise the soft limit on open files to the hard one, and return it: every
    connection holds a descriptor, and the default soft limit (1024) is what a
    flood of connections used to exhaust. The mesh listener's own caps
    (``node.listener``) keep it to at most half of whatever limit there is."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        if hard != resource.RLIM_INFINITY and soft != resource.RLIM_INFINITY and soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            log.info("open-file limit raised from %d to %d", soft, hard)
            soft = hard
    except (OSError, ValueError) as exc:
        log.warning("could not raise the open-file limit from %d: %s", soft, exc)
    if soft == resource.RLIM_INFINITY:
        return listener.TOTAL * 2
    if soft < 2 * listener.TOTAL:
        log.warning(
            "open-file limit is %d: the mesh listener will hold at most %d connections (raise LimitNOFILE)",
            soft,
            listener.total_for(soft),
        )
    return soft


async def _mesh_site(
    app: web.Application,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext,
    refused: Callable[[str], None],
    count: listener.ConnectionCount,
) -> web.AppRunner:
    """The mesh listener: aiohttp behind ``node.listener``'s connection caps and
    deadlines; ``RUNNER_OPTIONS`` turn off decompression and lingering reads and
    shorten the idle keep-alive."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0, **mesh_api.RUNNER_OPTIONS)
    await runner.setup()
    site = listener.GatedSite(runner, host, port, ssl_context, refused, count)
    await site.start()
    return runner


async def _site(app: web.Application, host: str, port: int, ssl_context: object) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context, backlog=128)  # type: ignore[arg-type]
    await site.start()
    return runner
