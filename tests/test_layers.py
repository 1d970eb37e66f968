"""Imports only point down: each layer imports the ground floor and the layers below it, never one above."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BELOW: dict[str, set[str]] = {
    "core": set(),
    "schemas": set(),
    "mcp_clients": {"core", "schemas"},
    "tenancy": {"core", "schemas", "mcp_clients"},
    "providers": {"core", "schemas", "tenancy"},
    "tasks": {"core", "schemas", "tenancy", "providers", "mcp_clients"},
    "workers": {"core", "schemas", "tenancy", "providers", "mcp_clients", "tasks"},
    "ingress": {"core", "schemas", "tenancy", "providers", "mcp_clients", "tasks"},
}
OURS = {*BELOW, "tenantq"}


def imported_packages(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("layer", sorted(BELOW))
def test_a_layer_imports_only_the_ground_floor_and_the_layers_below_it(layer: str) -> None:
    climbing = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) - BELOW[layer] - {layer})
        for path in sorted((ROOT / layer).rglob("*.py"))
    }
    assert {name: up for name, up in climbing.items() if up} == {}
