"""Coverage-guided fuzzing of the network gate with atheris (libFuzzer).

    pip install atheris
    python tests/fuzz/fuzz_decode.py -max_total_time=60            # fresh
    python tests/fuzz/fuzz_decode.py --seed corpus/                 # copy tests/vectors into corpus/
    python tests/fuzz/fuzz_decode.py corpus/ -max_total_time=600   # grow that corpus

Every input goes to ``protocol.decode`` (at a fixed ``now``, with and without the
clock check) and, when it decodes as a sealed envelope, to ``protocol.unseal``
with fixed identities: alice of tests/vectors, to whom the receipt vector is
sealed (so receipt bodies are reached), and a recipient of the threshold-release
envelopes of tests/protocol/envelopes.py (so sealed proposals, endorsements and
objections are opened, and released alerts have their endorsements checked by
``decode``). Only ``ProtocolError`` may escape: anything else is a
crash libFuzzer reports with the input that caused it. The file is named so
pytest does not collect it; tests/protocol/test_fuzz_target.py runs
``TestOneInput`` on a small corpus so the target cannot rot.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from pathlib import Path

from protocol import ProtocolError, decode, unseal
from protocol.keys import Identity

NOW = 1_767_225_600_000
READER = Identity(bytes([3]) * 32, bytes([4]) * 32)  # "BOB" of tests/protocol/envelopes.py
VECTOR_ALICE = Identity(  # tests/vectors/README.md: the receipt-sealed vector opens for her
    hashlib.sha256(b"amparo-vector/alice/sign").digest(), hashlib.sha256(b"amparo-vector/alice/enc").digest()
)
READERS = (READER, VECTOR_ALICE)


def TestOneInput(data: bytes) -> None:  # the name atheris expects
    for check_time in (True, False):
        try:
            envelope = decode(data, now=NOW, check_time=check_time)
        except ProtocolError:
            continue
        if envelope.sealed:
            for reader in READERS:
                with contextlib.suppress(ProtocolError):
                    unseal(envelope, reader)


def seed(corpus: Path) -> None:
    """Start a corpus from the known-answer vectors (valid and invalid envelopes), so
    the fuzzer begins past the signature check instead of at random bytes."""
    corpus.mkdir(parents=True, exist_ok=True)
    for path in sorted((Path(__file__).resolve().parents[1] / "vectors").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for i, case in enumerate(doc if isinstance(doc, list) else [doc]):
            (corpus / f"{path.stem}-{i}").write_bytes(bytes.fromhex(case["envelope_hex"]))


def main() -> None:
    if sys.argv[1:2] == ["--seed"]:
        seed(Path(sys.argv[2]))
        return
    import atheris  # type: ignore[import-not-found]

    atheris.instrument_all()
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
