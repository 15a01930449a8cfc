"""Listing the rooms live on the network, without joining or advertising anything."""

from __future__ import annotations

import asyncio

from p2pspaces.core.events import RoomFound
from p2pspaces.core.identity import Identity
from p2pspaces.net.discovery import Discovery, DiscoveryEvent, PeerGone, PeerSeen


async def browse_rooms(
    interface: str | None, addresses: tuple[str, ...], wait: float
) -> list[RoomFound]:
    """Browse for ``wait`` seconds and return the rooms advertised at the end, by title."""
    rooms: dict[bytes, RoomFound] = {}

    def on_event(event: DiscoveryEvent) -> None:
        if isinstance(event, PeerGone):
            for key, room in list(rooms.items()):
                if room.host == event.node_id:
                    del rooms[key]
        elif isinstance(event, PeerSeen) and event.advert.room is not None:
            advert, info = event.advert, event.advert.room
            rooms[info.room_id] = RoomFound(
                info.room_id,
                info.title,
                advert.node_id,
                advert.name,
                info.speakers,
                info.listeners,
            )

    # A throwaway identity: this command advertises nothing, and must not mistake a node
    # running with the user's own identity for itself.
    discovery = Discovery(Identity.generate(), on_event, interface, addresses)
    await discovery.start()
    try:
        await asyncio.sleep(wait)
    finally:
        await discovery.close()
    return sorted(rooms.values(), key=lambda room: (room.title.lower(), room.room))
