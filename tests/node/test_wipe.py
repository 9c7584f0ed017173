"""Panic wipe: nothing of the home remains, the bytes that were there are
overwritten (a known plaintext is gone from the very inodes), and a copy of the
sealed key taken before cannot be opened without the passphrase."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from node.config import DB_FILE, KEY_FILE
from node.store import Store
from protocol import ProtocolError
from protocol.keys import open_key_file
from tests.node.test_backup import amparo

PLAINTEXT = "Casa segura en la calle Ficticia 12"


def test_wipe_erases_keys_then_data_then_the_home(tmp_path: Path) -> None:
    home = tmp_path / "nodo"
    secret = tmp_path / "pass"
    secret.write_bytes(b"frase de paso del nodo\n")
    env = {"AMPARO_PASSPHRASE_FILE": str(secret)}
    made = amparo(home, "init", "--name", "Nodo Ficticio", "--kdf-profile", "interactive", env=env)
    assert made.returncode == 0, made.stderr
    with Store(f"sqlite:///{home / DB_FILE}") as store:
        store.set_meta("probe", PLAINTEXT)
    (home / (DB_FILE + "-wal")).write_bytes(PLAINTEXT.encode() * 3)  # as a crash would leave a WAL
    inodes = tmp_path / "inodes"  # hard links: the same blocks, reachable after the unlink
    inodes.mkdir()
    for name in (KEY_FILE, DB_FILE, DB_FILE + "-wal"):
        os.link(home / name, inodes / name)
    key_copy = (home / KEY_FILE).read_bytes()
    before = {name: (inodes / name).read_bytes() for name in os.listdir(inodes)}
    assert PLAINTEXT.encode() in before[DB_FILE]

    wiped = amparo(home, "wipe", "--yes", "--json")
    assert wiped.returncode == 0, wiped.stderr
    report = json.loads(wiped.stdout)
    assert report["erased"][0] == KEY_FILE  # keys first
    assert not home.exists()
    for name, old in before.items():
        now = (inodes / name).read_bytes()
        assert len(now) == len(old) and now != old, f"{name} was not overwritten"
        assert PLAINTEXT.encode() not in now
    with pytest.raises(ProtocolError):
        open_key_file(key_copy, None)
    with pytest.raises(ProtocolError):
        open_key_file(key_copy, b"adivinanza")
    assert open_key_file(key_copy, b"frase de paso del nodo").sign_public  # the copy is the real key
    shutil.rmtree(inodes)


@pytest.mark.slow
def test_wipe_asks_for_the_name(tmp_path: Path) -> None:
    home = tmp_path / "nodo"
    assert (
        amparo(
            home, "init", "--name", "Nodo Ficticio", "--no-passphrase", "--kdf-profile", "interactive"
        ).returncode
        == 0
    )
    import subprocess
    import sys

    no = subprocess.run(
        [sys.executable, "-m", "node.cli", "--home", str(home), "wipe"],
        input="otro nombre\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert no.returncode != 0 and "not confirmed" in no.stderr and home.exists()
    missing = amparo(tmp_path / "nada", "wipe", "--yes")
    assert missing.returncode != 0 and "no such node home" in missing.stderr
