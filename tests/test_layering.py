"""The import rules of docs/architecture.md: data flows one way."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "data": {"training", "analysis", "dashboard", "streamlit", "torch", "torchvision", "timm"},
    "analysis": {"streamlit", "torch", "torchvision", "timm", "dashboard", "training"},
    "training": {"streamlit", "dashboard", "analysis"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_import_rules(package):
    bad = {}
    for path in (ROOT / package).rglob("*.py"):
        hit = _imports(path) & FORBIDDEN[package]
        if hit:
            bad[str(path.relative_to(ROOT))] = sorted(hit)
    assert not bad, f"forbidden imports: {bad}"
