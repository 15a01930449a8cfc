"""Real nodes on loopback for the audio tests, given sources and sinks of the test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from p2pspaces.core.identity import Identity
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig

from ..net.conftest import LOOPBACK


@pytest.fixture
async def nodes() -> AsyncIterator[Callable[..., Any]]:
    """``await nodes(name, source=..., sink=...)``: a started node, stopped after the test."""
    made: list[Node] = []

    async def make(name: str, **kwargs: Any) -> Node:
        node = Node(Identity.generate(), NodeConfig(name, LOOPBACK), **kwargs)
        await node.start()
        made.append(node)
        return node

    yield make
    for node in made:
        await node.stop()
