"""The house's layers hold (STYLE principles 1 and 15): the import-linter
contracts in pyproject.toml pass (as `lint-imports` does in scripts/test), every
module of node/ sits in one of their layers (a new module cannot slip past
them), and no two modules of node/ import each other, even inside a function."""

from __future__ import annotations

import tomllib
from pathlib import Path

import grimp
from importlinter.cli import lint_imports

ROOT = Path(__file__).parents[2]


def _layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    node = next(c for c in contracts if c["layers"][0].startswith("node."))
    return [m.strip() for layer in node["layers"] for part in layer.split("|") for m in part.split(":")]


def test_the_layer_contracts_are_kept() -> None:
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def test_every_node_module_has_a_layer() -> None:
    layers = _layers()
    graph = grimp.build_graph("node", cache_dir=None)
    loose = [
        m
        for m in sorted(graph.modules)
        if m != "node"
        and not any(m == layer or m.startswith(layer + ".") for layer in layers)
        and not any(layer.startswith(m + ".") for layer in layers)  # a package whose parts have layers
    ]
    assert not loose, f"give these modules a layer in pyproject.toml [tool.importlinter]: {loose}"


def test_no_import_cycle_in_node() -> None:
    graph = grimp.build_graph("node", cache_dir=None)
    cycles = [c for c in _strongly_connected(graph) if len(c) > 1]
    assert not cycles, cycles


def _strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm over the modules of node/ and their direct imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while (top := stack.pop()) != module:
                component.append(top)
            found.append([module, *component])

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found
