"""``amparo init`` / ``amparo id``: the key file on disk (SPEC §5.2, §5.3, §8 Seizure).

Run twice: through click's CliRunner (fast, in-process) and as a real subprocess
(the installed ``amparo`` script), because file modes and stderr/exit codes are
only really proven by the real thing.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from protocol import codec, fingerprint

PASSPHRASE = "correct horse battery staple"


def _amparo_command() -> list[str]:
    script = Path(sys.executable).with_name("amparo")
    return [str(script)] if script.exists() else [sys.executable, "-m", "node.cli"]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def passphrase_file(tmp_path: Path) -> Path:
    path = tmp_path / "passphrase"
    path.write_text(PASSPHRASE + "\n")
    return path


def _check_home(home: Path) -> None:
    assert _mode(home) == 0o700
    key_file = home / "identity.key"
    assert _mode(key_file) == 0o600
    doc = codec.decode(key_file.read_bytes())
    assert isinstance(doc, dict) and doc["kdf"] == "argon2id"
    assert PASSPHRASE.encode() not in key_file.read_bytes()


def _check_id(data: dict[str, object], created: dict[str, object]) -> None:
    for key in ("name", "sign_key", "enc_key", "fingerprint"):
        assert data[key] == created[key]
    sign_key = data["sign_key"]
    assert isinstance(sign_key, str)
    assert data["fingerprint"] == fingerprint(bytes.fromhex(sign_key))


# ------------------------------------------------------------- in-process


def test_init_and_id_in_process(tmp_path: Path, passphrase_file: Path) -> None:
    from node.cli import cli

    home = tmp_path / "home"
    runner = CliRunner()
    env = {"AMPARO_PASSPHRASE_FILE": str(passphrase_file), "AMPARO_HOME": None}
    base = ["--home", str(home)]
    result = runner.invoke(
        cli, [*base, "init", "--name", "X", "--kdf-profile", "interactive", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.stdout)
    _check_home(home)
    shown = runner.invoke(cli, [*base, "id", "--json"], env=env)
    assert shown.exit_code == 0, shown.output
    _check_id(json.loads(shown.stdout), created)

    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    refused = runner.invoke(cli, [*base, "id"], env={**env, "AMPARO_PASSPHRASE_FILE": str(wrong)})
    assert refused.exit_code != 0
    assert "wrong passphrase" in refused.stderr
    assert refused.stdout == ""
    assert refused.exception is None or isinstance(refused.exception, SystemExit)  # no traceback


def test_no_passphrase_warns_loudly_in_process(tmp_path: Path) -> None:
    from node.cli import cli

    result = CliRunner().invoke(
        cli,
        ["--home", str(tmp_path / "h"), "init", "--name", "Demo", "--no-passphrase"],
        env={"AMPARO_HOME": None},
    )
    assert result.exit_code == 0, result.output
    assert "UNENCRYPTED" in result.stderr and "WARNING" in result.stderr
    assert "UNENCRYPTED" not in result.stdout
    doc = codec.decode((tmp_path / "h" / "identity.key").read_bytes())
    assert isinstance(doc, dict) and doc["kdf"] == "none"
    assert _mode(tmp_path / "h" / "identity.key") == 0o600


# ------------------------------------------------------------ subprocess


def _run(args: list[str], passphrase: Path | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPARO_")}
    if passphrase is not None:
        env["AMPARO_PASSPHRASE_FILE"] = str(passphrase)
    return subprocess.run(
        [*_amparo_command(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_init_and_id_as_a_real_process(tmp_path: Path, passphrase_file: Path) -> None:
    home = tmp_path / "node-home"
    init = _run(
        ["--home", str(home), "init", "--name", "X", "--kdf-profile", "interactive", "--json"],
        passphrase_file,
    )
    assert init.returncode == 0, init.stderr
    created = json.loads(init.stdout)
    _check_home(home)

    shown = _run(["--home", str(home), "id", "--json"], passphrase_file)
    assert shown.returncode == 0, shown.stderr
    _check_id(json.loads(shown.stdout), created)

    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    refused = _run(["--home", str(home), "id", "--json"], wrong)
    assert refused.returncode != 0
    assert "wrong passphrase" in refused.stderr
    assert "Traceback" not in refused.stderr + refused.stdout
    assert refused.stdout == ""


@pytest.mark.slow
def test_no_passphrase_warns_loudly_as_a_real_process(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    result = _run(["--home", str(home), "init", "--name", "Demo", "--no-passphrase"], None)
    assert result.returncode == 0, result.stderr
    assert "WARNING" in result.stderr and "UNENCRYPTED" in result.stderr
    assert _mode(home) == 0o700 and _mode(home / "identity.key") == 0o600
    shown = _run(["--home", str(home), "id", "--json"], None)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["name"] == "Demo"
