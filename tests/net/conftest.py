"""Nodes on loopback with real zeroconf and real aiortc."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest

from p2pspaces.core.events import Event
from p2pspaces.core.identity import Identity
from p2pspaces.core.settings import Timing
from p2pspaces.node import Node
from p2pspaces.node.config import NodeConfig

E = TypeVar("E", bound=Event)
LOOPBACK = "127.0.0.1"
QUICK = Timing(
    heartbeat_s=0.5,
    lease_s=2.0,
    rank_step_s=0.5,
    vote_wait_s=1.0,
    grace_s=2.0,
    peer_timeout_s=3.0,
    reconnect_max_s=4.0,
    reannounce_s=3.0,
)
"""Nodes on loopback answer in milliseconds: the room's clocks run at about half a real
node's, so that tests of takeovers and timeouts take less time (a test that is about the real
timings passes its own)."""


async def next_event(
    node: Node, kind: type[E], where: Callable[[E], bool] = lambda e: True, within: float = 15.0
) -> E:
    """Wait for the node's next event of ``kind`` that satisfies ``where``."""
    async with asyncio.timeout(within):
        while True:
            event = await node.events.get()
            if isinstance(event, kind) and where(event):
                return event


async def drain(node: Node, seconds: float) -> list[Event]:
    """Every event ``node`` emits in the next ``seconds``."""
    seen: list[Event] = []
    end = asyncio.get_running_loop().time() + seconds
    while (left := end - asyncio.get_running_loop().time()) > 0:
        try:
            async with asyncio.timeout(left):
                seen.append(await node.events.get())
        except TimeoutError:
            break
    return seen


@pytest.fixture
async def make_node() -> AsyncIterator[Callable[..., asyncio.Future[Node]]]:
    nodes: list[Node] = []

    async def make(name: str, timing: Timing = QUICK, **options: Any) -> Node:
        config = NodeConfig(name, timing=timing, **{"interface": LOOPBACK, **options})
        node = Node(Identity.generate(), config)
        await node.start()
        nodes.append(node)
        return node

    yield make  # type: ignore[misc]
    await asyncio.gather(*(node.stop() for node in nodes), return_exceptions=True)
