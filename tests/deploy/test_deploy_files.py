"""The deployment files are checked as far as this machine allows: systemd's own
verifier and security analyzer on the unit, the command the unit, the image and the
guides run is one and the same, the compose file is a hardened 3-node mesh, and
that command really runs a node (passphrase from a credential file, healthy,
clean exit on SIGTERM). Docker has no daemon or registry here, so the image itself
is not built."""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
import yaml

from node.devmesh import free_port

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy/systemd/amparo.service"
DOCKERFILE = ROOT / "deploy/container/Dockerfile"
COMPOSE = ROOT / "deploy/container/compose.yaml"
AMPARO = Path(sys.executable).with_name("amparo")


def unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser


def exec_start() -> list[str]:
    return shlex.split(unit()["Service"]["ExecStart"])


def local_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's amparo (verify checks it exists)."""
    text = UNIT.read_text().replace("/opt/amparo/venv/bin/amparo", str(AMPARO))
    path = tmp_path / "amparo.service"
    path.write_text(text)
    return path


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_verifies_the_unit_without_warnings(tmp_path: Path) -> None:
    done = subprocess.run(
        ["systemd-analyze", "verify", str(local_unit(tmp_path))], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_rates_the_sandbox_ok(tmp_path: Path) -> None:
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(local_unit(tmp_path))],
        capture_output=True,
        text=True,
    )
    score = re.search(r"Overall exposure level for amparo\.service: ([\d.]+)", done.stdout)
    assert score is not None, done.stdout[-500:] + done.stderr
    assert float(score.group(1)) <= 2.0


def test_unit_hardening_directives() -> None:
    service = unit()["Service"]
    expected = {
        "User": "amparo",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "PrivateDevices": "yes",
        "CapabilityBoundingSet": "",
        "UMask": "0077",
        "ReadWritePaths": "/var/lib/amparo",
        "LoadCredential": "passphrase:/etc/amparo/passphrase",
        "Environment": "PYTHONUNBUFFERED=1",
        "KillSignal": "SIGTERM",
        "LimitNOFILE": "65536",
    }
    for key, value in expected.items():
        assert service.get(key) == value, key
    assert (
        "@system-service" in UNIT.read_text() and "AMPARO_PASSPHRASE_FILE=%d/passphrase" in UNIT.read_text()
    )


def test_one_command_everywhere() -> None:
    assert exec_start() == ["/opt/amparo/venv/bin/amparo", "--home", "/var/lib/amparo", "run"]
    assert (
        "/opt/amparo/venv/bin/amparo --home /var/lib/amparo run"
        in (ROOT / "docs/deploy-systemd.md").read_text()
    )
    docker = DOCKERFILE.read_text()
    entry = json.loads(re.search(r"^ENTRYPOINT (.+)$", docker, re.M).group(1))  # type: ignore[union-attr]
    cmd = json.loads(re.search(r"^CMD (.+)$", docker, re.M).group(1))  # type: ignore[union-attr]
    assert entry + cmd == ["amparo", "--home", "/data", "run"]
    assert "amparo --home /data run" in (ROOT / "docs/deploy-container.md").read_text()
    users = re.findall(r"^USER (\S+)$", docker, re.M)
    assert users and users[-1] not in ("root", "0")


def test_compose_is_a_hardened_three_node_mesh() -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc["services"]
    assert len(services) == 3
    volumes = set()
    for name, svc in services.items():
        assert svc["read_only"] is True and "/tmp" in svc["tmpfs"], name
        assert svc["cap_drop"] == ["ALL"] and "no-new-privileges:true" in svc["security_opt"], name
        assert svc["environment"]["AMPARO_PASSPHRASE_FILE"].startswith("/run/secrets/"), name
        assert svc["ulimits"]["nofile"]["soft"] >= 4096, name  # room beyond the mesh listener's 512
        (volume,) = svc["volumes"]
        assert volume.endswith(":/data")
        volumes.add(volume.split(":")[0])
    assert volumes == set(doc["volumes"]) and len(volumes) == 3


def test_the_deployed_command_runs_a_node_and_stops_cleanly(tmp_path: Path) -> None:
    home, credential = tmp_path / "var-lib-amparo", tmp_path / "credentials" / "passphrase"
    credential.parent.mkdir()
    credential.write_text("una frase de paso para el servicio\n")
    env = {**os.environ, "AMPARO_PASSPHRASE_FILE": str(credential)}
    port = free_port()
    subprocess.run(
        [
            str(AMPARO),
            "--home",
            str(home),
            "init",
            "--name",
            "Colectivo Ejemplo",
            "--kdf-profile",
            "interactive",
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--local",
            f"127.0.0.1:{port}",
        ],
        check=True,
        env=env,
        capture_output=True,
    )
    command = exec_start()
    command[0] = str(AMPARO)
    command[command.index("/var/lib/amparo")] = str(home)
    node = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        config = tomllib.loads((home / "config.toml").read_text())
        deadline = time.monotonic() + 30
        while True:  # the image's HEALTHCHECK does exactly this request
            try:
                with urllib.request.urlopen(f"http://{config['local']}/healthz", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline and node.poll() is None, "the node did not come up"
                time.sleep(0.2)
        node.send_signal(signal.SIGTERM)
        assert node.wait(20) == 0
    finally:
        if node.poll() is None:
            node.kill()
    output = node.stdout.read().decode() if node.stdout else ""
    assert "una frase de paso" not in output and not (home / "amparo.pid").exists()
