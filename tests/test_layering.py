"""The arrows between layers point one way, and the core stays pure (STYLE.md).

* ``core`` imports nothing outside ``core``, no I/O, event loop, clock or randomness module, and
  no such name either (``from os import urandom`` is caught as surely as ``import time``);
* ``net`` never imports ``audio``, ``node``, ``app`` or ``web``; ``audio`` never imports ``net``,
  ``node``, ``app`` or ``web``; ``node`` never imports ``app`` or ``web``;
* no import cycles anywhere in the package, imports made only for type checking included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "p2pspaces"
FORBIDDEN_IN_CORE = {
    "asyncio",
    "socket",
    "zeroconf",
    "aiortc",
    "aioice",
    "time",
    "datetime",
    "selectors",
    "threading",
    "random",
    "secrets",
    "os",
    "subprocess",
    "pathlib",
    "shutil",
    "tempfile",
    "sounddevice",
}
FORBIDDEN_NAMES = {
    "time",
    "monotonic",
    "perf_counter",
    "now",
    "utcnow",
    "sleep",
    "urandom",
    "token_bytes",
    "getrandom",
    "randint",
    "random",
    "uniform",
    "open",
}
MAY_NOT_IMPORT = {
    "core": {"net", "audio", "node", "app", "web"},
    "net": {"audio", "node", "app", "web"},
    "audio": {"net", "node", "app", "web"},
    "node": {"app", "web"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(source: str, name: str, known: set[str]) -> set[str]:
    """Every p2pspaces module ``source`` imports (type-checking imports included)."""
    found: set[str] = set()
    package = name if name in known and _is_package(name) else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return {m for m in found if m in known and m != name}


def _is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists()


def layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in MAY_NOT_IMPORT | {"app": set()} else None


def purity_problems(source: str) -> list[str]:
    """What makes a core module impure: I/O, clock or randomness, imported or called."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            problems += [
                f"imports {a.name}" for a in node.names if a.name.split(".")[0] in FORBIDDEN_IN_CORE
            ]
        elif isinstance(node, ast.ImportFrom):
            module = (node.module or "").split(".")[0]
            if module in FORBIDDEN_IN_CORE:
                problems.append(f"imports from {node.module}")
            problems += [
                f"imports {a.name} from {node.module}"
                for a in node.names
                if a.name in FORBIDDEN_NAMES and module != "p2pspaces"
            ]
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in FORBIDDEN_NAMES:
                problems.append(f"calls {called}()")
    return problems


MODULES = _modules()
KNOWN = set(MODULES)
GRAPH = {name: imports_of(path.read_text(), name, KNOWN) for name, path in MODULES.items()}


@pytest.mark.parametrize("name", sorted(n for n in MODULES if layer(n) == "core"))
def test_core_modules_are_pure(name: str) -> None:
    assert purity_problems(MODULES[name].read_text()) == []


@pytest.mark.parametrize("name", sorted(n for n in MODULES if layer(n) in MAY_NOT_IMPORT))
def test_layers_import_only_downwards(name: str) -> None:
    banned = MAY_NOT_IMPORT[layer(name)]  # type: ignore[index]
    wrong = sorted(m for m in GRAPH[name] if layer(m) in banned)
    assert wrong == [], f"{name} imports {wrong}"
    if layer(name) == "core":
        assert all(layer(m) == "core" for m in GRAPH[name] if m != "p2pspaces")


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph``, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_cycles_anywhere() -> None:
    # A package's __init__ re-exporting its modules is not a cycle of ours: leave it out.
    edges = {n: {m for m in deps if not n.startswith(m + ".")} for n, deps in GRAPH.items()}
    assert find_cycle(edges) is None


def test_the_checks_catch_what_they_are_for() -> None:
    assert purity_problems("from os import urandom") != []
    assert purity_problems("import time") != []
    assert purity_problems("x = clock.monotonic()") != []
    assert purity_problems("with open('f') as f: pass") != []
    assert purity_problems("from p2pspaces.core import wire") == []
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    fake = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from p2pspaces.node import Node\n"
    )
    assert "p2pspaces.node" in imports_of(fake, "p2pspaces.net.mesh", KNOWN)
    assert layer("p2pspaces.core.session") == "core"
    assert {"p2pspaces.core.session", "p2pspaces.node.node", "p2pspaces.app.cli"} <= KNOWN
