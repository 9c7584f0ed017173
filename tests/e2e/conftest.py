"""Real node processes on loopback (see node/devmesh.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from node.devmesh import LocalMesh


@pytest.fixture
def mesh_factory(tmp_path: Path) -> Iterator[object]:
    meshes: list[LocalMesh] = []

    def make(count: int) -> LocalMesh:
        mesh = LocalMesh(tmp_path / f"mesh{len(meshes)}", count)
        meshes.append(mesh)
        mesh.init_all()
        mesh.start_all()
        return mesh

    yield make
    for mesh in meshes:
        mesh.stop_all()
