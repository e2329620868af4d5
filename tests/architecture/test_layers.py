"""The package's shape: folders are layers, imports point down, no cycles, and adapters and
the CLI use the core's public API only (docs/architecture.md is the map).

The allowed direction is written once, in :data:`LAYERS`: a module may import modules of
its own layer or of any layer listed before it. Every ``import`` statement counts, also
ones inside functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "src" / "valori_store"

#: Layers, bottom first. A module belongs to the first entry whose prefix matches its
#: dotted name (relative to ``valori_store``; ``""`` is the package ``__init__``).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("errors", "records")),
    ("builtin", ("builtin",)),
    ("spec", ("spec",)),
    ("kernels", ("kernels",)),
    ("format", ("format",)),
    ("state", ("state",)),
    ("storage", ("storage",)),
    ("query", ("query",)),
    ("store", ("store",)),
    ("history", ("history",)),
    ("api", ("api", "", "embedder", "corpus", "filters", "receipts", "readonly", "sessions")),
    ("adapters", ("langchain", "langgraph", "llamaindex", "cli")),
]
#: Adapters are peers: none imports another (the CLI's demo may use the LangChain adapter).
PEER_EXCEPTIONS = {("cli", "langchain")}
CORE_LAYERS = {name for name, _ in LAYERS if name != "adapters"}


def module_name(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


MODULES = modules()


def layer_of(name: str) -> tuple[int, str]:
    """(rank, layer name) of a module (dotted, relative to valori_store)."""
    top = name.split(".")[0]
    for rank, (layer, prefixes) in enumerate(LAYERS):
        if top in prefixes or (name == "" and "" in prefixes):
            return rank, layer
    raise AssertionError(f"module valori_store.{name} is in no layer; add its folder to LAYERS")


def _resolve(node: ast.ImportFrom, current: str, is_pkg: bool) -> str:
    if node.level == 0:
        mod = node.module or ""
        return mod[len("valori_store"):].lstrip(".") if mod.startswith("valori_store") else "\x00" + mod
    base = current.split(".") if current else []
    if not is_pkg:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(name: str, path: Path | None = None) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every valori_store module imported by module ``name``
    (read from ``path``, by default the module's own file)."""
    path = path or MODULES[name]
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "valori_store" or alias.name.startswith("valori_store."):
                    yield alias.name[len("valori_store"):].lstrip("."), node.lineno
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, name, is_pkg)
            if target.startswith("\x00"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}" if target else alias.name
                yield (sub if sub in MODULES else target), node.lineno


def test_every_module_is_in_a_layer() -> None:
    for name in MODULES:
        layer_of(name)


def test_imports_point_down_only() -> None:
    problems = []
    for name in MODULES:
        rank, layer = layer_of(name)
        for target, line in imports(name):
            trank, tlayer = layer_of(target)
            if trank > rank:
                problems.append(f"valori_store.{name}:{line} ({layer}) imports valori_store.{target} ({tlayer})")
            elif layer == tlayer == "adapters":
                mine, theirs = name.split(".")[0], target.split(".")[0]
                if mine != theirs and (mine, theirs) not in PEER_EXCEPTIONS:
                    problems.append(f"valori_store.{name}:{line}: adapter {mine} imports adapter {theirs}")
    assert not problems, "upward or sideways imports:\n" + "\n".join(problems)


def test_no_import_cycles() -> None:
    graph = {name: {t for t, _ in imports(name) if t != name} for name in MODULES}
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(f"valori_store.{m}" for m in cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def _core_private_names() -> set[str]:
    """Private names the core defines: ``_x`` attributes set on ``self``, ``_x`` methods and
    module-level ``_x`` functions and constants of every core module."""
    names: set[str] = set()
    for name, path in MODULES.items():
        if layer_of(name)[1] not in CORE_LAYERS:
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if node.name.startswith("_") and not node.name.startswith("__"):
                    names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                if node.attr.startswith("_") and not node.attr.startswith("__"):
                    names.add(node.attr)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                if node.target.id.startswith("_") and not node.target.id.startswith("__"):
                    names.add(node.target.id)
            elif isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name) and t.id.startswith("_") and not t.id.startswith("__"):
                        names.add(t.id)
    return names


def test_adapters_and_cli_use_public_core_api_only() -> None:
    private = _core_private_names()
    problems = []
    for name, path in MODULES.items():
        if layer_of(name)[1] != "adapters":
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _resolve(node, name, path.name == "__init__.py")
                if target.startswith("\x00") or layer_of(target)[1] == "adapters":
                    continue
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        problems.append(f"valori_store.{name}:{node.lineno} imports private {alias.name} "
                                        f"from valori_store.{target}")
            elif isinstance(node, ast.Attribute) and node.attr in private:
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    continue
                problems.append(f"valori_store.{name}:{node.lineno} touches {ast.unparse(node)} "
                                f"(a private attribute of a core object)")
    assert not problems, "adapters/CLI reach into core internals:\n" + "\n".join(problems)


@pytest.mark.parametrize("source, expected", [
    ("import valori_store.store.facade\n", True),
    ("from valori_store.history import sessions\n", True),
    ("from valori_store.errors import InputError\n", False),
])
def test_the_walker_sees_upward_imports(tmp_path: Path, source: str, expected: bool) -> None:
    """The checks above can fail: a spec-layer module importing the store is caught."""
    probe = tmp_path / "_layer_probe.py"
    probe.write_text(source)
    upward = [t for t, _ in imports("spec._layer_probe", probe) if layer_of(t)[0] > layer_of("spec")[0]]
    assert bool(upward) == expected


def test_the_private_access_check_sees_a_reach_in() -> None:
    tree = ast.parse("def f(store):\n    return store._live.table\n")
    private = _core_private_names()
    assert "_live" in private
    hits = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in private]
    assert hits and ast.unparse(hits[0]) == "store._live"
