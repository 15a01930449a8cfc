"""The core stays pure: no I/O library, no event loop, no clock (STYLE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).parent.parent / "p2pspaces" / "core"
FORBIDDEN_MODULES = {
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
}
FORBIDDEN_CALLS = {
    "time",
    "monotonic",
    "perf_counter",
    "now",
    "utcnow",
    "sleep",
    "urandom",
    "token_bytes",
}


def _modules() -> list[Path]:
    return sorted(CORE.glob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_core_module_imports_no_io_or_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN_MODULES, f"{path.name} imports {name}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.name)
def test_core_module_reads_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert node.func.attr not in FORBIDDEN_CALLS, f"{path.name} calls .{node.func.attr}()"


def test_the_checker_sees_the_core() -> None:
    assert {p.name for p in _modules()} >= {
        "identity.py",
        "wire.py",
        "room.py",
        "rules.py",
        "succession.py",
    }
