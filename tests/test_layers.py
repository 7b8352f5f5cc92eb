"""The package layout is a stack of layers: every import, top-level or inside a function, goes down it, and no
module imports itself back through others (an import cycle). Read from the source with ``ast``, nothing imported.

The order is README's Layout section; a new import that runs back up fails here with the modules that make it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first. A unit is a subpackage (selection's three layers counted apart), a top-level module, or
# datasets.manifests: the dataset-agnostic video lists, which the score importers read TSN / mmaction lists with,
# below the table layer that the per-dataset modules (UCF101's joined scores) build on.
LAYERS = [
    {"_io", "errors", "_argtypes", "_parallel", "_progress"},
    {"models", "video", "datasets.manifests"},
    {"synthetic", "selection", "selection.data"},  # selection/__init__ is only the package's docstring
    {"datasets"},
    {"selection.method"},
    {"selection.evaluation"},
    {"pool"},
    {"extract", "localization"},
    {"sources", "analysis"},
    {"report"},
    {"workflows", "serve"},
    {"commands", "cli", "__main__", "condsel"},  # the root package: its public names are imported lazily
]
TOP = LAYERS[-1]

# Upward imports and cycles still waiting for a fix, each with what removes it; none at present. The test fails
# when one disappears, so that its entry is deleted with it.
WAITING_UPWARD: dict[tuple[str, str], str] = {}
WAITING_CYCLES: list[set[str]] = []


def _modules() -> dict[str, Path]:
    root = SRC / "condsel"
    return {".".join(f.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): f for f in root.rglob("*.py")}


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the condsel modules it imports (a name imported from a package counts as its submodule if one)."""
    edges = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                edges[name] |= {a.name for a in node.names if a.name.split(".")[0] == "condsel"}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                if base.split(".")[0] != "condsel":
                    continue
                for alias in node.names:
                    edges[name].add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return edges


def _unit(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts:
        return "condsel"
    if parts[0] == "selection" and len(parts) > 1:
        return f"selection.{parts[1]}"
    if parts[:2] == ["datasets", "manifests"]:
        return "datasets.manifests"
    return parts[0]


def _layer(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def _cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in list(edges):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer():
    units = {_unit(m) for m in _modules()}
    placed = set().union(*LAYERS)
    assert units <= placed, f"add these to LAYERS (and README's Layout): {sorted(units - placed)}"


def test_imports_only_go_down_the_layers():
    modules = _modules()
    upward = defaultdict(set)
    for source, targets in _imports(modules).items():
        for target in targets:
            a, b = _unit(source), _unit(target)
            if a == b or (a in TOP and b in TOP):
                continue
            if _layer(b) >= _layer(a):
                upward[(a, b)].add(f"{source} -> {target}")
    unexpected = {k: sorted(v) for k, v in upward.items() if k not in WAITING_UPWARD}
    assert not unexpected, f"imports that run up (or across) the layers: {unexpected}"
    gone = set(WAITING_UPWARD) - set(upward)
    assert not gone, f"fixed, so delete from WAITING_UPWARD: {sorted(gone)}"


def test_no_import_cycles():
    modules = _modules()
    edges = {m: {t for t in targets if t in modules} for m, targets in _imports(modules).items()}
    cycles = _cycles(edges)
    assert [c for c in cycles if c not in WAITING_CYCLES] == []
    assert [c for c in WAITING_CYCLES if c not in cycles] == [], "fixed, so delete from WAITING_CYCLES"


def test_the_checks_see_a_cycle_and_an_upward_import():
    """The helpers on a hand-made graph: a cycle is found, and the unit of an upward import is named."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert _layer(_unit("condsel.selection.data.importers.join")) < _layer(_unit("condsel.datasets.ucf101"))
    assert _layer(_unit("condsel.datasets.manifests")) < _layer(_unit("condsel.selection.data.table"))
