"""Encrypted backups: round trip, wrong passphrase, damaged files, hostile
archives, restore only into an empty home, fresh salt and nonce every time, and a
copy of the database before a schema migration."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
from contextlib import closing
from pathlib import Path

import pytest
from alembic import command

from node import backup
from node.config import DB_FILE, KEY_FILE, load
from node.store import Store, head_revision
from node.store.engine import alembic_config, open_engine, writer

PASS = b"una frase de paso larga"


def amparo(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli", "--home", str(home), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "colectivo"
    done = amparo(h, "init", "--name", "Colectivo Ejemplo", "--no-passphrase", "--kdf-profile", "interactive")
    assert done.returncode == 0, done.stderr
    with Store(f"sqlite:///{h / DB_FILE}") as store:
        store.set_meta("probe", "Casa segura en la calle Ficticia 12")
    return h


def seal(home: Path) -> bytes:
    data, _ = backup.archive(home, load(home), created=1, fingerprint="")
    return backup.seal(data, PASS, "interactive")


def test_round_trip_restores_every_file_and_the_database(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "restored"
    manifest = backup.restore(seal(home), PASS, target)
    assert manifest["node"] == "Colectivo Ejemplo" and manifest["database"] is True
    for name in ("config.toml", KEY_FILE, "tls.crt", "tls.key", "api.token"):
        assert (target / name).read_bytes() == (home / name).read_bytes()
        assert (target / name).stat().st_mode & 0o777 == 0o600
    assert target.stat().st_mode & 0o777 == 0o700
    with Store(f"sqlite:///{target / DB_FILE}") as store:
        assert store.get_meta("probe") == "Casa segura en la calle Ficticia 12"


def test_the_backup_file_reveals_nothing(home: Path) -> None:
    blob = seal(home)
    assert b"Casa segura" not in blob and b"Colectivo" not in blob
    assert (home / KEY_FILE).read_bytes()[:16] not in blob


def test_every_backup_has_its_own_salt_and_nonce(home: Path) -> None:
    one, two = seal(home), seal(home)
    header = backup.HEADER.size
    assert one[header - 16 : header] != two[header - 16 : header]  # salt
    assert one[header : header + 24] != two[header : header + 24]  # nonce


def test_wrong_passphrase_and_damage_are_clear_errors(home: Path, tmp_path: Path) -> None:
    blob = seal(home)
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 1
    cases = {
        "wrong passphrase": (blob, b"otra frase cualquiera"),
        "truncated": (blob[: len(blob) // 2], PASS),
        "bit flipped": (bytes(flipped), PASS),
        "not a backup": (b"x" * 200, PASS),
        "tiny": (b"AMPBAK01", PASS),
    }
    for label, (data, passphrase) in cases.items():
        target = tmp_path / label.replace(" ", "-")
        with pytest.raises(backup.BackupError):
            backup.restore(data, passphrase, target)
        assert not target.exists(), f"{label}: something was written"


def test_restore_refuses_a_home_that_is_not_empty(home: Path) -> None:
    with pytest.raises(backup.BackupError, match="not empty"):
        backup.restore(seal(home), PASS, home)


def test_hostile_archive_entries_are_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in (("MANIFEST.json", b"{}"), ("../../etc/evil", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    blob = backup.seal(buffer.getvalue(), PASS, "interactive")
    with pytest.raises(backup.BackupError, match="unexpected entry"):
        backup.restore(blob, PASS, tmp_path / "r")
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_cli_backup_and_restore(home: Path, tmp_path: Path) -> None:
    secret = tmp_path / "pass"
    secret.write_bytes(PASS + b"\n")
    out = tmp_path / "copia.amparo"
    made = amparo(home, "backup", str(out), "--passphrase-file", str(secret), "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["database"] is True and out.stat().st_mode & 0o777 == 0o600
    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"no es la frase\n")
    refused = amparo(tmp_path / "r1", "restore", str(out), "--passphrase-file", str(wrong))
    assert (
        refused.returncode != 0 and "wrong passphrase" in refused.stderr and "Traceback" not in refused.stderr
    )
    restored = amparo(tmp_path / "r2", "restore", str(out), "--passphrase-file", str(secret))
    assert restored.returncode == 0, restored.stderr
    assert amparo(tmp_path / "r2", "id", "--json").stdout == amparo(home, "id", "--json").stdout.replace(
        str(home), str(tmp_path / "r2")
    )


def test_a_database_behind_the_schema_is_copied_before_migrating(tmp_path: Path) -> None:
    home = tmp_path / "old"
    assert (
        amparo(
            home, "init", "--name", "Nodo Viejo", "--no-passphrase", "--kdf-profile", "interactive"
        ).returncode
        == 0
    )
    url = f"sqlite:///{home / DB_FILE}"
    config = alembic_config()
    with writer(open_engine(url)).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
    from node.runner import _backup_before_migrating

    _backup_before_migrating(home, load(home))
    copies = list((home / "backups").glob("pre-migrate-0002-*.sqlite3"))
    assert len(copies) == 1 and copies[0].stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(copies[0]) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() == ("0002",)
    with Store(url):
        pass  # migrates to head
    _backup_before_migrating(home, load(home))  # already at head: no second copy
    assert len(list((home / "backups").glob("pre-migrate-*"))) == 1
    assert head_revision() != "0002"


@pytest.mark.slow
def test_amparo_run_copies_an_old_database_before_migrating_it(tmp_path: Path) -> None:
    """The real start-up path: `amparo run` on a home whose SQLite database is at
    an older Alembic revision leaves a copy at that revision, then migrates."""
    from node.devmesh import LocalNode

    node = LocalNode("Nodo Viejo", tmp_path / "old")
    node.init()
    url = f"sqlite:///{node.home / DB_FILE}"
    config = alembic_config()
    with writer(open_engine(url)).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
    assert not (node.home / "backups").exists()
    node.start()
    try:
        assert node.api.get("/healthz")["ok"]
    finally:
        assert node.stop() == 0
    copies = list((node.home / "backups").glob("pre-migrate-0002-*.sqlite3"))
    assert len(copies) == 1, list((node.home / "backups").iterdir())
    with closing(sqlite3.connect(copies[0])) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() == ("0002",)
    with closing(sqlite3.connect(node.home / DB_FILE)) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() == (head_revision(),)
    assert "will be migrated" in (node.home / "node.log").read_text()
    node.start()  # at head now: no second copy
    node.stop()
    assert len(list((node.home / "backups").glob("pre-migrate-*"))) == 1
