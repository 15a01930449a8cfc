"""Listing the rooms live on the network, without joining or advertising anything."""

from __future__ import annotations

import asyncio

from p2pspaces.core.events import RoomFound
from p2pspaces.core.identity import Identity
from p2pspaces.net.discovery import Discovery
from p2pspaces.node.directory import RoomDirectory


async def browse_rooms(
    interface: str | None, addresses: tuple[str, ...], wait: float
) -> list[RoomFound]:
    """Browse for ``wait`` seconds and return the rooms advertised at the end, by title."""
    directory = RoomDirectory(lambda event: None, lambda: None)
    # A throwaway identity: this command advertises nothing, and must not mistake a node
    # running with the user's own identity for itself.
    discovery = Discovery(Identity.generate(), directory.on_discovery, interface, addresses)
    await discovery.start()
    try:
        await asyncio.sleep(wait)
    finally:
        await discovery.close()
    return list(directory.listed())
