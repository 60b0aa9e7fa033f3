"""The import rules of docs/architecture.md: data flows one way, with no import cycle (imports
inside functions included), no private name imported from another module, and plotly only in
``analysis/plots.py`` within ``analysis``."""
from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "data": {"training", "analysis", "dashboard", "streamlit", "torch", "torchvision", "timm"},
    "analysis": {"streamlit", "torch", "torchvision", "timm", "dashboard", "training"},
    "training": {"streamlit", "dashboard", "analysis"},
}
PACKAGES = ("data", "training", "analysis", "dashboard")
#: The one module of ``analysis`` that may import plotly (figures are built there only).
PLOTLY_MODULE = "analysis/plots.py"


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


def test_analysis_uses_plotly_only_in_its_figure_module():
    users = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "analysis").rglob("*.py")
                   if "plotly" in _imports(path))
    assert users == [PLOTLY_MODULE], f"plotly imported in analysis outside {PLOTLY_MODULE}"


# --- the module import graph ------------------------------------------------------------------

def _modules(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``packages`` under ``root``."""
    mods = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


def _owner(name: str, mods: dict[str, Path]) -> str | None:
    """The project module that defines ``name`` (its longest dotted prefix that is a module)."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def import_graph(root: Path, packages: Iterable[str] = PACKAGES
                 ) -> tuple[dict[str, set[str]], list[str]]:
    """``(edges, private)``: module -> project modules it imports (anywhere in the file,
    inside functions too), and ``"a imports b._x"`` for each private name imported across
    modules."""
    mods = _modules(root, packages)
    edges: dict[str, set[str]] = {m: set() for m in mods}
    private = []
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [_owner(a.name, mods) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets = []
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    target = _owner(full, mods) or _owner(base, mods)
                    targets.append(target)
                    is_submodule = full in mods
                    if (target and target != mod and alias.name.startswith("_")
                            and not alias.name.startswith("__") and not is_submodule):
                        private.append(f"{mod} imports {full}")
            else:
                continue
            edges[mod].update(t for t in targets if t and t != mod)
    return edges, private


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Import cycles: the strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 10_000))
    try:
        for v in sorted(edges):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(old)
    return sorted(found)


def test_no_import_cycles():
    edges, _ = import_graph(ROOT)
    found = cycles(edges)
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_private_names_imported_across_modules():
    _, private = import_graph(ROOT)
    assert not private, f"private names imported across modules: {private}"


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_graph_check_finds_a_cycle_hidden_in_a_function(tmp_path):
    root = _tree(tmp_path, {
        "analysis/__init__.py": "",
        "analysis/a.py": "from analysis.b import g\n",
        "analysis/b.py": "def g():\n    from analysis import a\n    return a\n",
        "analysis/c.py": "from . import a\n",  # relative, one way only: no cycle
    })
    edges, private = import_graph(root, ["analysis"])
    assert edges["analysis.c"] == {"analysis.a"}
    assert cycles(edges) == [["analysis.a", "analysis.b"]]
    assert private == []


def test_graph_check_finds_private_imports(tmp_path):
    root = _tree(tmp_path, {
        "data/__init__.py": "",
        "data/files.py": "def _write(): ...\n",
        "data/_helpers.py": "",
        "analysis/__init__.py": "",
        "analysis/io.py": "from data.files import _write\nfrom data import _helpers\n"
                          "from .sub import __version__\n",
        "analysis/sub.py": "__version__ = '1'\n",
    })
    edges, private = import_graph(root, ["data", "analysis"])
    assert private == ["analysis.io imports data.files._write"]  # a _module is no private name
    assert edges["analysis.io"] == {"data.files", "data._helpers", "analysis.sub"}
    assert cycles(edges) == []
