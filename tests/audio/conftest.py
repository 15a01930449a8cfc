"""Real nodes on loopback for the audio tests, given sources and sinks of the test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from p2pspaces.core.identity import Identity
from p2pspaces.node import Node
from p2pspaces.node.config import Faults, NodeConfig

from ..net.conftest import LOOPBACK


@pytest.fixture
async def nodes() -> AsyncIterator[Callable[..., Any]]:
    """``await nodes(name, source=..., sink=..., faults=...)``: a started node, stopped after
    the test."""
    made: list[Node] = []

    async def make(name: str, faults: Faults | None = None, **kwargs: Any) -> Node:
        config = NodeConfig(name, LOOPBACK, faults=faults or Faults())
        node = Node(Identity.generate(), config, **kwargs)
        await node.start()
        made.append(node)
        return node

    yield make
    for node in made:
        await node.stop()
