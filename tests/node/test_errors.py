"""One error model: every refusal has a stable code from node.errors.CODES,
and the operator guide lists every code (docs/operators.md)."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import node
from node.errors import CODES, Refused

GUIDE = Path(__file__).parents[2] / "docs" / "operators.md"


def _subclasses(cls: type[Refused]) -> list[type[Refused]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_every_refusal_class_has_a_documented_code() -> None:
    for info in pkgutil.walk_packages(node.__path__, "node."):
        if ".migrations" not in info.name and not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    classes = _subclasses(Refused)
    assert len(classes) >= 8  # alerts, desks, check-ins, subscriptions, pairing, drills, incidents
    unknown = {c.__qualname__: c.code for c in classes if c.code not in CODES}
    assert not unknown, unknown


def test_the_operator_guide_lists_every_code() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    assert not [code for code in CODES if f"| `{code}` |" not in guide]
