"""The next-key file (``amparo keys export-next``, node/prerotation.py): it opens only
with its recovery passphrase, says clearly what is wrong otherwise, and keeps the
peer list sealed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.config import ConfigError
from node.prerotation import commitment, export_document, make_next, new_identity, open_next, read_export
from protocol.signing import next_key_commitment

PEERS = [
    {
        "key": "ab" * 32,
        "name": "Brigada Ejemplo",
        "enc": "cd" * 32,
        "addresses": ["10.0.0.2:7170"],
        "tls": "ef" * 32,
    }
]
PASSPHRASE = b"una frase larga de prueba"


def write(tmp_path: Path) -> tuple[Path, bytes]:
    current, nxt = new_identity(), new_identity()
    doc = export_document("Colectivo Ejemplo", current.sign_public, nxt, PASSPHRASE, PEERS, "interactive")
    path = tmp_path / "next.json"
    path.write_text(json.dumps(doc))
    return path, nxt.sign_public


def test_the_file_opens_with_its_passphrase_and_holds_key_and_peers(tmp_path: Path) -> None:
    path, next_public = write(tmp_path)
    opened = read_export(path, PASSPHRASE)
    assert opened.next_identity.sign_public == next_public and opened.peers == PEERS
    text = path.read_text()
    assert "Brigada Ejemplo" not in text and "10.0.0.2" not in text  # the peer list is sealed


@pytest.mark.parametrize(
    ("damage", "says"),
    [
        (lambda doc: doc, "wrong recovery passphrase"),  # read with another passphrase below
        (lambda doc: doc | {"format": "other/1"}, "not a next-key file"),
        (lambda doc: {k: v for k, v in doc.items() if k != "succeeds"}, "damaged"),
        (lambda doc: doc | {"commitment": "00" * 32}, "does not match the commitment"),
        (lambda doc: doc | {"peers": doc["key"]}, "peer list is damaged"),
    ],
)
def test_a_bad_file_or_passphrase_is_refused_with_a_reason(tmp_path: Path, damage: object, says: str) -> None:
    path, _ = write(tmp_path)
    doc = json.loads(path.read_text())
    path.write_text(json.dumps(damage(doc)))  # type: ignore[operator]
    passphrase = b"otra frase cualquiera" if says == "wrong recovery passphrase" else PASSPHRASE
    with pytest.raises(ConfigError, match=says):
        read_export(path, passphrase)


def test_not_json_at_all(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8\xff\xe0 not json")
    with pytest.raises(ConfigError, match="not a next-key file"):
        read_export(path, PASSPHRASE)


def test_the_home_keeps_the_next_key_and_its_public_commitment(tmp_path: Path) -> None:
    made = make_next(tmp_path, None, "interactive")
    kept = open_next(tmp_path, None)
    assert kept is not None and next_key_commitment(kept.sign_public) == made == commitment(tmp_path)
