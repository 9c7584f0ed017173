"""Keep the atheris target (tests/fuzz/fuzz_decode.py) importable and working."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.protocol.envelopes import all_envelopes
from tests.protocol.test_decode_adversarial import BOMBS

TARGET = Path(__file__).resolve().parents[1] / "fuzz" / "fuzz_decode.py"


def _target() -> Callable[[bytes], None]:
    spec = importlib.util.spec_from_file_location("fuzz_decode", TARGET)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    test_one_input: Callable[[bytes], None] = module.TestOneInput
    return test_one_input


def _corpus() -> list[bytes]:
    envelopes = [e.raw for e in all_envelopes().values()]
    return [
        *envelopes,
        *(e[: len(e) // 2] for e in envelopes),
        *(b for _, b, _ in BOMBS),
        b"",
        b"\x80",
        b"\xc0",
    ]


def test_target_accepts_the_corpus() -> None:
    run = _target()
    for data in _corpus():
        run(data)


def test_target_reports_foreign_exceptions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The target must let anything but ProtocolError escape (so libFuzzer sees it)."""
    run = _target()
    module = run.__globals__

    def broken(data: bytes, **_: object) -> None:
        raise KeyError("bug")

    monkeypatch.setitem(module, "decode", broken)
    with pytest.raises(KeyError):
        run(b"\x80")


def test_pytest_does_not_collect_the_target() -> None:
    assert not TARGET.name.startswith("test_") and not TARGET.name.endswith("_test.py")


def test_seed_corpus_from_the_vectors(tmp_path: Path) -> None:
    run = _target()
    run.__globals__["seed"](tmp_path / "corpus")
    files = sorted((tmp_path / "corpus").iterdir())
    assert len(files) >= 15
    for path in files:
        run(path.read_bytes())
