"""The package layering, checked from the source: no import cycle between
the packages of ``responsa`` (each layer only imports the ones below it),
and the tool types never reach into the engine.

Every ``import``/``from ... import`` in ``src/responsa`` counts, including
the ones inside functions (a lazy import is still a dependency); only
imports under ``if TYPE_CHECKING:`` (annotations) are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "responsa"

FORBIDDEN = {
    "protocol": {"api", "engine", "tools", "store", "fanout", "providers", "client", "config"},
    "providers": {"api", "engine", "tools", "store", "fanout"},
    "tools": {"api", "engine", "store", "fanout"},
    "store": {"api", "engine", "tools", "providers", "fanout"},
    "fanout": {"api", "engine", "tools", "store", "providers"},
    "engine": {"api"},
    "embeddings": {"api", "engine", "tools", "store", "fanout"},
    "vectorstores": {"api", "engine", "tools", "providers", "fanout"},
    "files": {"api", "engine", "tools", "providers", "fanout"},
}
"""Layer -> packages it must not import (the layering in DESIGN.md)."""


def _package(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.suffix == ".py" else ""


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    skip = _type_checking_lines(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "responsa" and len(parts) > 1:
                found.add(parts[1])
    return found


def _is_package(name: str) -> bool:
    return (SRC / name).is_dir() or (SRC / f"{name}.py").exists()


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        pkg = _package(path)
        if pkg in ("", "__init__"):
            continue
        graph.setdefault(pkg, set()).update(p for p in _imports(path) if p != pkg and _is_package(p))
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if state.get(nxt) is None and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_between_packages() -> None:
    graph = package_graph()
    assert {"api", "engine", "tools", "protocol", "providers", "store"} <= set(graph)
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_layers_import_only_what_is_below_them() -> None:
    graph = package_graph()
    broken = {pkg: sorted(graph.get(pkg, set()) & banned) for pkg, banned in FORBIDDEN.items()}
    assert not {k: v for k, v in broken.items() if v}


def test_the_checker_sees_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
